"""`batchemo video` for one video: claim the report folder (or skip a video already done), one pass over the
frames (`video_pass`), then the report files: frames.csv, timeline.csv/.png, summary.csv, annotated.mp4 with
the input's audio, run.json. The same `write_reports` finishes a video analysed in frame ranges on Ray."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..knobs import described, knob
from .. import report as R
from ..report.encode import mux_audio
from ..report.extras import write_extras
from ..pipeline.ffmpeg import MediaFacts, media_facts, preroll_frames
from ..pipeline.model import EmotionModel
from ..pipeline.files import BadInput, is_photo
from ..pipeline.video import FALLBACK_FPS, VideoInfo, frame_time, open_video, variable_rate_clock
from ..progress import bar_label, bar_options, tqdm
from ..report.events import EventsLog
from .derived import (EPISODES_FILE, RESPONSES_FILE, Derived, derive, derived_counts, derived_options,
                      derived_settings, events_or_none, run_events, write_derived)
from .descriptors import DESCRIPTORS_FILE
from .options import VideoOptions, job_options
from .runtime import (check_settings, claim_output, extra_outputs, read_record, remove_unwritten_extras,
                      run_record)
from .video_pass import PassResult, Schedule, analyse_pass


@described()
@dataclass
class VideoResult:
    """What `analyze_video` did with one video; the report itself is in the folder `out`.

    `table()` reads its frames.csv (one row per face per analysed frame, typed), `table("summary")` its
    summary.csv (one row per track and one for the whole video), `table("timeline")` its timeline.csv."""

    source: Path = knob(doc="The video file.")
    out: Path = knob(doc="Its report folder.")
    status: str = knob(doc="complete; partial (decoding stopped early: `note` says why); skipped (a complete "
                           "report was there: `previous_status`).")
    frames_decoded: int = knob(doc="Frames read from the file.")
    frames_analysed: int = knob(doc="Frames searched for faces (every N-th: VideoOptions `every` or `fps`).")
    faces: int = knob(doc="Face rows: one per face per analysed frame (the rows of frames.csv; `table()` gives "
                          "them).")
    tracks: int = knob(doc="Faces followed across frames, each with an id of its own (`face` in frames.csv).")
    seconds: float = knob(doc="Wall time of the run, in seconds.")
    note: str = knob("", "Why the video is partial, or what else is worth knowing ('' when nothing).")
    previous_status: str = knob("", "A skipped video's status before: complete, or partial (a re-run cannot "
                                    "decode more of it).")

    def table(self, name: str = "frames") -> pd.DataFrame:
        """A table of the report as a typed DataFrame: 'frames' (frames.csv), 'summary', 'timeline', 'episodes' or
        (with events) 'responses'."""
        return R.read_report(self.out / f"{name}.csv")

    def __repr__(self) -> str:
        return (f"VideoResult(source={str(self.source)!r}, out={str(self.out)!r}, status={self.status!r}, "
                f"frames_decoded={self.frames_decoded}, frames_analysed={self.frames_analysed}, faces={self.faces}, "
                f"tracks={self.tracks}, seconds={self.seconds:.1f}" + (f", note={self.note!r})" if self.note else ")"))


def default_out(path: Path) -> Path:
    return Path("reports") / path.stem


def _done_before(out: Path, path: Path) -> dict | None:
    info = read_record(out / "run.json")
    if info is None:
        return None
    st = path.stat()
    if info.get("status") in ("complete", "partial") and info.get("input_bytes") == st.st_size \
            and info.get("input_mtime_ns") == st.st_mtime_ns:
        return info
    return None


def prepare_out(path: Path, out: Path, opts: VideoOptions, t0: float, model,
                events: EventsLog | None) -> VideoResult | None:
    """Claim `out` for this video; the result of an earlier complete run there (to skip), else None. A complete
    report made with other settings (`analysis_settings` of `opts` and `model`) is refused, not passed off as
    this run's; only the summary options may differ, since a batch counts a skipped video by its own. `events`:
    the run's log of opts.events (`run_events`), for the derived tables of a skipped report."""
    claim_output(out, path, opts.force)
    prev = None if opts.redo else _done_before(out, path)
    if prev is not None:
        check_settings(out, prev.get("analysis"), opts, model, ignore=("min_track_s", "keep_short_tracks"))
        wanted = extra_outputs(opts, "annotated.mp4")
        if opts.people:  # the page comes once the run's people are numbered (people.finish_people), whatever
            wanted = {k: v for k, v in wanted.items() if k not in ("report.html", "thumbs")}  # was done before
        if any(on and not (out / name).exists() for name, on in wanted.items()):
            # An extra output asked for now (--save-faces added, say) needs the frames decoded again: analysed
            # again, with the settings just checked, so its rows stay what they were.
            prev = None
    if prev is not None:
        prev = derive_again(path, out, prev, opts, model, events)
        c = prev.get("counts", {})
        note = "; ".join(prev.get("notes") or []) if prev["status"] == "partial" else "already complete"
        return VideoResult(path, out, "skipped", c.get("frames_decoded", 0), c.get("frames_analysed", 0),
                           c.get("faces", 0), c.get("tracks", 0), time.time() - t0, note, prev["status"])
    R.remove_atomic_temps(out)  # leftovers of a killed run, never under the final names
    for stale in out.glob(".annotated.*.tmp.mp4"):
        stale.unlink()
    (out / DESCRIPTORS_FILE).unlink(missing_ok=True)  # --people's descriptors of the analysis this one replaces
    # Written before any report file, on a first run too: a run killed half way must not leave an old record
    # vouching for a mix of two analyses (the next run would skip it as complete), nor CSVs without a record,
    # which the next run would take for files batchemo did not write and refuse to replace without --force.
    R.write_json({"job": "video", "input": str(path.resolve()), "out": str(out.resolve()), "status": "unfinished",
                  "notes": ["an analysis started here and did not finish: run it again"]}, out / "run.json")
    return None


def refuse_photo(path: Path) -> None:
    """ValueError for a photo: FFmpeg would open it as a one-frame video. The rule of `batchemo video` and
    `analyze_video` alike."""
    if is_photo(path):
        raise ValueError(f"{path}: a photo, not a video (for photos use `batchemo folder {path}`)")


def analyze_video(path: str | Path, out: str | Path | None = None, model: EmotionModel | str | Path | None = None,
                  options: VideoOptions | dict | None = None, *, progress: bool = True,
                  command: str | None = None, source: str | None = None, **knobs: Any) -> VideoResult:
    """Analyse one video; write frames.csv, timeline.csv, timeline.png, summary.csv, annotated.mp4, report.html
    and run.json into `out` (default reports/<video stem>).

    `model`: an EmotionModel, a model file, or None for the shipped one. `options`: VideoOptions (or a dict of
    its fields); any field of VideoOptions or DetectOptions may also be given as a keyword, on top of them:
    `analyze_video("clip.mp4", every=5, min_face=40)`. Raises ValueError for a photo (analyze_folder takes
    those) and BadInput (one-line reason) for a file that is not a readable video. A re-run on a complete
    report is skipped unless `redo`. `command`: the command line recorded in run.json; `source`: the `source`
    column (default: the file's name; a batch gives the path under the folder it walked). `res.table()` reads
    the rows found. With `people`, frames.csv gets `person` and the report people.csv (PeopleUnavailable, before
    any work, without the people extra).
    """
    from .people import VideoReport, check_people, finish_people

    opts = job_options(VideoOptions, options, knobs, "analyze_video")
    check_people(opts.people)
    events = events_or_none(opts)  # read once; a bad events file stops the run here, in one line
    res = analyse_video(path, out, model, opts, progress=progress, command=command, source=source, events=events)
    finish_people([VideoReport(source or Path(path).name, res.source, res.out)], None, model, opts, events)
    return res


def analyse_video(path: str | Path, out: str | Path | None, model: EmotionModel | str | Path | None,
                  opts: VideoOptions, *, progress: bool = True, command: str | None = None,
                  source: str | None = None, events: EventsLog | None = None) -> VideoResult:
    """`analyze_video` up to its own report: the person numbers, given once per run over all its videos, are left
    to the caller (`people.finish_people`); a batch and Ray's tasks run this for each video. `events`: the run's
    log of opts.events, read once for all its videos (read here where not given: a Ray task)."""
    t0 = time.time()
    path = Path(path)
    refuse_photo(path)
    out = Path(out) if out else default_out(path)
    events = run_events(opts, events)
    with open_video(path) as (cap, info):
        done = prepare_out(path, out, opts, t0, model, events)
        if done is not None:
            return done
        em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
        sched = Schedule.of(info.fps, opts)
        tmp_video = out / f".annotated.{int(time.time())}.tmp.mp4"
        try:
            # Pre-roll frames are in the container's count but never decoded: a bar counting them ends short.
            shown = info.frame_count - preroll_frames(path)
            with tqdm(total=shown if info.frame_count > 0 else None, unit="frame", desc=bar_label(path.name),
                      **bar_options(progress)) as bar:
                res = analyse_pass(path, cap, em, opts, sched, annotated=tmp_video if opts.annotate else None,
                                   bar=bar, clock=variable_rate_clock(path, sched.fps))
        except KeyboardInterrupt:
            tmp_video.unlink(missing_ok=True)  # a half-encoded video is of no use to the next run
            raise
    if res.decoded == 0:
        raise BadInput("no frames could be decoded (not a video, or no video stream)")
    return write_reports(path, out, opts, em, sched, info, res, t0=t0, command=command, source=source,
                         events=events)


def _status(res: PassResult, info: VideoInfo, media: MediaFacts, preroll: int = 0) -> tuple[str, list[str]]:
    """`preroll`: frames the container counts that are never shown (preroll_frames)."""
    if res.decode_error:
        return "partial", [f"decoding failed after {res.decoded} frames: {res.decode_error}"]
    if info.frame_count > 0 and res.decoded < info.frame_count - preroll - 1:
        # Containers may overstate the count by a few frames (seen: 98 for 95, 90 for 88, files that play to the
        # end anywhere): whole when only a few are missing and the stream decoded up to the container's duration.
        # A file that broke off misses more, and FFmpeg's duration of a cut AVI is only what is left of it.
        duration = media.duration_s
        slack = max(0.1, 3 / (info.fps or FALLBACK_FPS))
        few = info.frame_count - res.decoded <= max(3, 0.05 * info.frame_count)
        if few and duration is not None and res.stream_end_s >= duration - slack:
            return "complete", [f"the container says {info.frame_count} frames; {res.decoded} decode, to the end "
                                f"of its {duration:.2f} s"]
        return "partial", [f"decoding stopped after {res.decoded} of {info.frame_count} frames (truncated or "
                           "damaged file)"]
    return "complete", []


def _finish_annotated(path: Path, out: Path, res: PassResult, media: MediaFacts, notes: list[str],
                      fps: float) -> str:
    """annotated.mp4 from the encoded file (every decoded frame at `fps`), the input's audio muxed back; its codec
    ('' when none)."""
    if res.annotated is None:
        return ""
    if res.annotated.note:
        notes.append(res.annotated.note)
    final_tmp = res.annotated.path
    if media.has_audio:
        muxed = out / f".annotated.{int(time.time())}.mux.tmp.mp4"
        why = mux_audio(res.annotated.path, path, muxed, res.decoded / fps)
        if why:
            notes.append(why)
        else:
            final_tmp = muxed
    final_tmp.replace(out / "annotated.mp4")
    res.annotated.path.unlink(missing_ok=True)  # the copy without audio; another run's temps are not ours
    return res.annotated.codec


def short_tracks(frames: pd.DataFrame, seen: float | pd.Series, min_track_s: float,
                 end_s: float | None = None) -> pd.Series:
    """Per row: does its track span less than `min_track_s` (first to last analysed frame, plus the time its last
    frame stands for, `seen` as in `report.row_seconds`)? Such a track is more often a misfire than a face."""
    if frames.empty:
        return pd.Series(False, index=frames.index, dtype="boolean")
    t = frames.groupby("face")["time_s"]
    last_seen = R.row_seconds(frames, seen, end_s).loc[t.transform("idxmax")].to_numpy()
    span = t.transform("max") - t.transform("min") + last_seen
    # time_s is kept to the microsecond: 12 frames at 24 fps span 0.4999996 s by it, and exactly 0.5 s.
    return (span < min_track_s - 2e-6).astype("boolean")


def frame_seconds(frames: pd.DataFrame, sched: Schedule, end_s: float, clock: list[float] | None) -> pd.Series:
    """How long each face row's frame stands for: up to the next analysed frame, never past `end_s`. By the
    frames' own clock where the video has one (a variable-rate clip's frames are not 1 / its average fps apart),
    else one steady interval."""
    if not clock:
        return R.row_seconds(frames, sched.interval, end_s)
    nxt = np.array([frame_time(i + sched.every, sched.fps, clock) for i in frames["frame"]], dtype=float)
    return pd.Series(np.clip(np.minimum(nxt, end_s) - frames["time_s"].to_numpy(float), 0.0, None),
                     index=frames.index)


def _describe(path: Path, out: Path, frames: pd.DataFrame) -> None:
    """--people's descriptors of this video's tracks into OUT/people.npz, here, where the video was just analysed
    (a Ray task, not the driver, spends the ~1 s a track): after the pass, since dlib holds the GIL."""
    from ..pipeline.identity import PeopleUnavailable
    from .descriptors import describe_video

    try:
        describe_video(path, out, frames)
    except PeopleUnavailable:  # a Ray worker without the extra (the driver has it: checked first) leaves it to it
        pass


def _timeline_png(path: Path, out: Path, d: Derived, opts: VideoOptions, classes: list[str], duration_s: float,
                  min_track_s: float) -> None:
    from ..report.plots import timeline_png

    timeline_png(d.timeline, d.summary, classes, out / "timeline.png",
                 title=f"{path.name}: emotion over time (smoothed over {R.SMOOTH_BINS} bins of {opts.bin_s:g} s)",
                 duration_s=duration_s, max_tracks=opts.max_tracks_plotted, empty_note=empty_note(d, min_track_s),
                 events=d.events)


def empty_note(d: Derived, min_track_s: float) -> str:
    """What an empty timeline.png says of why it is empty (shown only where it is): no faces; every track short;
    or --drop-uncertain left out every row the short tracks left."""
    if d.frames.empty:
        return "no faces found in this video"
    if len(d.shown) and d.uncertain_left_out == len(d.shown):
        return "every row uncertain (--drop-uncertain)"
    return f"only tracks shorter than {min_track_s:g} s (see frames.csv, --keep-short-tracks)"


def recorded_seconds(path: Path, frames: pd.DataFrame, record: dict) -> tuple[pd.Series, float]:
    """How long each row of a report's frames.csv stands for, and the video's length, from its run.json (and the
    video's own clock where its rate varies): the `seen` the analysis summed its seconds on screen by."""
    v = record.get("video") or {}
    fps_used = float(v.get("fps_used") or FALLBACK_FPS)
    every = int(v.get("analyse_every") or 1)
    sched = Schedule(float(v.get("fps") or 0), every, int(v.get("detect_every") or 1), every / fps_used)
    duration_s = v.get("duration_s")
    if duration_s is None:  # a run.json older than the field: to the end of the last row's frame
        duration_s = float(frames["time_s"].max()) + sched.interval if len(frames) else 0.0
    return frame_seconds(frames, sched, float(duration_s), variable_rate_clock(path, sched.fps)), float(duration_s)


def derive_again(path: Path, out: Path, prev: dict, opts: VideoOptions, model, events: EventsLog | None) -> dict:
    """A complete report a run skips, its derived tables (jobs/derived.py) made again from frames.csv where this
    run asks for other values than the ones they were made with (or they predate them, or one of them is
    missing); its run.json as it is then, `options` saying the values used beside `derived`. The analysis's own
    settings stay the report's: its `--min-track` flags and `--keep-short-tracks`, and `--bin`, which this run
    does not change either (a batch counts a skipped video by its own settings). `events`: the run's log of
    opts.events (`run_events`)."""
    wanted = derived_settings(opts, events)
    tables = [EPISODES_FILE] + ([RESPONSES_FILE] if opts.events else [])
    if prev.get("derived") == wanted and all((out / name).is_file() for name in tables):
        return prev
    ran = prev.get("options") or {}
    opts = replace(opts, bin_s=ran.get("bin_s", opts.bin_s))
    frames = R.read_report(out / "frames.csv")
    seen, duration_s = recorded_seconds(path, frames, prev)
    d = derive(frames, seen, opts, str(frames["source"].iloc[0]) if len(frames) else path.name,
               keep_short_tracks=bool(ran.get("keep_short_tracks", True)), events=events)
    write_derived(out, d)
    _timeline_png(path, out, d, opts, R.classes_of(frames), duration_s,
                  float(ran.get("min_track_s", opts.min_track_s)))
    record = {**prev, "options": derived_options(ran, opts), "derived": wanted,
              "counts": derived_counts(prev.get("counts", {}), d)}
    R.write_json(record, out / "run.json")
    if opts.html and not opts.people and (out / "report.html").is_file():  # --people writes its page later
        from ..report.html import write_video_page
        from .people import card_of

        write_video_page(out, path, d.frames, d.timeline, d.summary, record, classes=R.classes_of(frames),
                         card=card_of(model), episodes=d.episodes, events=d.events)
    return record


def write_reports(path: Path, out: Path, opts: VideoOptions, em: EmotionModel, sched: Schedule, info: VideoInfo,
                  res: PassResult, *, t0: float, notes: list[str] | None = None,
                  command: str | None = None, source: str | None = None,
                  events: EventsLog | None) -> VideoResult:
    """frames.csv, timeline.csv/.png, summary.csv, annotated.mp4 and run.json of a pass's result; the same for
    a local run and for frame ranges gathered from a cluster. `events`: the run's log of opts.events
    (`run_events`)."""
    classes = em.classes
    media = media_facts(path)  # one `ffmpeg -i` for both questions: is it whole, has it audio
    status, status_notes = _status(res, info, media, preroll_frames(path))
    notes = list(notes or []) + status_notes
    source = source or path.name
    frames = res.frames.sort_values(["frame", "face"], kind="stable").reset_index(drop=True)
    frames["source"] = pd.Series(source, index=frames.index, dtype="string")
    # What was decoded, to the end of its last frame: the length the timelines and report.html show (by the
    # stream's timestamps where a variable-rate video runs longer than its frames / fps, as its `time_s` do).
    duration_s = max(res.decoded / (sched.fps or FALLBACK_FPS), res.stream_end_s)
    seen = frame_seconds(frames, sched, duration_s, res.clock)
    frames["short_track"] = short_tracks(frames, seen, opts.min_track_s)
    d = derive(frames, seen, opts, source, keep_short_tracks=opts.keep_short_tracks, events=events)
    frames, shown, timeline, summary = d.frames, d.shown, d.timeline, d.summary
    write_derived(out, d)
    if opts.people:
        _describe(path, out, frames)
    _timeline_png(path, out, d, opts, classes, duration_s, opts.min_track_s)
    codec = _finish_annotated(path, out, res, media, notes, sched.fps or FALLBACK_FPS)
    st = path.stat()
    seconds = time.time() - t0
    tracks = int(frames["face"].nunique())
    counts = {"frames_decoded": res.decoded, "frames_analysed": res.analysed, "faces": len(frames), "tracks": tracks,
              "short_tracks": int(frames.loc[frames["short_track"], "face"].nunique()), **d.counts()}
    video = {"fps": sched.fps or None, "fps_used": sched.fps or FALLBACK_FPS, "frame_count_metadata": info.frame_count,
             "width": info.width, "height": info.height, "analyse_every": sched.every,
             "detect_every": sched.detect_every, "codec": codec, "duration_s": round(duration_s, 6)}
    record = run_record("video", path, out, opts, em, command=command, counts=counts, seconds=seconds,
                        input_bytes=st.st_size,
                        input_mtime_ns=st.st_mtime_ns, status=status, notes=notes, video=video,
                        frames_per_second=round(res.decoded / seconds, 2) if seconds else None,
                        derived=derived_settings(opts, events))
    R.write_json(record, out / "run.json")
    from ..report.crops import save_video_faces
    from ..report.html import track_thumbs, write_video_page

    # With --people the page waits for the person numbers, given once the run's every video is described
    # (people.finish_people writes it, its thumbnails and the person pictures in one pass over the video).
    write_extras(html=opts.html and not opts.people, save_faces=opts.save_faces,
                 thumbs=lambda: track_thumbs(out, frames, summary),
                 save=lambda also: save_video_faces(out, path, shown, also=also),
                 page=lambda thumbs: write_video_page(out, path, frames, timeline, summary, record, classes=classes,
                                                      card=em.card, thumbs=thumbs, episodes=d.episodes,
                                                      events=d.events))
    # Only a re-analysis gets here: what this run did not write belongs to the analysis it replaced.
    remove_unwritten_extras(out, opts, "annotated.mp4")
    return VideoResult(path, out, status, res.decoded, res.analysed, len(frames), tracks, seconds, "; ".join(notes))
