"""A face's look in colour, to tell whether the face a track continues with is the face it had: hue-saturation
histograms of the face and of the body under it, compared by Bhattacharyya distance.

Measured on the shared real clips and on clips joined by cuts (issue 37's research, summed up in docs): over
1,352 continuations of one person (head turns, grimaces, gaps of up to 35 frames) the face's distance stayed at
most 0.36 and the body's at most 0.61; the 25 switches to another person (the Hamilton clip's cut to the
audience, every join) all exceeded FACE_LIMIT on the face or BODY_LIMIT on the body. Colour tells two people
apart, not two looks of one: on a grey video every histogram is alike and the check lets everything through."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .shots import colour_distance, colour_histogram

FACE_LIMIT = 0.38
BODY_LIMIT = 0.65


def _histogram(bgr: np.ndarray, x0: int, y0: int, x1: int, y1: int, size: tuple[int, int]) -> np.ndarray | None:
    h, w = bgr.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return colour_histogram(cv2.resize(bgr[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA))


@dataclass(frozen=True)
class Look:
    face: np.ndarray | None
    body: np.ndarray | None  # 1.5 face heights below the face, two face widths wide; None off the frame


def look_of(bgr: np.ndarray, box) -> Look | None:
    """The look of the face in `box` on a colour frame (None on a grey one)."""
    if bgr.ndim != 3:
        return None
    x, y, w, h = (int(v) for v in box)
    face = _histogram(bgr, x, y, x + w, y + h, (32, 32))
    body = _histogram(bgr, x - w // 2, y + h, x + w + w // 2, y + h + 3 * h // 2, (32, 24))
    return Look(face, body)


class FrameLooks:
    """The looks of boxes on one frame, each worked out once and only when asked for: a box a window search found
    is compared by its look and then keeps it as its track's look (one area resize per face and frame instead of
    two), and a full-frame detection's boxes need theirs only where a track continues after a gap. Call it with a
    box."""

    def __init__(self, bgr: np.ndarray):
        self.bgr = bgr
        self._known: dict[tuple[int, ...], Look | None] = {}

    def __call__(self, box) -> Look | None:
        key = tuple(int(v) for v in box)
        if key not in self._known:
            self._known[key] = look_of(self.bgr, key)
        return self._known[key]


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    return 0.0 if a is None or b is None else colour_distance(a, b)


def same_look(a: Look | None, b: Look | None) -> bool:
    """Could `b` be the face of `a`? False only where the colours say another person."""
    if a is None or b is None:
        return True
    return _distance(a.face, b.face) <= FACE_LIMIT and _distance(a.body, b.body) <= BODY_LIMIT
