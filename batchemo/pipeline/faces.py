"""The record that travels through the pipeline: the faces of one photo or video frame.

Detection fills the boxes (and track ids for video), the crop step the crops, `classify` the probabilities; the
rows of faces.csv / frames.csv (`report.face_rows`) and the labels drawn on the annotated media are both read from
it, so a face's box, id and emotion cannot drift apart between the report and the picture.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import JOB_THREADS
from .model import crop_faces  # noqa: F401  (the crop step, re-exported with its record)


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.int32)


@dataclass
class Faces:
    source: str  # the file, as reported in the `source` column
    frame: int = 0  # frame index (0 for a photo)
    time_s: float = float("nan")  # seconds into the video (NaN for a photo)
    boxes: np.ndarray = field(default_factory=_no_boxes)  # [N, 4] int (x, y, w, h) in reported pixels
    ids: np.ndarray | None = None  # [N] track ids (video) or face numbers (photo; None: 0, 1, 2...)
    crops: np.ndarray | None = None  # [N, S, S] grey uint8, the classifier's input
    probs: np.ndarray | None = None  # [N, n_classes] once classified
    scores: np.ndarray | None = None  # [N] face scores in [0, 1] (detect.face_score); NaN where unknown
    found_by: list[str] | None = None  # [N] how each box was found (docs/reports.md, `found_by`)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.int32).reshape(-1, 4)
        n = len(self.boxes)
        self.ids = np.arange(n, dtype=np.int64) if self.ids is None else np.asarray(self.ids, np.int64)
        self.scores = np.full(n, np.nan) if self.scores is None else np.asarray(self.scores, np.float64)
        self.found_by = ["detected"] * n if self.found_by is None else list(self.found_by)
        # A list one short would pair every later face with its neighbour's id or score: a bug, never a default.
        for name in ("ids", "scores", "found_by"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Faces of {self.source!r}: {len(getattr(self, name))} {name} for {n} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    def labels(self, classes: list[str]) -> list[tuple[str, float]]:
        """(emotion, confidence) per face; ('?', 0) before classification."""
        if self.probs is None:
            return [("?", 0.0)] * len(self)
        top = self.probs.argmax(axis=1)
        return [(classes[k], float(p[k])) for k, p in zip(top, self.probs)]


def classify(batch: list[Faces], model, batch_size: int, threads: int | None = JOB_THREADS) -> None:
    """Fill `probs` of every record in `batch`: all their crops in as few model calls as `batch_size` allows
    (crops of many photos or frames share a call; that is where batching pays), on the jobs' `JOB_THREADS`
    cores by default."""
    todo = [f for f in batch if f.crops is not None and len(f)]
    probs = model.predict(np.concatenate([f.crops for f in todo]), batch_size, threads) if todo else None
    at = 0
    for f in batch:
        if f.crops is not None and len(f):
            f.probs = probs[at:at + len(f)]
            at += len(f)
        elif f.probs is None:
            f.probs = np.zeros((len(f), len(model.classes)), np.float32)
