"""Following a face by its look where the cascade misses it for a moment (a head turn, a hand, motion blur):
template matching of the face as the cascade last saw it, in a window round its last box (OpenCV's
matchTemplate, normalised correlation). Where a shot ends is the module `shots`."""
from __future__ import annotations

import cv2
import numpy as np

TEMPLATE_SIDE = 32  # the face's look is kept at this width: small enough to match in well under a millisecond


def _face_crop(grey: np.ndarray, box) -> np.ndarray:
    x, y, w, h = (int(v) for v in box)
    return grey[max(0, y):y + h, max(0, x):x + w]


def _shrunk(crop: np.ndarray, w: int, h: int) -> np.ndarray | None:
    if crop.size == 0 or w < 8 or h < 8:
        return None
    s = TEMPLATE_SIDE / w
    return cv2.resize(crop, (TEMPLATE_SIDE, max(8, round(crop.shape[0] * s))), interpolation=cv2.INTER_AREA)


def face_template(grey: np.ndarray, box) -> np.ndarray | None:
    """The face in `box`, resized to TEMPLATE_SIDE wide (None for an empty crop)."""
    return _shrunk(_face_crop(grey, box), int(box[2]), int(box[3]))


class LazyTemplate:
    """A face's template, shrunk from a copy of the face as its last cascade hit saw it only when following needs
    it: most faces are found by a cascade again on the next frame, and the area resize cost as much as the window
    search itself (0.9 of 14 ms per frame on a one-face clip), the copy a fiftieth of that. A copy of the face, not
    the whole frame, so that a crowd's tracks keep no frames alive."""

    def __init__(self, grey: np.ndarray, box):
        self._crop: np.ndarray | None = _face_crop(grey, box).copy()
        self._size = int(box[2]), int(box[3])
        self._image: np.ndarray | None = None

    def image(self) -> np.ndarray | None:
        if self._crop is not None:
            self._image, self._crop = _shrunk(self._crop, *self._size), None
        return self._image


def follow_template(grey: np.ndarray, box, template: np.ndarray, margin: float = 0.5) -> tuple[np.ndarray, float]:
    """(the box moved to where `template` matches best within `margin` box widths of `box`, its correlation
    in [-1, 1]); the box keeps its size."""
    x, y, w, h = (int(v) for v in box)
    s = TEMPLATE_SIDE / max(w, 1)
    m = int(margin * w)
    H, W = grey.shape[:2]
    x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
    window = grey[y0:y1, x0:x1]
    if window.size == 0:
        return np.asarray(box, np.int32), -1.0
    small = cv2.resize(window, (max(1, round(window.shape[1] * s)), max(1, round(window.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
    if small.shape[0] < template.shape[0] or small.shape[1] < template.shape[1]:
        return np.asarray(box, np.int32), -1.0
    corr = cv2.matchTemplate(small, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(corr)
    return np.array([x0 + round(bx / s), y0 + round(by / s), w, h], np.int32), float(best)
