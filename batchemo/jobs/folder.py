"""`batchemo folder`: every image under a folder, faces detected, classified in batches, reported.

The job: list the photos, skip those a previous run in OUT finished, run the per-photo steps (`photos`) on a
runner (local threads here, or Ray: `ray_runner`), classify the faces of many photos per model call, journal
finished photos as they come (a killed run resumes), then write the final tables and run.json.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..knobs import described, knob
from .. import report as R
from .journal import Journal, is_report_folder
from ..report import episodes as E
from ..report.crops import follow_renames, save_photo_faces
from ..report.extras import write_extras
from ..pipeline.model import EmotionModel
from ..pipeline.files import (IMAGE_EXTENSIONS, UNSUPPORTED_IMAGES, SourceFile, is_photo, name_problem, printable,
                              refusal, source_text, walk)
from ..progress import bar_options, tqdm
from .descriptors import DESCRIPTORS_FILE
from .options import FolderOptions, job_options
from .people import PEOPLE_FILE, check_people, number_photos, people_record, remove_people_table
from .photos import Chunk, Photo, detect_photo, file_row, finish_batch
from .runtime import (analysis_settings, check_settings, claim_output, prefetch_map, recorded_settings,
                      remove_unwritten_extras, run_record)


@described()
@dataclass
class FolderResult:
    """What `analyze_folder` did; the report itself is in the folder `out`.

    `table()` reads its faces.csv (one row per face, typed), `table("files")` its files.csv (one row per file)."""

    out: Path = knob(doc="The report folder.")
    files: int = knob(doc="Photo files under the folder, those refused included (HEIC, raw, a name OpenCV cannot "
                          "open).")
    faces: int = knob(doc="Faces found, over all photos (the rows of faces.csv; `table()` gives them).")
    errors: int = knob(doc="Photos that could not be analysed (files.csv rows with status `error`).")
    skipped_done: int = knob(doc="Photos a previous run in `out` had finished, taken from it (a resumed run).")
    summary: pd.DataFrame = knob(doc="summary.csv: count and share of each emotion, over all faces and per "
                                     "sub-folder.")
    seconds: float = knob(doc="Wall time of the run, in seconds.")
    skipped_non_images: int = knob(0, "Files under the folder that are not images (files.csv status `skipped`).")

    def table(self, name: str = "faces") -> pd.DataFrame:
        """A table of the report as a typed DataFrame: 'faces' (faces.csv), 'files' or 'summary'."""
        return R.read_report(self.out / f"{name}.csv")

    def __repr__(self) -> str:
        return (f"FolderResult(out={str(self.out)!r}, files={self.files}, faces={self.faces}, errors={self.errors}, "
                f"skipped_done={self.skipped_done}, skipped_non_images={self.skipped_non_images}, "
                f"seconds={self.seconds:.1f})")


def local_runner(todo: list[SourceFile], em: EmotionModel, opts: FolderOptions,
                 annotated_dir: Path | None) -> Iterator[Chunk]:
    """Threads decode and detect ahead while the model classifies; batches close at `batch_size` faces or
    `pending_megapixels` of decoded images held for their annotated copies."""
    with ThreadPoolExecutor(opts.workers) as pool, ThreadPoolExecutor(2) as writer:
        pending: list[Photo] = []
        n_faces, pixels = 0, 0.0
        step = lambda s: detect_photo(s, opts, em.image_size, keep_image=annotated_dir is not None)  # noqa: E731
        for photo in prefetch_map(pool, step, todo, ahead=4 * opts.workers + 4):
            pending.append(photo)
            n_faces += len(photo.faces)
            pixels += photo.image.shape[0] * photo.image.shape[1] / 1e6 if photo.image is not None else 0
            if n_faces >= opts.batch_size or pixels >= opts.pending_megapixels:
                yield finish_batch(pending, em, opts, annotated_dir, writer)
                pending, n_faces, pixels = [], 0, 0.0
        if pending:
            yield finish_batch(pending, em, opts, annotated_dir, writer)


def default_out(path: Path) -> Path:
    """reports/<folder name>, or reports/<photo stem> for a single photo (as a video's reports/<clip stem>)."""
    path = Path(path).resolve()
    return Path("reports") / ((path.stem if path.is_file() else path.name) or "root")


def _list_inputs(root: Path, out: Path) -> tuple[Path, list[SourceFile], list[SourceFile], list[SourceFile]]:
    """(the folder `source` paths are relative to, images, other files, files refused by name or format
    (`refusal`)); a single photo is a folder of one."""
    if not root.exists():
        raise FileNotFoundError(f"{printable(str(root))}: no such folder")
    if is_photo(root):
        if name_problem(root):
            raise ValueError(f"{printable(str(root))}: {name_problem(root)}")
        st = root.stat()
        return root.parent, [SourceFile(root, root.name, st.st_size, st.st_mtime_ns)], [], []
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder or a photo (for a video use `batchemo video`)")
    if out.resolve() == root.resolve():  # its annotated copies, crops and thumbnails would be the next run's input
        raise ValueError(f"{out}: --out is the folder analysed; choose a folder beside it or inside it")
    inside = out.resolve().is_relative_to(root.resolve())
    images, others = walk(root, IMAGE_EXTENSIONS, skip=out if inside else None, is_report=is_report_folder)
    # A photo that cannot be read gets an error row; any other file (a notes.txt, whatever its name) is skipped.
    is_unsupported = [Path(s.rel).suffix.lower() in UNSUPPORTED_IMAGES for s in others]
    refused = [s for s in images if refusal(s)] + [s for s, u in zip(others, is_unsupported) if u]
    images, others = [s for s in images if not refusal(s)], [s for s, u in zip(others, is_unsupported) if not u]
    if not images:
        why = f"; {printable(refused[0].rel)}: {refusal(refused[0])}" if refused else ""
        raise ValueError(f"{root}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))}){why}")
    return root, images, others, sorted(refused, key=lambda s: s.rel)


def _open_journal(out: Path, images: list[SourceFile], em: EmotionModel,
                  opts: FolderOptions) -> tuple[Journal, set[str], set[str]]:
    """The resume journal of `out`, the photos a previous run finished (same path, size and mtime; with
    --annotate, their annotated copy there too) and the sources the previous report listed. A previous run with
    other settings (`analysis_settings`: an interrupted one's, in the journal, else the last run.json's) is
    refused: its rows and this run's would mix in one report."""
    classes, marker = em.classes, out / Journal.MARKER
    if opts.redo:
        settings = analysis_settings(opts, em)
        Journal(out).clear()
    else:  # checked before the journal folder is made: a refused run leaves nothing behind
        settings = check_settings(out, recorded_settings(marker if marker.exists() else out / "run.json"), opts, em,
                                  interrupted=marker.exists())
    journal = Journal(out)
    journal.begin(settings, fresh=opts.redo)
    if opts.redo:
        return journal, set(), set()
    old_files, old_faces = journal.load(out, "files.csv", "faces.csv", classes)
    old_prob = [c for c in old_faces.columns if c.startswith("p_")]
    if len(old_faces) and old_prob != R.prob_columns(classes):
        raise ValueError(f"{out} was made with classes {[c[2:] for c in old_prob]}; this model has "
                         f"{classes}: pass --redo to start over")
    current = {s.rel: s for s in images}
    done = set()
    for r in old_files.itertuples():
        s = current.get(r.source)
        if s is not None and r.status == "ok" and r.bytes == s.size and r.mtime_ns == s.mtime_ns \
                and (not opts.annotate or (out / "annotated" / r.source).is_file()):  # --annotate added later
            done.add(r.source)
    return journal, done, set(old_files["source"])


def _renamed(out: Path, images: list[SourceFile]) -> dict[str, str]:
    """Old source -> new, for photos the last report (OUT/files.csv) listed that are gone while a photo new to it
    has the same size and modification time, one to one: renamed or moved (both keep those), so the face crops the
    user relabelled stay theirs. An ambiguous pair (two copies made with their times kept) is left out."""
    try:
        schema, old = R.read_table(out / "files.csv")
    except (OSError, ValueError):
        return {}
    if schema is not R.FILES:
        return {}
    gone = old[~old["source"].isin({s.rel for s in images}) & (old["status"] == "ok").fillna(False)]
    listed = set(old["source"])
    by_stamp: dict[tuple[int, int], list[str]] = {}
    for s in images:
        if s.rel not in listed:
            by_stamp.setdefault((s.size, s.mtime_ns), []).append(s.rel)
    stamps = [(int(b), int(m)) for b, m in zip(gone["bytes"], gone["mtime_ns"])]
    count = Counter(stamps)
    return {src: by_stamp[stamp][0] for src, stamp in zip(gone["source"], stamps)
            if count[stamp] == 1 and len(by_stamp.get(stamp, [])) == 1}


def _final_tables(journal: Journal, out: Path, images: list[SourceFile], others: list[SourceFile],
                  refused: list[SourceFile], classes: list[str],
                  opts: FolderOptions) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(files, faces, summary) of this folder as it is now, in walk order: photos no longer there drop out;
    then the files refused (an error row each) and those skipped. `uncertain` by this run's --min-confidence, and
    the summary without the uncertain faces with --drop-uncertain (both worked out again on every run)."""
    files, faces = journal.load(out, "files.csv", "faces.csv", classes)
    order = {s.rel: i for i, s in enumerate(images)}
    skipped = [file_row(Photo(replace(s, rel=source_text(s.rel)), error=refusal(s)), status="error")
               for s in refused]
    skipped += [file_row(Photo(replace(s, rel=source_text(s.rel)),
                               error=f"not an image file ({printable(Path(s.rel).suffix) or 'no extension'})"),
                         status="skipped") for s in others]
    files = pd.concat([files[files["source"].isin(order)], R.files_frame(skipped)], ignore_index=True)
    files = files.iloc[np.argsort([order.get(s, len(order) + i) for i, s in enumerate(files["source"])],
                                  kind="stable")].reset_index(drop=True)
    # An earlier --people run's numbers are not this run's: given again (or not at all) once the rows are final.
    faces = faces[faces["source"].isin(order)].drop(columns=["person", "uncertain"], errors="ignore")
    faces = faces.iloc[np.lexsort((faces["face"].to_numpy(), [order[s] for s in faces["source"]]))] \
        .reset_index(drop=True)
    # A group per top-level sub-folder with photos in it, faces or not: a folder where none was found is a
    # finding (a row of zeros), not something to leave out.
    groups = {_top_folder(s.rel) for s in images}
    faces = E.with_uncertain(faces, opts.min_confidence)
    counted = E.counted(faces, opts.drop_uncertain)
    by = counted["source"].map(_top_folder) if groups - {"."} else None
    summary = R.emotion_summary(counted, classes, by=by, groups=groups)
    return files, faces, summary


def _top_folder(source: str) -> str:
    """The summary group of a `source`: its top-level sub-folder, '.' for a file directly in PATH."""
    return source.split("/", 1)[0] if "/" in source else "."


def _prune_annotated(annotated: Path, files: pd.DataFrame) -> None:
    """The annotated tree matches the report: copies of photos no longer in the folder (or no longer ok) go."""
    if not annotated.is_dir():
        return
    keep = set(files.loc[files["status"] == "ok", "source"])
    for p in annotated.rglob("*"):
        if p.is_file() and p.relative_to(annotated).as_posix() not in keep:
            p.unlink()


def analyze_folder(path: str | Path, out: str | Path | None = None, model: EmotionModel | str | Path | None = None,
                   options: FolderOptions | dict | None = None, *, progress: bool = True, log=None,
                   command: str | None = None, **knobs: Any) -> FolderResult:
    """Analyse every image under `path` (a folder, walked; or one photo); write faces.csv, files.csv,
    summary.csv, annotated/, report.html and run.json into `out` (default reports/<folder name>).

    `model`: an EmotionModel, a model file, or None for the shipped one. `options`: FolderOptions (or a dict of
    its fields); any field of FolderOptions or DetectOptions may also be given as a keyword, on top of them:
    `analyze_folder("photos", min_face=40, annotate=False)`. Resumes an interrupted run in the same `out`
    (files done, by path, size and mtime, are skipped) unless `redo`. `log`: where one line per refused photo
    goes (default: stderr, above the progress bar). `command`: the command line recorded in run.json (the CLI
    passes its own). `res.table()` reads the faces found.
    """
    t0 = time.time()
    opts = job_options(FolderOptions, options, knobs, "analyze_folder")
    check_people(opts.people)
    root = Path(path)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    out = Path(out) if out else default_out(root)
    base, images, others, refused = _list_inputs(root, out)  # base: `root`, or the folder of a single photo
    claim_output(out, root, opts.force)
    R.remove_atomic_temps(out)
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    journal, done, reported = _open_journal(out, images, em, opts)
    if opts.redo:  # --people's descriptors start over too
        (out / DESCRIPTORS_FILE).unlink(missing_ok=True)
    if (out / "faces").is_dir():  # after the checks (a refused run changes nothing), before files.csv is replaced
        follow_renames(out / "faces", _renamed(out, images))
    todo = [s for s in images if s.rel not in done]

    if opts.ray is not None:
        from .ray_runner import ray_folder_runner as runner
    else:
        runner = local_runner
    faces_found, errors = 0, len(refused)
    for s in refused:
        log(f"{printable(s.rel)}: {refusal(s)}")
    with tqdm(total=len(images), initial=len(done), unit="file", desc="images", **bar_options(progress)) as bar:
        for chunk in runner(todo, em, opts, out / "annotated" if opts.annotate else None):
            for frow, _ in chunk:
                if frow["status"] == "error":
                    log(f"{printable(frow['source'])}: {frow['error']}")
                    errors += 1
            faces_found += sum(len(rows) for _, rows in chunk)
            journal.append(R.files_frame([f for f, _ in chunk]),
                           R.faces_frame([r for _, rows in chunk for r in rows], em.classes))
            bar.update(len(chunk))
            bar.set_postfix(faces=faces_found, errors=errors, refresh=False)

    files, faces, summary = _final_tables(journal, out, images, others, refused, em.classes, opts)
    people = None
    if opts.people:  # before faces.csv is written: the column before `uncertain`, the last
        faces, people = number_photos(base, out, faces, files, opts.keep_side, opts.drop_uncertain)
    if opts.annotate:
        _prune_annotated(out / "annotated", files)
    R.write_csv(faces, out / "faces.csv")
    R.write_csv(files, out / "files.csv")
    R.write_csv(summary, out / "summary.csv")
    if people is not None:
        R.write_csv(people.table, out / PEOPLE_FILE)
    else:  # what an earlier --people run left
        remove_people_table(out)
        (out / DESCRIPTORS_FILE).unlink(missing_ok=True)
    seconds = time.time() - t0
    errors = int((files["status"] == "error").sum())
    uncertain = int(faces["uncertain"].sum())
    counts = {"files": len(images) + len(refused), "faces": len(faces), "errors": errors,
              "skipped_non_images": len(others), "resumed_from_previous": len(done), "uncertain": uncertain,
              "uncertain_left_out": uncertain if opts.drop_uncertain else 0}
    extra = {"people": people_record(len(people.table))} if people is not None else {}
    record = run_record("folder", root, out, opts, em, command=command, counts=counts, seconds=seconds, **extra)
    R.write_json(record, out / "run.json")
    if journal.fresh or todo or reported != set(files["source"]):
        # The rows changed: extra outputs this run does not write show the analysis before, and go.
        remove_unwritten_extras(out, opts, "annotated")
    journal.clear()
    from ..report.html import folder_thumbs, write_folder_page

    write_extras(html=opts.html, save_faces=opts.save_faces, thumbs=lambda: folder_thumbs(out, faces),
                 save=lambda also: save_photo_faces(out, base, faces, keep_side=opts.keep_side, also=also),
                 page=lambda thumbs: write_folder_page(out, base, files, faces, summary, record, classes=em.classes,
                                                       card=em.card, thumbs=thumbs, people=people))
    return FolderResult(out, len(images) + len(refused), len(faces), errors, len(done), summary, seconds, len(others))
