"""Shot boundaries: where a video cuts to another shot, so that no track runs from one person onto another across
the cut (the tracker starts afresh there).

Three tests on each analysed frame, a cut where any holds (measured on the shared real clips and on clips joined
by dim hard cuts and 8-frame cross-fades; /tmp research of issue 37, summed up in docs):
- the mean grey difference of 32x18 thumbnails to the frame before exceeds GREY_CUT: hard cuts; it was 40, which
  missed all three cuts of the Hamilton clip (26-30) and every dim join (32-34); camera moves stay under 13;
- the Bhattacharyya distance of hue-saturation histograms to the frame before exceeds COLOUR_CUT: a cut to a
  shot of other colours however dim (dimming halves the grey difference and leaves this alone); 0.19 at most
  within a shot, 0.43 at least across one;
- the same distance to the frame about SOFT_WINDOW_S back exceeds SOFT_CUT: cross-fades, which change little from
  frame to frame; 0.32 at most within a shot, 0.48 at least across a fade. Once it fires, it waits until the
  frame it compares with lies past the cut, so one fade or cut is one boundary.
Colour says nothing on a grey video (every histogram alike): there the grey test alone decides."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

GREY_CUT = 20.0
COLOUR_CUT = 0.3
SOFT_CUT = 0.45
SOFT_WINDOW_S = 0.25


def thumbnail(grey: np.ndarray) -> np.ndarray:
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def colour_histogram(small: np.ndarray) -> np.ndarray:
    """A small colour copy's hue-saturation histogram (16x16 bins), summing to 1."""
    hist = cv2.calcHist([cv2.cvtColor(small, cv2.COLOR_BGR2HSV)], [0, 1], None, [16, 16], [0, 180, 0, 256])
    return cv2.normalize(hist, hist, 1, 0, cv2.NORM_L1)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


@dataclass
class ShotBoundaries:
    """Fed the analysed frames in order (`is_cut`); `interval`: seconds between them."""

    interval: float
    thumb: np.ndarray | None = None
    recent: deque = field(default_factory=deque)  # colour histograms of the last `back` frames
    quiet: int = 0  # frames the soft test waits after firing

    @property
    def back(self) -> int:
        return max(1, round(SOFT_WINDOW_S / self.interval))

    def is_cut(self, bgr: np.ndarray, grey: np.ndarray) -> bool:
        if bgr.ndim == 3:
            # The colour copy from a sparse grid of the frame's pixels (16 per thumbnail cell): an area shrink of
            # every pixel cost 1 ms a frame at 640x480 (1.7 ms at 1080p), a seventh of the face search. On the 10
            # shared clips the grey differences moved by at most 1 level and the colour distances by 0.04, far
            # from the limits, and the cuts found were the same. The grey thumbnail comes from it (averaging and
            # the grey conversion are both linear: the same values to rounding).
            small = cv2.resize(cv2.resize(bgr, (256, 144), interpolation=cv2.INTER_NEAREST), (64, 36),
                               interpolation=cv2.INTER_AREA)
            thumb = thumbnail(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
            hist = colour_histogram(small)
        else:
            thumb, hist = thumbnail(grey), None
        hard = self.thumb is not None and float(np.abs(self.thumb - thumb).mean()) > GREY_CUT
        if hist is not None and self.recent:
            hard = hard or colour_distance(self.recent[-1], hist) > COLOUR_CUT
        soft = False
        if hist is not None and len(self.recent) == self.back and self.quiet == 0:
            soft = colour_distance(self.recent[0], hist) > SOFT_CUT
        self.thumb = thumb
        if hist is not None:
            self.recent.append(hist)
            if len(self.recent) > self.back:
                self.recent.popleft()
        # After a boundary the frames `back` ago are the old shot's: the soft test would fire on each of them.
        self.quiet = self.back if (hard or soft) else max(0, self.quiet - 1)
        return hard or soft
