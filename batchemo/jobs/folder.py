"""`batchemo folder`: every image under a folder, faces detected, classified in batches, reported."""
from __future__ import annotations

import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..pipeline import report as R
from ..pipeline.annotate import draw_faces, label, write_image
from ..pipeline.detect import DetectOptions, detect_faces
from ..pipeline.model import EmotionModel, crop_faces
from .runtime import claim_output, prefetch_map, versions
from ..pipeline.sources import IMAGE_EXTENSIONS, BadInput, SourceFile, read_photo, to_grey, walk

# Photos are searched for faces on a copy whose long side is at most 640 px (InsightFace's default detection
# size; 3x faster than 1280 on a 2 MP photo): faces under about 4 % of the long side need a larger --detect-size.
PHOTO_DETECT_SIDE = 640


@dataclass
class FolderOptions:
    detect: DetectOptions = field(default_factory=lambda: DetectOptions(max_side=PHOTO_DETECT_SIDE))
    # Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their long side stays >= this (0: full size):
    # detection, crops and annotated copies use that image; boxes are reported in full-size pixels.
    decode_side: int = 1920
    batch_size: int = 64
    annotate: bool = True
    redo: bool = False
    force: bool = False
    max_megapixels: float = 40.0
    workers: int = 2
    # Images waiting for their faces to be classified are held in memory: cap them by total pixels.
    pending_megapixels: float = 60.0
    ray: str | None = None  # None: local threads; "" : a local Ray instance; else a Ray cluster address


@dataclass
class FileDetections:
    """The per-file step's result: what the classifier and the writers need about one image."""

    source: SourceFile
    width: int | None = None
    height: int | None = None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))
    crops: np.ndarray | None = None
    error: str = ""
    image: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class FolderResult:
    out: Path
    files: int
    faces: int
    errors: int
    skipped_done: int
    summary: pd.DataFrame
    seconds: float


def detect_file(sf: SourceFile, opts: FolderOptions, image_size: int, keep_image: bool) -> FileDetections:
    """Decode one image, find its faces and cut their crops; a bad file becomes an error, never an exception."""
    try:
        img, (w, h) = read_photo(sf.path, opts.max_megapixels, opts.decode_side)
        grey = to_grey(img)
        if min(h, w) < min(opts.detect.min_face, 24):
            raise BadInput(f"image too small for a face ({w}x{h} px)")
        scale = max(grey.shape) / max(w, h)  # decoded pixels per full-size pixel
        detect = replace(opts.detect, min_face=max(1, round(opts.detect.min_face * scale)))
        found = detect_faces(grey, detect)
        crops = crop_faces(grey, found, image_size)
        boxes = found if scale == 1 else _to_full_size(found, scale, w, h)
        return FileDetections(sf, w, h, boxes, crops, image=img if keep_image else None)
    except BadInput as e:
        return FileDetections(sf, error=str(e))
    except Exception as e:  # an unexpected decoder failure must not stop the batch either
        return FileDetections(sf, error=f"{type(e).__name__}: {e}".splitlines()[0])


def _to_full_size(boxes: np.ndarray, scale: float, w: int, h: int) -> np.ndarray:
    b = np.round(boxes / scale).astype(np.int32)
    b[:, 2] = np.minimum(b[:, 2], w - b[:, 0])
    b[:, 3] = np.minimum(b[:, 3], h - b[:, 1])
    return b


def face_rows(fd: FileDetections, probs: np.ndarray, classes: list[str]) -> list[dict]:
    return [R.face_row(fd.source.rel, 0, np.nan, i, box, p, classes) for i, (box, p) in enumerate(zip(fd.boxes, probs))]


def file_row(fd: FileDetections, status: str | None = None) -> dict:
    return {"source": fd.source.rel, "width": fd.width, "height": fd.height, "faces": len(fd.boxes),
            "status": status or ("ok" if fd.ok else "error"), "error": fd.error, "bytes": fd.source.size,
            "mtime_ns": fd.source.mtime_ns}


def annotate_file(fd: FileDetections, rows: list[dict], annotated_dir: Path) -> None:
    img = fd.image.copy()
    scale = max(img.shape[:2]) / max(fd.width, fd.height)  # a large JPEG was decoded at reduced size
    boxes = fd.boxes if scale == 1 else np.round(fd.boxes * scale).astype(np.int32)
    draw_faces(img, boxes, [label(r["emotion"], r["confidence"]) for r in rows], [r["emotion"] for r in rows])
    write_image(img, annotated_dir / fd.source.rel)


def classify_files(pending: list[FileDetections], em: EmotionModel, batch_size: int) -> list[list[dict]]:
    """The per-batch step: every face crop of `pending` in as few model calls as the batch size allows."""
    crops = [fd.crops for fd in pending if fd.ok and len(fd.boxes)]
    probs = em.predict(np.concatenate(crops), batch_size) if crops else np.zeros((0, len(em.classes)))
    out, at = [], 0
    for fd in pending:
        n = len(fd.boxes) if fd.ok else 0
        out.append(face_rows(fd, probs[at:at + n], em.classes))
        at += n
    return out


Chunk = list  # [(files.csv row, [faces.csv rows])], one entry per finished file, in input order


def local_runner(todo: list[SourceFile], em: EmotionModel, opts: FolderOptions,
                 annotated_dir: Path | None) -> Iterator[Chunk]:
    """Threads decode and detect ahead while the model classifies; annotated copies are written in the
    background and finished before a chunk is reported (a reported file is a finished file)."""
    with ThreadPoolExecutor(opts.workers) as pool, ThreadPoolExecutor(2) as writer:
        pending: list[FileDetections] = []
        n_crops, pixels = 0, 0.0

        def flush() -> Chunk:
            rows = classify_files(pending, em, opts.batch_size)
            jobs = [writer.submit(annotate_file, fd, r, annotated_dir)
                    for fd, r in zip(pending, rows) if fd.ok and annotated_dir is not None]
            for j in jobs:
                j.result()
            return [(file_row(fd), r) for fd, r in zip(pending, rows)]

        step = lambda s: detect_file(s, opts, em.image_size, keep_image=annotated_dir is not None)  # noqa: E731
        for fd in prefetch_map(pool, step, todo, ahead=4 * opts.workers + 4):
            pending.append(fd)
            n_crops += len(fd.boxes)
            pixels += fd.image.shape[0] * fd.image.shape[1] / 1e6 if fd.image is not None else 0
            if n_crops >= opts.batch_size or pixels >= opts.pending_megapixels:
                yield flush()
                pending, n_crops, pixels = [], 0, 0.0
        if pending:
            yield flush()


def default_out(path: Path) -> Path:
    return Path("reports") / (path.resolve().name or "root")


def analyze_folder(path: str | Path, out: str | Path | None = None, model: EmotionModel | str | Path | None = None,
                   options: FolderOptions | None = None, progress: bool = True,
                   log=None) -> FolderResult:
    """Analyse every image under `path`; write faces.csv, files.csv, summary.csv, annotated/ and run.json.

    Resumes an interrupted run in the same `out` (files done, by path, size and mtime, are skipped) unless
    `options.redo`.
    """
    t0 = time.time()
    opts = options or FolderOptions()
    root = Path(path)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder (for a video use `batchemo video`)")
    out = Path(out) if out else default_out(root)
    inside = out.resolve().is_relative_to(root.resolve())
    images, others = walk(root, IMAGE_EXTENSIONS, skip=out if inside else None)
    if not images:
        raise ValueError(f"{root}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    claim_output(out, root, opts.force)
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    classes = em.classes

    journal = R.Journal(out)
    if opts.redo:
        journal.clear()
        journal = R.Journal(out)
        old_files, old_faces = R.files_frame([]), R.faces_frame([], classes)
    else:
        old_files, old_faces = journal.load(out, "files.csv", "faces.csv", classes)
        old_prob = [c for c in old_faces.columns if c.startswith("p_")]
        if len(old_faces) and old_prob != R.prob_columns(classes):
            raise ValueError(f"{out} was made with classes {[c[2:] for c in old_prob]}; this model has "
                             f"{classes}: pass --redo to start over")
    done = set()
    if len(old_files):
        current = {s.rel: s for s in images}
        for r in old_files.itertuples():
            s = current.get(r.source)
            if s is not None and r.status == "ok" and r.bytes == s.size and r.mtime_ns == s.mtime_ns:
                done.add(r.source)
    todo = [s for s in images if s.rel not in done]

    annotated_dir = out / "annotated" if opts.annotate else None
    counts = {"faces": 0, "errors": 0}
    bar = tqdm(total=len(images), initial=len(done), unit="file", desc="images", disable=not progress,
               dynamic_ncols=True)
    if opts.ray is not None:
        from .ray_runner import ray_folder_runner as runner
    else:
        runner = local_runner
    for chunk in runner(todo, em, opts, annotated_dir):
        for frow, _ in chunk:
            if frow["status"] == "error":
                log(f"{frow['source']}: {frow['error']}")
                counts["errors"] += 1
        counts["faces"] += sum(len(rows) for _, rows in chunk)
        journal.append(R.files_frame([f for f, _ in chunk]), R.faces_frame([r for _, rows in chunk for r in rows],
                                                                          classes))
        bar.update(len(chunk))
        bar.set_postfix(faces=counts["faces"], errors=counts["errors"], refresh=False)
    bar.close()

    files, faces = journal.load(out, "files.csv", "faces.csv", classes)
    order = {s.rel: i for i, s in enumerate(images)}
    skipped = [file_row(FileDetections(s, error=f"not an image file ({Path(s.rel).suffix or 'no extension'})"),
                        status="skipped") for s in others]
    files = pd.concat([files[files["source"].isin(order)], R.files_frame(skipped)], ignore_index=True)
    files = files.iloc[np.argsort([order.get(s, len(order) + i) for i, s in enumerate(files["source"])],
                                  kind="stable")].reset_index(drop=True)
    faces = faces[faces["source"].isin(order)]
    faces = faces.iloc[np.lexsort((faces["face"].to_numpy(), [order[s] for s in faces["source"]]))] \
        .reset_index(drop=True)
    top = faces["source"].str.split("/").str[0].where(faces["source"].str.contains("/"), ".")
    summary = R.emotion_summary(faces, classes, by=top if top.ne(".").any() else None)
    R.write_csv(faces, out / "faces.csv")
    R.write_csv(files, out / "files.csv")
    R.write_csv(summary, out / "summary.csv")
    seconds = time.time() - t0
    errors = int((files["status"] == "error").sum())
    R.write_json({
        "job": "folder",
        "command": "batchemo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "input": str(root.resolve()),
        "out": str(out.resolve()),
        "options": asdict(opts),
        "model": {"path": str(em.path), "classes": classes, "image_size": em.image_size},
        "versions": versions(),
        "counts": {"files": len(images), "faces": len(faces), "errors": errors,
                   "skipped_non_images": len(others), "resumed_from_previous": len(done)},
        "wall_seconds": round(seconds, 3),
    }, out / "run.json")
    journal.clear()
    return FolderResult(out, len(images), len(faces), errors, len(done), summary, seconds)
