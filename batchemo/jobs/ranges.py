"""Long videos cut into frame ranges, so that several workers share one video: plan the ranges, analyse one,
join the track ids across ranges, draw one range's annotated segment, join the segments.

How track ids are joined: each range is analysed from a warm-up start before its first frame (a full-detection
frame at least the track gap plus one detection period earlier), so its tracker has found the faces on screen
by the time its own frames begin. The warm-up frames overlap the previous range's frames: a track of the new
range takes the id of the previous range's track whose boxes it matches (IoU >= 0.5) on most of those frames
(each id used once); a track with no match is a new face and gets a new id. At the end ids are renumbered in
order of first appearance (frame, then the order the range's tracker numbered them), as one pass over the whole
video numbers them.
"""
from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..report import faces_from_rows
from ..report.annotate import annotate
from ..report.encode import Encoded, LazySink
from ..pipeline.ffmpeg import ffmpeg_exe, ffmpeg_failure, frame_times
from ..pipeline.faces import Faces
from ..pipeline.model import EmotionModel
from ..pipeline.files import BadInput
from ..pipeline.video import FALLBACK_FPS, first_uneven_frame, open_video, seek_to
from ..pipeline.track import iou
from .options import VideoOptions
from .video_pass import PassResult, Schedule, analyse_pass

BOX = ["x", "y", "w", "h"]


@dataclass(frozen=True)
class FrameRange:
    start: int  # first frame reported by this range
    stop: int | None  # first frame of the next range; None: to the end of the video
    warm: int  # first frame decoded (warm-up before `start`)


def plan(count: int, sched: Schedule, opts: VideoOptions, frames_per_range: int) -> list[FrameRange]:
    """Ranges of about `frames_per_range` frames over a video of `count` frames (the last runs to the end, so
    a frame count that is off by a few does not lose frames)."""
    period = sched.every * sched.detect_every  # ranges start on full-detection frames
    size = max(period, frames_per_range // period * period)
    warmup = (sched.max_gap(opts) + 1 + sched.detect_every) * sched.every
    starts = list(range(0, max(count, 1), size))
    if len(starts) > 1 and count - starts[-1] < size // 2:  # no short tail range
        starts.pop()
    return [FrameRange(s, starts[k + 1] if k + 1 < len(starts) else None, max(0, (s - warmup) // period * period))
            for k, s in enumerate(starts)]


class NotSeekable(BadInput):
    """The container cannot be seeked to an exact frame: the video must be analysed in one pass."""


def seek(cap: cv2.VideoCapture, frame: int) -> None:
    """Put the capture at `frame`; refuse where the container cannot be seeked to that exact frame (the rows'
    frame numbers would be off)."""
    if frame != 0 and not seek_to(cap, frame):
        at = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES)))
        raise NotSeekable(f"cannot seek to frame {frame} exactly (landed on {at}); analyse it in one pass "
                          "(--split-frames 0)")


def check_seekable(path: Path, plan: list[FrameRange], fps: float) -> None:
    """NotSeekable unless every frame can be seeked to exactly: OpenCV seeks by time, frame k at k / fps, which
    lands on the k-th frame only where the frames are evenly spaced at that rate. A phone's variable-rate video
    seeked to frame 54 shows frame 58 while reporting 54, so every frame's timestamp is checked, and one seek
    is tried (a container without an index cannot seek at all)."""
    if len(plan) < 2:
        return
    times = frame_times(Path(path))
    if times is None or fps <= 0:
        raise NotSeekable("its frame timestamps cannot be read, so frame ranges cannot be checked; analyse it in one "
                          "pass (--split-frames 0)")
    uneven = first_uneven_frame(times, fps)
    if uneven is not None:
        raise NotSeekable(f"variable frame rate (frame {uneven} is at {times[uneven] - times[0]:.3f} s, not "
                          f"{uneven / fps:.3f} s at {fps:g} fps): frame ranges would misnumber frames; analyse it "
                          "in one pass (--split-frames 0)")
    with open_video(Path(path)) as (cap, _):
        seek(cap, plan[1].warm)
        seek(cap, plan[1].start)


def analyse_range(path: Path, model: EmotionModel | str | Path, opts: VideoOptions, r: FrameRange) -> PassResult:
    """The per-range step: face rows (this range's own track ids) from `r.warm` on, and the decoded and analysed
    frame counts from `r.start` on."""
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    with open_video(Path(path)) as (cap, info):
        sched = Schedule.of(info.fps, opts)
        seek(cap, r.warm)
        res = analyse_pass(Path(path), cap, em, opts, sched, first=r.warm, last=r.stop)
    decoded = max(0, res.decoded - (r.start - r.warm))
    first_analysed = -(-r.start // sched.every) * sched.every
    analysed = len(range(first_analysed, r.start + decoded, sched.every))
    return PassResult(res.frames, decoded, analysed, res.decode_error, None, res.stream_end_s)


def join_ranges(parts: list[tuple[FrameRange, pd.DataFrame]]) -> pd.DataFrame:
    """One frames table from the ranges' rows, track ids joined across ranges (module docstring)."""
    kept: list[pd.DataFrame] = []
    prev: pd.DataFrame | None = None
    next_id = 0
    for r, df in parts:
        mapping: dict[int, int] = {}
        if prev is not None and len(df) and len(prev):
            votes: Counter = Counter()
            old = prev[prev["frame"] >= r.warm]
            new = df[df["frame"] < r.start]
            old_by_frame = dict(tuple(old.groupby("frame")))
            for frame, g in new.groupby("frame"):
                o = old_by_frame.get(frame)
                if o is None:
                    continue
                for a, b in zip(*np.nonzero(iou(g[BOX].to_numpy(float), o[BOX].to_numpy(float)) >= 0.5)):
                    votes[(int(g["face"].iloc[a]), int(o["face"].iloc[b]))] += 1
            seen = new[new["frame"].isin(old_by_frame)].groupby("face").size()  # overlap frames per new track
            used: set[int] = set()
            for (new_id, old_id), n in votes.most_common():
                if n >= 0.5 * seen.get(new_id, 0) and new_id not in mapping and old_id not in used:
                    mapping[new_id] = old_id
                    used.add(old_id)
        body = df[df["frame"] >= r.start].copy()
        body["_range"], body["_local"] = len(kept), body["face"]
        for local in sorted(body["face"].unique()):
            if int(local) not in mapping:
                mapping[int(local)] = next_id
                next_id += 1
        body["face"] = body["face"].map(mapping).astype("int64")
        kept.append(body)
        prev = body
    frames = pd.concat(kept, ignore_index=True)
    # Faces first reported on one frame are numbered in the order that range's tracker numbered them, which is
    # the order a single pass numbers them in (not left to right: an older, weakly-born track confirmed on the
    # same frame as a new face comes first, wherever it is).
    first = frames.sort_values(["frame", "_range", "_local"], kind="stable").drop_duplicates("face")
    order = {int(old): new for new, old in enumerate(first["face"])}
    frames["face"] = frames["face"].map(order).astype("int64")
    frames = frames.drop(columns=["_range", "_local"])
    return frames.sort_values(["frame", "face"], kind="stable").reset_index(drop=True)


def annotate_range(path: Path, frames: pd.DataFrame, classes: list[str], opts: VideoOptions, r: FrameRange,
                   segment: Path) -> Encoded:
    """Draw the joined rows on this range's frames and encode them into `segment` (what the local pass draws:
    a frame that is not analysed shows the faces of the last analysed frame)."""
    segment = Path(segment)
    by_frame = dict(tuple(frames.groupby("frame")))
    with open_video(Path(path)) as (cap, info), LazySink(segment, info.fps or FALLBACK_FPS) as sink:
        sched = Schedule.of(info.fps, opts)
        seek(cap, r.start)  # a range starts on an analysed frame
        shown = Faces(Path(path).name)
        for i in range(r.start, r.stop if r.stop is not None else 2**62):
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if i % sched.every == 0:
                rows = by_frame.get(i)
                shown = faces_from_rows(rows, classes) if rows is not None else Faces(Path(path).name)
            annotate(frame, shown, classes, with_ids=True)
            sink.write(frame)
    return sink.close() or Encoded(segment, "", "")


def concat_segments(segments: list[Path], out: Path) -> str:
    """Join encoded segments (same size and codec) into `out` without re-encoding; '' or why it failed."""
    exe = ffmpeg_exe()
    if not exe:
        return "no ffmpeg binary to join the annotated segments"
    listing = out.with_name(out.name + ".txt")
    listing.write_text("".join("file '" + str(Path(s).resolve()).replace("'", "'\\''") + "'\n" for s in segments))
    try:
        r = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                            str(listing), "-c", "copy", "-movflags", "+faststart", str(out)],
                           capture_output=True, text=True, errors="replace")
    finally:
        listing.unlink()
    return ffmpeg_failure(r, "annotated segments not joined")
