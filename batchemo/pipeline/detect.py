"""Face detection with OpenCV's frontal-face Haar cascade on a grey (optionally downscaled) image."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"
HAAR_WINDOW = 24  # the cascade's own training window: faces smaller than this at detection scale are not found


@dataclass(frozen=True)
class DetectOptions:
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 30  # smallest face side in pixels of the original image
    # Detection runs on the grey image shrunk so that `min_face` maps to `detect_window` pixels (never below
    # the cascade's 24 px window) and its long side is at most `max_side`. Full resolution: --accurate.
    detect_window: int = 24
    max_side: int = 1280
    pad_small: bool = True  # pad small images, so tight face crops (no margin) are still found

    @property
    def accurate(self) -> "DetectOptions":
        return DetectOptions(self.scale_factor, self.min_neighbors, self.min_face, 0, 0, self.pad_small)


_local = threading.local()


def cascade() -> cv2.CascadeClassifier:
    """One cascade per thread: CascadeClassifier objects are not safe to share across threads."""
    c = getattr(_local, "cascade", None)
    if c is None:
        path = cv2.data.haarcascades + CASCADE_FILE
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (needs opencv-python>=4.10,<5)")
        _local.cascade = c
    return c


def detection_scale(height: int, width: int, opts: DetectOptions) -> float:
    """The factor (<= 1) the grey image is shrunk by before the cascade runs."""
    s = 1.0
    if opts.detect_window > 0 and opts.min_face > opts.detect_window:
        s = max(opts.detect_window, HAAR_WINDOW) / opts.min_face
    if opts.max_side > 0:
        s = min(s, opts.max_side / max(height, width))
    return min(s, 1.0)


def detect_faces(grey: np.ndarray, opts: DetectOptions = DetectOptions()) -> np.ndarray:
    """Face boxes [N, 4] as int (x, y, w, h) in the pixels of `grey`, sorted left to right."""
    h, w = grey.shape[:2]
    s = detection_scale(h, w, opts)
    small = cv2.resize(grey, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
        if s < 1.0 else grey
    pad = 0
    if opts.pad_small and max(small.shape[:2]) < 4 * HAAR_WINDOW:
        # A face filling the whole frame has no margin for the cascade's window to slide over.
        pad = max(small.shape[:2]) // 4
        small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    min_side = max(HAAR_WINDOW, int(round(opts.min_face * s)))
    if min(small.shape[:2]) < min_side:
        return np.zeros((0, 4), dtype=np.int32)
    found = cascade().detectMultiScale(small, scaleFactor=opts.scale_factor, minNeighbors=opts.min_neighbors,
                                       minSize=(min_side, min_side))
    if len(found) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    boxes = np.asarray(found, dtype=np.float64)
    boxes[:, :2] -= pad
    boxes /= s
    boxes = np.round(boxes).astype(np.int32)
    # Clip to the image (padding can push a box edge outside it).
    x0 = np.clip(boxes[:, 0], 0, w - 1)
    y0 = np.clip(boxes[:, 1], 0, h - 1)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 1, w)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 1, h)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)
    return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]


def refine_faces(grey: np.ndarray, boxes: np.ndarray, opts: DetectOptions = DetectOptions()) -> list:
    """Look for each known face again, in a small window around its last box: a box, or None where Haar does
    not find it there.

    The window is shrunk so the face is about twice the cascade's window and only face sizes within -25/+33 %
    of the last box are tried: a handful of small scans instead of a full-frame search.
    """
    h_img, w_img = grey.shape[:2]
    found_boxes: list = []
    for x, y, w, h in np.asarray(boxes).reshape(-1, 4):
        m = w // 2
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(w_img, x + w + m), min(h_img, y + h + m)
        roi = grey[y0:y1, x0:x1]
        s = min(1.0, 2 * HAAR_WINDOW / max(w, 1))
        # Linear, not area: this runs on most frames, and area resampling costs more than the scan itself.
        small = cv2.resize(roi, (max(1, round(roi.shape[1] * s)), max(1, round(roi.shape[0] * s))),
                           interpolation=cv2.INTER_LINEAR) if s < 1 else roi
        lo, hi = max(HAAR_WINDOW, int(0.75 * w * s)), int(1.33 * w * s) + 1
        if min(small.shape[:2]) < lo:
            found_boxes.append(None)
            continue
        found = cascade().detectMultiScale(small, scaleFactor=opts.scale_factor, minNeighbors=opts.min_neighbors,
                                           minSize=(lo, lo), maxSize=(hi, hi))
        if len(found) == 0:
            found_boxes.append(None)
            continue
        cand = np.asarray(found, np.float64) / s
        cand[:, :2] += (x0, y0)
        ref = np.array([x, y, w, h], np.float64)
        cx = cand[:, :2] + cand[:, 2:] / 2 - (ref[:2] + ref[2:] / 2)
        best = cand[np.argmin(np.hypot(cx[:, 0], cx[:, 1]))]
        found_boxes.append(np.round(best).astype(np.int32))
    return found_boxes
