"""`batchemo video`: frame-by-frame analysis with face tracks, annotated video and emotion timelines.

Three stages overlap: a decoder thread reads frames; the calling thread detects (Haar every
`detect_every`-th analysed frame, boxes carried by the tracker in between) and cuts crops; a writer thread
classifies crops in batches that span frames, draws and encodes. Memory stays flat: the queues are bounded.
"""
from __future__ import annotations

import json
import queue
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..pipeline import report as R
from ..pipeline.annotate import draw_tracks
from ..pipeline.detect import DetectOptions, detect_faces, refine_faces
from ..pipeline.encode import VideoSink, has_audio, mux_audio
from ..pipeline.model import EmotionModel, crop_faces
from .runtime import claim_output, versions
from ..pipeline.sources import BadInput
from ..pipeline.track import Tracker

PACK_ROWS = 4096  # face rows kept as dicts before they are packed into a DataFrame
FALLBACK_FPS = 25.0


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
    coast_s: float = 0.2  # a face Haar misses keeps its last box this long (flicker)
    batch_size: int = 64
    bin_s: float = 1.0
    annotate: bool = True
    redo: bool = False
    force: bool = False
    max_gap_s: float = 1.0  # a track missed by Haar this long is ended
    iou_threshold: float = 0.3
    max_tracks_plotted: int = 4
    split_frames: int = 9000  # with Ray: a longer video is cut into ranges of about this many frames


@dataclass
class VideoResult:
    source: Path
    out: Path
    status: str  # complete | partial | skipped (already complete)
    frames_decoded: int
    frames_analysed: int
    faces: int
    tracks: int
    seconds: float
    note: str = ""


@dataclass
class _Work:
    """One decoded frame on its way through detection, classification and writing."""

    index: int
    time_s: float
    image: np.ndarray | None
    analysed: bool
    ids: np.ndarray
    boxes: np.ndarray
    crops: np.ndarray | None


def probe(path: Path) -> tuple[cv2.VideoCapture, float, int, int, int]:
    """Open a video: (capture, fps or 0 when unknown, frame count or -1, width, height); BadInput if not."""
    if not path.exists():
        raise BadInput("no such file")
    if path.is_dir():
        raise BadInput("is a directory")
    if path.stat().st_size == 0:
        raise BadInput("empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInput("not a readable video (OpenCV/FFmpeg cannot open it)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0.1 < fps < 1000 else 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return cap, fps, count if count > 0 else -1, w, h


def _decode(cap: cv2.VideoCapture, fps: float, out_q: queue.Queue, stop: threading.Event, first: int = 0,
            last: int | None = None) -> None:
    """Decoder thread: (index, time_s, frame) tuples from frame `first` (the capture is already there) up to
    `last` (exclusive), then None; an exception is passed on as itself."""
    try:
        i = first
        while not stop.is_set() and (last is None or i < last):
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if fps > 0:
                t = i / fps
            else:  # no usable fps in the container: the frame's own timestamp
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                t = ms / 1000 if ms > 0 or i == 0 else i / FALLBACK_FPS
            out_q.put((i, t, frame))
            i += 1
        out_q.put(None)
    except Exception as e:  # noqa: BLE001 - handed to the consumer, which reports it
        out_q.put(e)


@dataclass
class Schedule:
    """Which frames are analysed and which get a full-frame detection; the same for a whole video and for
    each frame range of it, so ranges analysed apart give the rows of one pass."""

    fps: float  # of the container, 0 when unknown
    every: int  # analyse every N-th frame
    detect_every: int  # full-frame Haar on every k-th analysed frame
    interval: float  # seconds between analysed frames

    @classmethod
    def of(cls, fps: float, opts: "VideoOptions") -> "Schedule":
        every = max(1, int(round(fps / opts.fps))) if (opts.fps and fps > 0) else max(1, opts.every)
        interval = every / (fps or FALLBACK_FPS)
        detect_every = max(1, min(opts.detect_every, int(opts.max_detect_interval_s / interval) + 1))
        return cls(fps, every, detect_every, interval)

    def max_gap(self, opts: "VideoOptions") -> int:
        """Analysed frames a track may go unseen and keep its id."""
        return max(1, int(round(opts.max_gap_s / self.interval)))

    def tracker(self, opts: "VideoOptions") -> Tracker:
        return Tracker(iou_threshold=opts.iou_threshold, max_gap=self.max_gap(opts),
                       coast=int(round(opts.coast_s / self.interval)))


@dataclass
class PassResult:
    frames: pd.DataFrame  # face rows (frames.csv columns), track ids of this pass
    decoded: int
    analysed: int
    decode_error: str
    sink: VideoSink | None


def analyse_pass(path: Path, cap: cv2.VideoCapture, em: EmotionModel, opts: VideoOptions, sched: Schedule,
                 first: int = 0, last: int | None = None, annotated: Path | None = None,
                 bar: tqdm | None = None) -> PassResult:
    """Decode frames `first`..`last` (the capture is at `first`), detect, track, classify in batches and, with
    `annotated`, draw and encode them there. The per-range step of the local and the Ray runner."""
    classes = em.classes
    fps = sched.fps
    tracker = sched.tracker(opts)
    frames_q: queue.Queue = queue.Queue(maxsize=32)
    work_q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    rows: list[dict] = []
    # Rows are packed into typed DataFrames every few thousand faces: a dict per face costs ~1 KB, a packed row
    # ~0.2 KB, so memory stays flat with video length (30 min: +8 MB instead of +60 MB).
    packed: list[pd.DataFrame] = []
    sink_holder: dict = {}
    errors: list[BaseException] = []

    def writer() -> None:
        last_label: dict[int, tuple[str, float]] = {}
        try:
            while True:
                batch = work_q.get()
                if batch is None:
                    return
                crops = [w.crops for w in batch if w.crops is not None and len(w.crops)]
                probs = em.predict(np.concatenate(crops), opts.batch_size) if crops else None
                at = 0
                for w in batch:
                    if w.crops is not None and len(w.crops):
                        p = probs[at:at + len(w.crops)]
                        at += len(w.crops)
                        for tid, box, pr in zip(w.ids, w.boxes, p):
                            row = R.face_row(path.name, w.index, round(w.time_s, 6), tid, box, pr, classes)
                            last_label[int(tid)] = (row["emotion"], row["confidence"])
                            rows.append(row)
                    if w.image is not None:
                        shown = [last_label.get(int(tid), ("?", 0.0)) for tid in w.ids]
                        draw_tracks(w.image, w.boxes, w.ids, [e for e, _ in shown], [c for _, c in shown])
                        if "sink" not in sink_holder:
                            h, wd = w.image.shape[:2]
                            sink_holder["sink"] = VideoSink(annotated, wd, h, fps or FALLBACK_FPS)
                        sink_holder["sink"].write(w.image)
                if len(rows) >= PACK_ROWS:
                    packed.append(R.faces_frame(rows, classes))
                    rows.clear()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)
            while work_q.get() is not None:  # drain so the producer never blocks on a dead consumer
                pass

    dec = threading.Thread(target=_decode, args=(cap, fps, frames_q, stop, first, last), daemon=True)
    wr = threading.Thread(target=writer, daemon=True)
    dec.start()
    wr.start()
    decoded = 0
    analysed_before = -(-first // sched.every)  # analysed frames before `first`: the detection schedule is global
    analysed = analysed_before
    decode_error = ""
    pending: list[_Work] = []
    pending_crops = 0
    ids = np.zeros(0, np.int64)
    boxes = np.zeros((0, 4), np.int32)
    try:
        while True:
            item = frames_q.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                decode_error = f"{type(item).__name__}: {item}".splitlines()[0]
                break
            i, t, frame = item
            decoded += 1
            is_analysed = i % sched.every == 0
            crops = None
            if is_analysed:
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if analysed % sched.detect_every == 0:
                    ids, boxes = tracker.update(detect_faces(grey, opts.detect), analysed)
                elif opts.follow:
                    ids, boxes = tracker.follow(analysed, lambda b: refine_faces(grey, b, opts.detect))
                else:
                    ids, boxes = tracker.live(analysed)
                crops = crop_faces(grey, boxes, em.image_size)
                analysed += 1
            pending.append(_Work(i, t, frame if annotated is not None else None, is_analysed, ids, boxes, crops))
            pending_crops += len(boxes) if is_analysed else 0
            if pending_crops >= opts.batch_size or len(pending) >= 48:
                work_q.put(pending)
                pending, pending_crops = [], 0
            if bar is not None:
                bar.update(1)
            if errors:
                break
        if pending:
            work_q.put(pending)
    finally:
        stop.set()
        work_q.put(None)
        wr.join()
        while dec.is_alive():  # unblock a decoder waiting on a full queue
            try:
                frames_q.get_nowait()
            except queue.Empty:
                pass
            dec.join(0.05)
        if "sink" in sink_holder:
            sink_holder["sink"].close()
    if errors:
        raise errors[0]
    packed.append(R.faces_frame(rows, classes))
    frames = pd.concat(packed, ignore_index=True) if len(packed) > 1 else packed[0]
    return PassResult(frames, decoded, analysed - analysed_before, decode_error, sink_holder.get("sink"))


def default_out(path: Path) -> Path:
    return Path("reports") / path.stem


def _done_before(out: Path, path: Path) -> dict | None:
    run = out / "run.json"
    if not run.exists():
        return None
    try:
        info = json.loads(run.read_text())
    except (OSError, ValueError):
        return None
    st = path.stat()
    if info.get("status") in ("complete", "partial") and info.get("input_bytes") == st.st_size \
            and info.get("input_mtime_ns") == st.st_mtime_ns:
        return info
    return None


def prepare_out(path: Path, out: Path, opts: VideoOptions, t0: float) -> VideoResult | None:
    """Claim `out` for this video; the result of an earlier complete run there (to skip), else None."""
    claim_output(out, path, opts.force)
    prev = None if opts.redo else _done_before(out, path)
    if prev is not None:
        c = prev.get("counts", {})
        return VideoResult(path, out, "skipped", c.get("frames_decoded", 0), c.get("frames_analysed", 0),
                           c.get("faces", 0), c.get("tracks", 0), time.time() - t0, "already complete")
    for stale in out.glob(".*.tmp*"):  # leftovers of a killed run, never under the final names
        stale.unlink()
    return None


def analyze_video(path: str | Path, out: str | Path | None = None, model: EmotionModel | str | Path | None = None,
                  options: VideoOptions | None = None, progress: bool = True) -> VideoResult:
    """Analyse one video; write frames.csv, timeline.csv, timeline.png, summary.csv, annotated.mp4, run.json.

    Raises BadInput (one-line reason) for a file that is not a readable video. A re-run on a complete report
    is skipped unless `options.redo`.
    """
    t0 = time.time()
    opts = options or VideoOptions()
    path = Path(path)
    out = Path(out) if out else default_out(path)
    cap, fps, count, width, height = probe(path)
    done = prepare_out(path, out, opts, t0)
    if done is not None:
        cap.release()
        return done
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    sched = Schedule.of(fps, opts)
    tmp_video = out / f".annotated.{int(time.time())}.tmp.mp4"
    bar = tqdm(total=count if count > 0 else None, unit="frame", desc=path.name[:30], disable=not progress,
               dynamic_ncols=True)
    try:
        res = analyse_pass(path, cap, em, opts, sched, annotated=tmp_video if opts.annotate else None, bar=bar)
    finally:
        cap.release()
        bar.close()
    if res.decoded == 0:
        raise BadInput("no frames could be decoded (not a video, or no video stream)")
    return write_reports(path, out, opts, em, sched, res.frames, res.decoded, res.analysed, count, (width, height),
                         res.decode_error, res.sink, t0)


def write_reports(path: Path, out: Path, opts: VideoOptions, em: EmotionModel, sched: Schedule,
                  frames: pd.DataFrame, decoded: int, analysed: int, count: int, size: tuple[int, int],
                  decode_error: str, sink, t0: float, notes: list[str] | None = None) -> VideoResult:
    """frames.csv, timeline.csv/.png, summary.csv, annotated.mp4 (the encoded file `sink.path`, audio muxed back)
    and run.json; the same for a local run and for frame ranges gathered from a cluster."""
    classes = em.classes
    notes = list(notes or [])
    fps = sched.fps
    step_s = 1.0 / (fps or FALLBACK_FPS)
    status = "complete"
    if decode_error:
        status = "partial"
        notes.append(f"decoding failed after {decoded} frames: {decode_error}")
    elif count > 0 and decoded < count - 1:
        # Containers may overstate the count by a frame; more missing means the file broke off.
        status = "partial"
        notes.append(f"decoding stopped after {decoded} of {count} frames (truncated or damaged file)")

    frames_df = frames.sort_values(["frame", "face"], kind="stable").reset_index(drop=True)
    timeline = R.timeline_table(frames_df, classes, opts.bin_s)
    summary = R.track_summary(frames_df, classes, sched.interval)
    duration = decoded * step_s
    from ..pipeline.plots import timeline_png

    R.write_csv(frames_df, out / "frames.csv")
    R.write_csv(timeline, out / "timeline.csv")
    R.write_csv(summary, out / "summary.csv")
    timeline_png(timeline, summary, classes, out / "timeline.png",
                 f"{path.name}: emotion over time (smoothed over {R.SMOOTH_BINS} bins of {opts.bin_s:g} s)",
                 duration, opts.max_tracks_plotted)
    codec = ""
    if sink is not None:
        codec = sink.codec
        if sink.note:
            notes.append(sink.note)
        final_tmp = sink.path
        if has_audio(path):
            muxed = out / f".annotated.{int(time.time())}.mux.tmp.mp4"
            why = mux_audio(sink.path, path, muxed)
            if why:
                notes.append(why)
            else:
                final_tmp = muxed
        final_tmp.replace(out / "annotated.mp4")
        for stale in out.glob(".annotated.*.tmp.mp4"):
            stale.unlink()
    st = path.stat()
    seconds = time.time() - t0
    R.write_json({
        "job": "video",
        "command": "batchemo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "input": str(path.resolve()),
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "out": str(out.resolve()),
        "status": status,
        "notes": notes,
        "options": asdict(opts),
        "model": {"path": str(em.path), "classes": classes, "image_size": em.image_size},
        "video": {"fps": fps or None, "fps_used": fps or FALLBACK_FPS, "frame_count_metadata": count,
                  "width": size[0], "height": size[1], "analyse_every": sched.every,
                  "detect_every": sched.detect_every,
                  "codec": codec},
        "versions": versions(),
        "counts": {"frames_decoded": decoded, "frames_analysed": analysed, "faces": len(frames_df),
                   "tracks": int(frames_df["face"].nunique())},
        "wall_seconds": round(seconds, 3),
        "frames_per_second": round(decoded / seconds, 2) if seconds else None,
    }, out / "run.json")
    return VideoResult(path, out, status, decoded, analysed, len(frames_df), int(frames_df["face"].nunique()),
                       seconds, "; ".join(notes))
