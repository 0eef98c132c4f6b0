"""Face tracks across video frames: each person keeps one id while their boxes keep overlapping.

Rule (README, "Tracking"): boxes of a full-frame detection are matched greedily to the live tracks, best
IoU first (IoU >= `iou_threshold`, or centres closer than one box side when a fast move breaks the overlap). A
matched track takes the new box; an unmatched box starts a new id. Between full-frame detections each track
is followed on its own (Haar in a small window around its last box, `follow`). A track missed by Haar stays
alive for `max_gap` analysed frames: re-found within that gap it keeps its id, and for the first `coast`
missed frames its last box is carried so one Haar flicker does not drop the face. Ids count up from 0 in
order of appearance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a [N,4] and b [M,4] given as (x, y, w, h)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0, ax1, ay1 = a[:, 0, None], a[:, 1, None], (a[:, 0] + a[:, 2])[:, None], (a[:, 1] + a[:, 3])[:, None]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[:, 2, None] * a[:, 3, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class Track:
    id: int
    box: np.ndarray
    last_step: int


@dataclass
class Tracker:
    iou_threshold: float = 0.3
    max_gap: int = 5
    coast: int = 1
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def update(self, boxes: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Match one detection step's boxes; returns (ids, boxes) of the faces to report at this step."""
        self.tracks = [t for t in self.tracks if step - t.last_step <= self.max_gap]
        boxes = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
        assigned = np.full(len(boxes), -1)
        if self.tracks and len(boxes):
            prev = np.stack([t.box for t in self.tracks])
            score = iou(prev, boxes)
            pc = prev[:, :2] + prev[:, 2:] / 2
            bc = boxes[:, :2] + boxes[:, 2:] / 2
            dist = np.linalg.norm(pc[:, None] - bc[None], axis=2)
            near = dist < np.maximum(prev[:, 2:3], boxes[None, :, 2])
            # Near-but-not-overlapping pairs rank below every overlapping pair.
            score = np.where(score >= self.iou_threshold, score, np.where(near, 1e-3 / (1 + dist), -1.0))
            used_t: set[int] = set()
            for flat in np.argsort(-score, axis=None):
                ti, bi = np.unravel_index(flat, score.shape)
                if score[ti, bi] < 0:
                    break
                if ti in used_t or assigned[bi] >= 0:
                    continue
                used_t.add(ti)
                assigned[bi] = ti
                self.tracks[ti].box = boxes[bi]
                self.tracks[ti].last_step = step
        for bi in np.flatnonzero(assigned < 0):
            self.tracks.append(Track(self.next_id, boxes[bi], step))
            self.next_id += 1
        return self.live(step)

    def live(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, boxes) of the tracks to report at `step`: seen now, or missed for at most `coast` steps."""
        live = [t for t in self.tracks if step - t.last_step <= self.coast]
        live.sort(key=lambda t: t.id)
        return (np.asarray([t.id for t in live], dtype=np.int64),
                np.stack([t.box for t in live]).astype(np.int32) if live else np.zeros((0, 4), np.int32))

    def follow(self, step: int, refine) -> tuple[np.ndarray, np.ndarray]:
        """Between full detections: `refine(boxes) -> [box or None]` re-finds each live track near its box."""
        self.tracks = [t for t in self.tracks if step - t.last_step <= self.max_gap]
        live = [t for t in self.tracks if step - t.last_step <= self.coast]
        if live:
            for t, box in zip(live, refine(np.stack([t.box for t in live]))):
                if box is not None:
                    t.box = np.asarray(box, np.int32)
                    t.last_step = step
        return self.live(step)
