"""The options of the two main jobs, with their defaults (the CLI's defaults are these), checked when made."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from ..knobs import OptionError, check_fields, described, knob
from ..report.episodes import EpisodeRule
from ..pipeline.detect import DETECT_RANGES, DetectOptions, Range

# Photos are searched for faces on a copy whose long side is at most 640 px (InsightFace's default detection
# size; 3x faster than 1280 on a 2 MP photo): faces under about 4 % of the long side need a larger --detect-size.
PHOTO_DETECT_SIDE = 640
VIDEO_DETECT_SIDE = 1280


FOLDER_RANGES = {"decode_side": Range(0), "batch_size": Range(1), "max_megapixels": Range(0, strict=True),
                 "workers": Range(1), "pending_megapixels": Range(0, strict=True), "min_confidence": Range(0, high=1)}
VIDEO_RANGES = {
    "every": Range(1), "fps": Range(0, strict=True), "detect_every": Range(1),
    "max_detect_interval_s": Range(0, strict=True), "follow_s": Range(0), "follow_min_match": Range(-1, high=1),
    "coast_s": Range(0), "min_new_score": Range(0, high=1), "confirm_hits": Range(1),
    "min_track_s": Range(0, flag="--min-track"), "batch_size": Range(1), "bin_s": Range(0, strict=True, flag="--bin"),
    "max_gap_s": Range(0, strict=True), "iou_threshold": Range(0, strict=True, high=1), "max_tracks_plotted": Range(1),
    "split_frames": Range(0), "min_confidence": Range(0, high=1),
    "episode_onset": Range(0, strict=True, high=1), "episode_offset": Range(0, high=1),
    "episode_min_s": Range(0, flag="--episode-min"), "episode_bridge_s": Range(0, flag="--episode-bridge"),
    "episode_smooth_s": Range(0, flag="--episode-smooth"),
    "response_window_s": Range(0, strict=True, flag="--response-window"),
}
MIN_CONFIDENCE_DOC = ("A row whose calibrated confidence is below this is flagged `uncertain` (the last column of "
                      "{table}): at 0.5, the crowd's majority would more likely than not call the face something "
                      "else (docs/episodes.md).")
DROP_UNCERTAIN_DOC = ("Leave uncertain rows out of {what} (run.json's counts say how many); they stay in {table}.")
PEOPLE_DOC = ("Number the people: the same `person` in {where} for the same person across the run ({groups}), "
              "and people.csv; from face-identity descriptors of a few good faces each (needs the people extra: "
              'pip install "batchemo[people]").')
DETECT_DOC = ("Face detection (DetectOptions, or a dict of its fields). What it leaves unset keeps this job's "
              "defaults: the detection size (max_side) is {side} px unless it says otherwise.")


def job_detect(detect: DetectOptions | dict, side: int) -> DetectOptions:
    """`detect` as a DetectOptions with the job's detection size where it leaves it to the job: a DetectOptions
    made for one knob must not bring another job's default for the others."""
    if isinstance(detect, dict):
        detect = DetectOptions(**detect)
    elif not isinstance(detect, DetectOptions):
        raise TypeError(f"detect must be a DetectOptions or a dict of its fields, e.g. detect={{'min_face': 40}} "
                        f"(got {type(detect).__name__})")
    return replace(detect, max_side=side) if detect.max_side is None else detect


@described(FOLDER_RANGES)
@dataclass(frozen=True)
class FolderOptions:
    """Options of `analyze_folder` (and `batchemo folder`): how the photos of a folder are analysed.

    Checked when made (a wrong type or a value out of range raises, naming the field) and frozen:
    `dataclasses.replace(opts, workers=4)` makes a changed copy, checked again.
    Example: `FolderOptions(detect={"min_face": 20}, annotate=False)`."""

    detect: DetectOptions = knob(factory=DetectOptions, doc=DETECT_DOC.format(side=PHOTO_DETECT_SIDE))
    decode_side: int = knob(1920, "Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their long side stays at "
                                  "least this many pixels (0: full size). Detection, crops and annotated copies use "
                                  "that image; boxes are reported in full-size pixels.")
    batch_size: int = knob(64, "Faces per model call (crops from many photos).")
    annotate: bool = knob(True, "Write annotated copies under OUT/annotated/.")
    redo: bool = knob(False, "Start over instead of resuming a previous run in OUT.")
    force: bool = knob(False, "Write into an OUT that holds another input's report.")
    max_megapixels: float = knob(40.0, "Refuse photos this large or larger, in megapixels (memory guard).")
    workers: int = knob(2, "Threads decoding and detecting while the model classifies.")
    pending_megapixels: float = knob(60.0, "Photos waiting for their faces to be classified are held in memory: "
                                           "at most this many megapixels of them.")
    ray: str | None = knob(None, "None: run here, on threads; '' or 'local': a local Ray instance; else the "
                                 "address of a Ray cluster.")
    html: bool = knob(True, "Write OUT/report.html (and its thumbnails under OUT/thumbs/).")
    save_faces: bool = knob(False, "Save one crop per face under OUT/faces/<emotion>/ (and faces/index.csv).")
    people: bool = knob(False, PEOPLE_DOC.format(groups="photo faces", where="faces.csv"))
    min_confidence: float = knob(0.5, MIN_CONFIDENCE_DOC.format(table="faces.csv"))
    drop_uncertain: bool = knob(False, DROP_UNCERTAIN_DOC.format(what="summary.csv and people.csv",
                                                                 table="faces.csv"))

    def __post_init__(self):  # every bad value refused before any work starts, from the CLI or from Python
        object.__setattr__(self, "detect", job_detect(self.detect, PHOTO_DETECT_SIDE))
        check_fields(self, FOLDER_RANGES)

    @property
    def keep_side(self) -> int:
        """The long side a large JPEG keeps when decoded reduced: `decode_side`, raised to the detection's own
        size (--detect-size), and 0 (full size) where detection runs at full size (--detect-size 0). A decode
        below the detection's size would raise the smallest face found to the cascade's 24 px window in
        decoded pixels: 48 px of the original at 1/2, not --min-face."""
        if self.decode_side == 0 or self.detect.max_side == 0:
            return 0
        return max(self.decode_side, self.detect.max_side)


@described(VIDEO_RANGES)
@dataclass(frozen=True)
class VideoOptions:
    """Options of `analyze_video` and `analyze_videos` (and `batchemo video`): which frames are analysed, how
    faces are found and followed between detections, and how the report sums them up.

    Checked when made (a wrong type or a value out of range raises, naming the field) and frozen:
    `dataclasses.replace(opts, every=5)` makes a changed copy, checked again.
    Example: `VideoOptions(fps=5, detect={"min_face": 40}, annotate=False)`."""

    detect: DetectOptions = knob(factory=DetectOptions, doc=DETECT_DOC.format(side=VIDEO_DETECT_SIDE))
    every: int = knob(1, "Analyse every N-th frame.")
    fps: float | None = knob(None, "Analyse about this many frames per second of video instead (overrides `every`; "
                                   "None: `every` decides).")
    # 25 % faster than every 15th on the benchmark clip, same recall: new faces are found there, so at most
    # about a second late.
    detect_every: int = knob(30, "Full-frame detection on every k-th analysed frame; in between, each face is "
                                 "re-found in a window around its last box.")
    max_detect_interval_s: float = knob(1.0, "...and a full-frame detection at least this often, in seconds of "
                                             "video.")
    follow: bool = knob(True, "Between full-frame detections, re-find each face in a window around its last box.")
    follow_s: float = knob(0.5, "Seconds a known face the cascades miss is followed by its look (template "
                                "matching) after the last cascade hit...")
    follow_min_match: float = knob(0.8, "...as long as the template match (normalised correlation, -1 to 1) stays "
                                          "at least this.")
    coast_s: float = knob(0.2, "Seconds a face neither found nor followed keeps its last box (flicker).")
    min_new_score: float = knob(0.4, "A box that matches no track starts a reported one with at least this face "
                                     "score (or with an eye found inside it)...")
    confirm_hits: int = knob(2, "...or once the cascades have found it on this many analysed frames.")
    min_track_s: float = knob(0.5, "Tracks shorter than this many seconds are flagged `short_track` in frames.csv "
                                   "and left out of the timeline and summary.")
    keep_short_tracks: bool = knob(False, "Keep short tracks in the timeline and summary.")
    batch_size: int = knob(64, "Faces per model call (crops span frames).")
    bin_s: float = knob(1.0, "Timeline bin width, in seconds.")
    annotate: bool = knob(True, "Write annotated.mp4.")
    redo: bool = knob(False, "Analyse again even if a complete report exists.")
    force: bool = knob(False, "Write into an OUT that holds another input's report.")
    max_gap_s: float = knob(1.0, "A track missed by the cascades this many seconds is ended.")
    iou_threshold: float = knob(0.3, "A detected box continues the track whose last box it overlaps at least this "
                                     "much (intersection over union), or, from the frame before, whose centre is "
                                     "within one box side; after a gap, only with the track's colours.")
    max_tracks_plotted: int = knob(4, "Tracks drawn in timeline.png (those on the most frames).")
    split_frames: int = knob(9000, "With Ray: a video longer than 1.5x this many frames is cut into ranges of about "
                                   "this many frames, analysed side by side (0: never).")
    html: bool = knob(True, "Write OUT/report.html (and track thumbnails under OUT/thumbs/); a batch also writes "
                            "index.html.")
    save_faces: bool = knob(False, "Save a few crops per track (one per second, the most confident) under "
                                   "OUT/faces/<emotion>/.")
    people: bool = knob(False, PEOPLE_DOC.format(groups="tracks, across the videos of a batch", where="frames.csv"))
    min_confidence: float = knob(0.5, MIN_CONFIDENCE_DOC.format(table="frames.csv"))
    drop_uncertain: bool = knob(False, DROP_UNCERTAIN_DOC.format(
        what="timeline.*, summary.csv, people.csv, episodes.csv and responses.csv", table="frames.csv"))
    # Episodes (episodes.csv; report/episodes.py): the defaults and why are in docs/episodes.md. The defaults are
    # EpisodeRule's, one source for the jobs and for report.episodes' own callers.
    episode_onset: float = knob(EpisodeRule.onset, "An episode of an emotion starts where its smoothed probability "
                                                   "reaches this (calibrated: 0.5 = the crowd's majority would more "
                                                   "likely than not call the face that)...")
    # Checked against the onset too, by a rule of its own (__post_init__).
    episode_offset: float = knob(EpisodeRule.offset, "...and lasts until it falls below this (hysteresis; at most "
                                                     "the onset).")
    episode_min_s: float = knob(EpisodeRule.min_s, "Episodes shorter than this many seconds are left out.")
    episode_bridge_s: float = knob(EpisodeRule.bridge_s, "Two episodes of one emotion on one track less than this "
                                                         "many seconds apart are one.")
    episode_smooth_s: float = knob(EpisodeRule.smooth_s, "Probabilities are smoothed over a centred window of this "
                                                         "many seconds of each track before the thresholds (0: not "
                                                         "smoothed).")
    episode_neutral: bool = knob(EpisodeRule.neutral, "Count neutral episodes too.")
    events: str | None = knob(None, "A stimulus log: CSV of time_s, label and optionally source (the video it is "
                                    "for); writes responses.csv and marks the events on report.html's timelines.")
    response_window_s: float = knob(3.0, "With events: the seconds after each event a response is looked for.")

    def __post_init__(self):  # every bad value refused before any work starts, from the CLI or from Python
        object.__setattr__(self, "detect", job_detect(self.detect, VIDEO_DETECT_SIDE))
        if self.events is not None and not isinstance(self.events, str):  # a Path, as Python callers pass files
            object.__setattr__(self, "events", str(self.events))
        check_fields(self, VIDEO_RANGES)
        if self.episode_offset > self.episode_onset:
            raise OptionError("episode_offset", f"must be at most episode_onset ({self.episode_onset:g}) "
                                                f"(got {self.episode_offset:g})")

    @property
    def episode_rule(self) -> EpisodeRule:
        return EpisodeRule(self.episode_onset, self.episode_offset, self.episode_min_s, self.episode_bridge_s,
                           self.episode_smooth_s, self.episode_neutral)


Options = TypeVar("Options", FolderOptions, VideoOptions)


def job_options(cls: type[Options], options: Options | dict | None, knobs: dict[str, Any], caller: str) -> Options:
    """The options a job runs with: `options` (an instance of `cls`, a dict of its fields, or None for the
    defaults) with `knobs` on top, each given to the options class it belongs to (`min_face=40` to `detect`), as
    `analyze_folder(path, min_face=40)` reads. Options of another job, or a knob neither class has, are refused
    with what to pass."""
    if options is None:
        options = cls()
    elif isinstance(options, dict):
        options = cls(**options)
    elif not isinstance(options, cls):
        raise TypeError(f"{caller}: options must be a {cls.__name__} (or a dict of its fields), not "
                        f"{type(options).__name__}; e.g. {caller}(..., options=batchemo.{cls.__name__}(...))")
    own = {f.name for f in fields(cls)} - {"detect"}
    detect = {f.name for f in fields(DetectOptions)}
    unknown = sorted(set(knobs) - own - detect)
    if unknown:
        cli = _cli_names().get(unknown[0])  # a CLI name of this job's field only: --bin is no hint for photos
        close = cli if cli in own | detect else next(iter(difflib.get_close_matches(unknown[0], own | detect, 1)), "")
        hint = f" (did you mean {close}?)" if close else ""
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}{hint}; it takes the fields "
                        f"of {cls.__name__} and DetectOptions as keywords (help(batchemo.{cls.__name__}))")
    if not knobs:
        return options
    new_detect = replace(options.detect, **{k: v for k, v in knobs.items() if k in detect})
    return replace(options, detect=new_detect, **{k: v for k, v in knobs.items() if k in own})


def _cli_names() -> dict[str, str]:
    """Field names by the command line's name where the two differ (detect_size -> max_side): the first name a
    user of the CLI tries."""
    tables = (FOLDER_RANGES, VIDEO_RANGES, DETECT_RANGES)
    return {rng.flag.lstrip("-").replace("-", "_"): name for t in tables for name, rng in t.items() if rng.flag}
