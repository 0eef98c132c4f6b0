"""The folder job's steps, shared by the local and the Ray runner: per photo, decode it and find and crop its
faces (`detect_photo`); per batch of photos, classify their faces together and draw the annotated copies
(`finish_batch`); each photo's files.csv row."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..report import face_rows
from ..report.annotate import annotate, write_image
from ..pipeline.detect import detect_scored
from ..pipeline.faces import Faces, classify, crop_faces
from ..pipeline.model import EmotionModel
from ..pipeline.files import BadInput, SourceFile
from ..pipeline.photo import read_photo, to_grey
from .options import FolderOptions


@dataclass
class Photo:
    """One photo on its way through the folder job."""

    source: SourceFile
    faces: Faces = None  # type: ignore[assignment]  # boxes in full-size pixels
    width: int | None = None  # full size
    height: int | None = None
    error: str = ""
    image: np.ndarray | None = None  # as decoded (maybe reduced), kept only for the annotated copy

    def __post_init__(self):
        if self.faces is None:
            self.faces = Faces(self.source.rel)

    @property
    def ok(self) -> bool:
        return not self.error


def detect_photo(sf: SourceFile, opts: FolderOptions, image_size: int, keep_image: bool) -> Photo:
    """Decode one image, find its faces and cut their crops; a bad file becomes an error, never an exception."""
    try:
        img, (w, h) = read_photo(sf.path, opts.max_megapixels, opts.keep_side)
        grey = to_grey(img)
        if min(h, w) < min(opts.detect.min_face, 24):
            raise BadInput(f"image too small for a face ({w}x{h} px)")
        scale = max(grey.shape) / max(w, h)  # decoded pixels per full-size pixel
        detect = replace(opts.detect, min_face=max(1, round(opts.detect.min_face * scale)))
        found, scores = detect_scored(grey, detect)
        boxes = found if scale == 1 else _to_full_size(found, scale, w, h)
        faces = Faces(sf.rel, boxes=boxes, crops=crop_faces(grey, found, image_size), scores=scores)
        return Photo(sf, faces, w, h, image=img if keep_image else None)
    except BadInput as e:
        return Photo(sf, error=str(e))
    except Exception as e:  # an unexpected decoder failure must not stop the batch either
        return Photo(sf, error=f"{type(e).__name__}: {e}".splitlines()[0])


def _to_full_size(boxes: np.ndarray, scale: float, w: int, h: int) -> np.ndarray:
    b = np.round(boxes / scale).astype(np.int32)
    b[:, 2] = np.minimum(b[:, 2], w - b[:, 0])
    b[:, 3] = np.minimum(b[:, 3], h - b[:, 1])
    return b


def file_row(photo: Photo, status: str | None = None) -> dict:
    return {"source": photo.source.rel, "width": photo.width, "height": photo.height, "faces": len(photo.faces),
            "status": status or ("ok" if photo.ok else "error"), "error": photo.error, "bytes": photo.source.size,
            "mtime_ns": photo.source.mtime_ns}


def annotate_photo(photo: Photo, classes: list[str], annotated_dir: Path, decode_side: int) -> None:
    """The annotated copy, drawn on the image as decoded (a large JPEG's reduced size); decoded again here when
    the photo travelled without its pixels (Ray)."""
    img = photo.image.copy() if photo.image is not None else read_photo(photo.source.path, float("inf"),
                                                                         decode_side)[0]
    annotate(img, photo.faces, classes, scale=max(img.shape[:2]) / max(photo.width, photo.height))
    write_image(img, annotated_dir / photo.source.rel)


Chunk = list  # [(files.csv row, [faces.csv rows])], one entry per finished file, in input order


def finish_batch(pending: list[Photo], em: EmotionModel, opts: FolderOptions, annotated_dir: Path | None,
                 writer: ThreadPoolExecutor | None = None) -> Chunk:
    """The per-batch step: classify the faces of `pending` together, write their annotated copies (in
    `writer`'s threads when given; all finished before returning: a reported file is a finished file)."""
    classify([p.faces for p in pending if p.ok], em, opts.batch_size)
    if annotated_dir is not None:
        draw = lambda p: annotate_photo(p, em.classes, annotated_dir, opts.keep_side)  # noqa: E731
        list((writer.map if writer is not None else map)(draw, [p for p in pending if p.ok]))
    return [(file_row(p), face_rows(p.faces, em.classes) if p.ok else []) for p in pending]
