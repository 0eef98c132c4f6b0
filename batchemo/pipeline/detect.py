"""Face detection with OpenCV's frontal-face Haar cascade on a grey (optionally downscaled) image."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..knobs import OptionError, check_fields, described, knob
from .track import intersection

CASCADE_FILE = "haarcascade_frontalface_default.xml"
PROFILE_FILE = "haarcascade_profileface.xml"  # faces turned to one side; the other side is found on a mirror
EYE_FILE = "haarcascade_eye.xml"
HAAR_WINDOW = 24  # the cascade's own training window: faces smaller than this at detection scale are not found
STANDALONE_SIDE = 1280  # DetectOptions.max_side left to the job, where no job fills it in


@dataclass(frozen=True)
class DetectOptions:
    """How faces are searched for: OpenCV's Haar cascade on a grey, downscaled copy of each image or frame.

    Nested in FolderOptions and VideoOptions (`detect=`), which fill in their own detection size where
    `max_side` is left at None; a dict of these fields is taken there too. Frozen: `dataclasses.replace(d,
    min_face=20)` makes a changed copy, checked as this one was."""

    scale_factor: float = knob(1.1, "Haar scaleFactor: step between the detection scales (smaller finds more, "
                                     "slower).")
    min_neighbors: int = knob(5, "Haar minNeighbors: overlapping hits a face needs (higher: fewer false faces).")
    min_face: int = knob(30, "Smallest face side, in pixels of the original image.")
    # Detection runs on the grey image shrunk so that `min_face` maps to `detect_window` pixels (never below
    # the cascade's 24 px window) and its long side is at most `max_side`. Full resolution: --accurate.
    detect_window: int = knob(24, "Pixels `min_face` is shrunk to before detection (never below the cascade's "
                                  "24 px window; 0: no such shrinking).")
    max_side: int | None = knob(None, "Long side, in pixels, of the copy the cascade searches (0: no cap; faces "
                                      "under 24 px on that copy are not found). None: the job's own size, 640 for "
                                      "photos (FolderOptions) and 1280 for video frames (VideoOptions, and "
                                      "detection used on its own).")
    pad_small: bool = knob(True, "Pad small images, so that tight face crops (no margin) are still found.")

    def __post_init__(self):
        check_fields(self, DETECT_RANGES)
        if self.max_side is not None and 0 < self.max_side < HAAR_WINDOW:  # a copy that small holds no face
            raise OptionError("max_side", f"must be 0 (no cap) or at least {HAAR_WINDOW}, the cascade's window "
                              f"(got {self.max_side})", DETECT_RANGES["max_side"].flag)

    @property
    def side(self) -> int:
        """`max_side`, with None (left to the job) read as the video frames' 1280 where detection runs alone."""
        return STANDALONE_SIDE if self.max_side is None else self.max_side

    @property
    def accurate(self) -> "DetectOptions":
        return replace(self, detect_window=0, max_side=0)


def check(name: str, value, low: float, strict: bool = False, high: float | None = None, flag: str = "") -> None:
    """ValueError naming the option (as the CLI spells it) when `value` is outside its range."""
    if value is None:
        return
    flag = flag or "--" + name.replace("_", "-")
    if not math.isfinite(value):  # NaN passes every comparison; inf scales (a scale factor) never end
        raise ValueError(f"{flag} must be a finite number (got {value})")
    if (value <= low if strict else value < low) or (high is not None and value > high):
        bound = f"more than {low:g}" if strict else f"at least {low:g}"
        upper = f" and at most {high:g}" if high is not None else ""
        raise ValueError(f"{flag} must be {bound}{upper} (got {value:g})")


@dataclass(frozen=True)
class Range:
    """A numeric option's valid values: the option classes check them, the CLI's --help shows them (one
    source for both, so the help never drifts from what is refused)."""

    low: float
    strict: bool = False  # `low` itself is refused
    high: float | None = None
    flag: str = ""  # the CLI's spelling where it is not --<name with dashes>

    def check(self, name: str, value) -> None:
        check(name, value, self.low, self.strict, self.high, self.flag)

    @property
    def text(self) -> str:
        """For --help: '(>=1)', '(>0)', '(>0,<=1)' (no spaces: the help column never wraps inside one)."""
        low = f"{'>' if self.strict else '>='}{self.low:g}"
        return f"({low})" if self.high is None else f"({low},<={self.high:g})"


def check_ranges(options, ranges: dict[str, Range]) -> None:
    """ValueError naming the first option of `options` outside its range."""
    for name, rng in ranges.items():
        rng.check(name, getattr(options, name))


DETECT_RANGES = {"scale_factor": Range(1.0, strict=True), "min_neighbors": Range(0), "min_face": Range(1),
                 "detect_window": Range(0),
                 "max_side": Range(0, flag="--detect-size")}  # and 0 or >= HAAR_WINDOW: DetectOptions
described(DETECT_RANGES, {"max_side": f"0, or >={HAAR_WINDOW}"})(DetectOptions)  # the ranges are defined below it

_local = threading.local()


def cascade(name: str = CASCADE_FILE) -> cv2.CascadeClassifier:
    """One cascade per thread: CascadeClassifier objects are not safe to share across threads."""
    cache = _local.__dict__.setdefault("cascades", {})
    c = cache.get(name)
    if c is None:
        path = cv2.data.haarcascades + name
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (needs opencv-python>=4.10,<5)")
        cache[name] = c
    return c


def face_score(level_weight: np.ndarray | float) -> np.ndarray:
    """The cascade's confidence in a box (its last stage's level weight) as a score in [0, 1]: 0.5 at weight 4.
    On the real clips of benchmarks/bench_faces.py, boxes on no face had weights 0.7-4.5 (median 2.6), boxes
    on faces 1-14 (median 7.2)."""
    return 1 / (1 + np.exp(-(np.asarray(level_weight, np.float64) - 4.0)))


def _scan(img: np.ndarray, opts: DetectOptions, min_side: int, max_side: int = 0,
          name: str = CASCADE_FILE, min_neighbors: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4] float, face scores [N]) of one cascade on one image."""
    neighbors = opts.min_neighbors if min_neighbors is None else min_neighbors
    found, _, weights = cascade(name).detectMultiScale3(
        img, scaleFactor=opts.scale_factor, minNeighbors=neighbors, minSize=(min_side, min_side),
        maxSize=(max_side, max_side) if max_side else (0, 0), outputRejectLevels=True)
    if len(found) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    return np.asarray(found, np.float64).reshape(-1, 4), face_score(np.asarray(weights, np.float64).ravel())


def has_eyes(grey: np.ndarray, box) -> bool:
    """Does the eye cascade find an eye in the upper part of `box`? Evidence for a weak box: on the real clips
    of benchmarks/bench_faces.py no box on a non-face had one, 60 % of boxes on faces did."""
    x, y, w, h = (int(v) for v in box)
    roi = grey[max(0, y):y + h * 5 // 8, max(0, x):x + w]
    if roi.size == 0 or w < 12:
        return False
    s = 64 / w  # eyes are searched at one size, whatever the face's
    roi = cv2.resize(roi, (64, max(1, round(roi.shape[0] * s))), interpolation=cv2.INTER_LINEAR)
    return len(cascade(EYE_FILE).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(10, 10))) > 0


def drop_contained(boxes: np.ndarray, scores: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Indices of the boxes to keep: of two boxes where `share` of the smaller one's area lies inside the other,
    only the one with the higher face score stays; they are one face (a mouth, half a face, a loose box round a
    face, or a second box shifted by a third of a face: facenetpytorch-multiface.jpg had one at IoU 0.35, 53 %
    of it on a woman's face, labelled neutral beside her happy box)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = b[:, 2] * b[:, 3]
    shared = intersection(b, b)
    dropped = np.zeros(len(b), bool)
    for i in range(len(b)):
        larger = (area > area[i]) | ((area == area[i]) & (np.arange(len(b)) > i))
        for j in np.flatnonzero((shared[i] >= share * area[i]) & larger):
            dropped[i if scores[j] >= scores[i] else j] = True
    return np.flatnonzero(~dropped)


def detection_scale(height: int, width: int, opts: DetectOptions) -> float:
    """The factor (<= 1) the grey image is shrunk by before the cascade runs."""
    s = 1.0
    if opts.detect_window > 0 and opts.min_face > opts.detect_window:
        s = max(opts.detect_window, HAAR_WINDOW) / opts.min_face
    if opts.side > 0:
        s = min(s, opts.side / max(height, width))
    return min(s, 1.0)


def detect_faces(grey: np.ndarray, opts: DetectOptions = DetectOptions()) -> np.ndarray:
    """Face boxes [N, 4] as int (x, y, w, h) in the pixels of `grey`, sorted left to right."""
    return detect_scored(grey, opts)[0]


def detect_scored(grey: np.ndarray, opts: DetectOptions = DetectOptions()) -> tuple[np.ndarray, np.ndarray]:
    """(face boxes [N, 4] int (x, y, w, h) in the pixels of `grey`, sorted left to right; their face scores),
    boxes inside a larger face's box left out."""
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
        return np.zeros((0, 4), dtype=np.int32), np.zeros(0)
    boxes, scores = _scan(small, opts, min_side)
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.int32), np.zeros(0)
    boxes[:, :2] -= pad
    boxes /= s
    boxes = np.round(boxes).astype(np.int32)
    # Clip to the image (padding can push a box edge outside it).
    x0 = np.clip(boxes[:, 0], 0, w - 1)
    y0 = np.clip(boxes[:, 1], 0, h - 1)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 1, w)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 1, h)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)
    keep = drop_contained(boxes, scores)
    boxes, scores = boxes[keep], scores[keep]
    order = np.lexsort((boxes[:, 1], boxes[:, 0]))
    return boxes[order], scores[order]


def refine_faces(grey: np.ndarray, boxes: np.ndarray, opts: DetectOptions = DetectOptions(),
                 profile: bool = False) -> list:
    """Look for each known face again, in a small window around its last box: (box, score, how) with how
    'detected' (the frontal cascade) or 'profile' (the profile cascade, with `profile`, where the frontal one
    misses: a head turned aside), or None where neither finds it there.

    The window is shrunk so the face is about twice the cascade's window and only face sizes within -25/+33 %
    of the last box are tried: a handful of small scans instead of a full-frame search.
    """
    h_img, w_img = grey.shape[:2]
    out: list = []
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
            out.append(None)
            continue
        cand, scores = _scan(small, opts, lo, hi)
        how = "detected"
        if not len(cand) and profile:
            cand, scores = _profile_scan(small, opts, lo, hi)
            how = "profile"
        if not len(cand):
            out.append(None)
            continue
        cand = cand / s
        cand[:, :2] += (x0, y0)
        ref = np.array([x, y, w, h], np.float64)
        cx = cand[:, :2] + cand[:, 2:] / 2 - (ref[:2] + ref[2:] / 2)
        k = int(np.argmin(np.hypot(cx[:, 0], cx[:, 1])))
        out.append((np.round(cand[k]).astype(np.int32), float(scores[k]), how))
    return out


def _profile_scan(small: np.ndarray, opts: DetectOptions, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The profile cascade on the window and on its mirror image (it knows one side only). Fewer neighbours
    are asked for than for a full-frame search: a face was here a moment ago."""
    boxes, scores = _scan(small, opts, lo, hi, PROFILE_FILE, min_neighbors=3)
    if len(boxes):
        return boxes, scores
    boxes, scores = _scan(np.ascontiguousarray(small[:, ::-1]), opts, lo, hi, PROFILE_FILE, min_neighbors=3)
    if len(boxes):
        boxes[:, 0] = small.shape[1] - boxes[:, 0] - boxes[:, 2]
    return boxes, scores
