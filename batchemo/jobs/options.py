"""The options of the two main jobs, with their defaults (the CLI's defaults are these)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..pipeline.detect import DetectOptions, Range, check_ranges

# Photos are searched for faces on a copy whose long side is at most 640 px (InsightFace's default detection
# size; 3x faster than 1280 on a 2 MP photo): faces under about 4 % of the long side need a larger --detect-size.
PHOTO_DETECT_SIDE = 640


FOLDER_RANGES = {"decode_side": Range(0), "batch_size": Range(1), "max_megapixels": Range(0, strict=True),
                 "workers": Range(1), "pending_megapixels": Range(0, strict=True)}
VIDEO_RANGES = {
    "every": Range(1), "fps": Range(0, strict=True), "detect_every": Range(1),
    "max_detect_interval_s": Range(0, strict=True), "follow_s": Range(0), "follow_min_match": Range(-1, high=1),
    "coast_s": Range(0), "min_new_score": Range(0, high=1), "confirm_hits": Range(1),
    "min_track_s": Range(0, flag="--min-track"), "batch_size": Range(1), "bin_s": Range(0, strict=True, flag="--bin"),
    "max_gap_s": Range(0, strict=True), "iou_threshold": Range(0, strict=True, high=1), "max_tracks_plotted": Range(1),
    "split_frames": Range(0),
}


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
    html: bool = True  # OUT/report.html (and its thumbnails under OUT/thumbs/)
    save_faces: bool = False  # one crop per face under OUT/faces/<emotion>/ (+ faces/index.csv)

    def __post_init__(self):  # every bad value refused before any work starts, from the CLI or from Python
        check_ranges(self, FOLDER_RANGES)

    @property
    def keep_side(self) -> int:
        """The long side a large JPEG keeps when decoded reduced: `decode_side`, raised to the detection's own
        size (--detect-size), and 0 (full size) where detection runs at full size (--detect-size 0). A decode
        below the detection's size would raise the smallest face found to the cascade's 24 px window in
        decoded pixels: 48 px of the original at 1/2, not --min-face."""
        if self.decode_side == 0 or self.detect.max_side == 0:
            return 0
        return max(self.decode_side, self.detect.max_side)


@dataclass
class VideoOptions:
    detect: DetectOptions = field(default_factory=DetectOptions)
    every: int = 1  # analyse every N-th frame
    fps: float | None = None  # or: analyse about this many frames per second of video
    # Full-frame Haar on every k-th analysed frame (new faces are found there, so at most about a second late:
    # 25 % faster than every 15th on the benchmark clip, same recall)...
    detect_every: int = 30
    max_detect_interval_s: float = 1.0  # ...and at least this often in video time
    follow: bool = True  # between full-frame detections, re-find each face in a window around its last box
    # Where the cascades miss a known face, it is followed by its look (template matching) this long after the
    # last cascade hit, as long as the match stays above `follow_min_match`.
    follow_s: float = 0.5
    follow_min_match: float = 0.8
    coast_s: float = 0.2  # a face neither found nor followed keeps its last box this long (flicker)
    # A box that matches no track starts a reported one with at least this face score (detect.face_score) or
    # with an eye found inside it; otherwise once the cascades have found it on `confirm_hits` analysed frames.
    min_new_score: float = 0.4
    confirm_hits: int = 2
    min_track_s: float = 0.5  # shorter tracks are flagged `short_track`: in frames.csv, out of the summaries
    keep_short_tracks: bool = False  # ...unless this is set
    batch_size: int = 64
    bin_s: float = 1.0
    annotate: bool = True
    redo: bool = False
    force: bool = False
    max_gap_s: float = 1.0  # a track missed by Haar this long is ended
    iou_threshold: float = 0.3
    max_tracks_plotted: int = 4
    split_frames: int = 9000  # with Ray: a longer video is cut into ranges of about this many frames
    html: bool = True  # OUT/report.html (and track thumbnails under OUT/thumbs/); a batch also writes index.html
    save_faces: bool = False  # a few crops per track (one per second, the most confident) under OUT/faces/<emotion>/

    def __post_init__(self):  # every bad value refused before any work starts, from the CLI or from Python
        check_ranges(self, VIDEO_RANGES)
