"""One pass over a video's frames (all of them, or one frame range): decode → detect and track → crop →
classify in batches that span frames → rows, and with an output path, draw and encode.

Three stages overlap: a thread decodes frames ahead, the calling thread finds faces (`FaceFinder`), and a
writer thread classifies, draws and encodes (`FrameWriter`). Memory stays flat: the hand-overs are bounded and
face rows are packed into typed tables as they come.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import report as R
from ..report.annotate import annotate
from ..pipeline.detect import detect_scored, has_eyes, refine_faces
from ..report.encode import Encoded, LazySink
from ..pipeline.faces import Faces, classify, crop_faces
from ..pipeline.follow import LazyTemplate, follow_template
from ..pipeline.looks import FrameLooks, same_look
from ..pipeline.shots import ShotBoundaries
from ..pipeline.model import EmotionModel
from ..pipeline.video import FALLBACK_FPS, Frame, read_frames
from ..pipeline.track import Tracker, iou
from .options import VideoOptions
from .runtime import BackgroundError, in_background

PACK_ROWS = 4096  # face rows kept as dicts before they are packed into a DataFrame
BATCH_FRAMES = 48  # frames handed to the writer at once, at most (fewer when their faces fill a model batch)
# Frames decoded ahead of the face finder. 16, not 32: with the finder now faster than the writer the hand-overs run
# full, and 16 frames fewer held kept peak memory at the level before (casme x3000: same wall time, 3 runs each).
DECODE_AHEAD = 16


@dataclass
class Schedule:
    """Which frames are analysed and which get a full-frame detection; the same for a whole video and for
    each frame range of it, so ranges analysed apart give the rows of one pass."""

    fps: float  # of the container, 0 when unknown
    every: int  # analyse every N-th frame
    detect_every: int  # full-frame Haar on every k-th analysed frame
    interval: float  # seconds between analysed frames

    @classmethod
    def of(cls, fps: float, opts: VideoOptions) -> "Schedule":
        every = max(1, int(round(fps / opts.fps))) if (opts.fps and fps > 0) else max(1, opts.every)
        interval = every / (fps or FALLBACK_FPS)
        # Full-frame detections about max_detect_interval_s apart: the first whole count of analysed frames past
        # it (16 at 15 fps, 30 at 29.97). Exactly at or under it (15, 29) measured worse on the real clips
        # (benchmarks/bench_faces.py: the Hamilton clip's recall 67.2 % -> 54.9 %): which frames get the full
        # detection moves, and with it which faces the tracks pick up.
        detect_every = max(1, min(opts.detect_every, int(opts.max_detect_interval_s / interval) + 1))
        return cls(fps, every, detect_every, interval)

    def max_gap(self, opts: VideoOptions) -> int:
        """Analysed frames a track may go unseen and keep its id."""
        return max(1, int(round(opts.max_gap_s / self.interval)))

    def tracker(self, opts: VideoOptions) -> Tracker:
        return Tracker(iou_threshold=opts.iou_threshold, max_gap=self.max_gap(opts),
                       coast=int(round(opts.coast_s / self.interval)), confirm_hits=opts.confirm_hits)

    def analysed_before(self, frame: int) -> int:
        """Analysed frames before `frame`: the detection schedule counts from the start of the video."""
        return -(-frame // self.every)


class FaceFinder:
    """The detect → track step of one pass. Full-frame Haar on schedule, at once after a scene cut, and a few
    frames after a face was lost; in between, each known face is looked for near its last box by the frontal,
    then the profile cascade, and where both miss it, followed by its look (template matching) for up to
    `follow_s` after a cascade last saw it. A new box is reported at once with a face score of at least
    `min_new_score` or an eye inside it, otherwise once a cascade finds it again; the tracker gives ids."""

    def __init__(self, opts: VideoOptions, sched: Schedule, image_size: int, first: int = 0):
        self.opts, self.sched, self.image_size = opts, sched, image_size
        self.tracker = sched.tracker(opts)
        self.step = sched.analysed_before(first)  # analysed frames so far, counted from the start of the video
        self.follow_steps = int(round(opts.follow_s / sched.interval))
        self.last_full = -sched.detect_every
        self.redetect = False
        self.shots = ShotBoundaries(sched.interval)

    def find(self, source: str, frame: Frame) -> Faces:
        """The faces of an analysed frame, with their crops."""
        bgr = frame.image
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        looks = FrameLooks(bgr)
        cut = self.shots.is_cut(bgr, grey)
        scheduled = self.step % self.sched.detect_every == 0
        # A lost face triggers a full-frame pass, but not more often than every few frames (a crowd loses faces
        # all the time, and full frames are what costs).
        early = self.redetect and self.step - self.last_full >= max(2, self.sched.detect_every // 6)
        if cut:
            self.tracker.end_all()
        if scheduled or cut or early or not self.opts.follow:
            self.last_full = self.step
            # A new shot's faces are new tracks, and a weak one is believed on its second cascade hit: look over
            # the whole frame again soon, as when a face is lost (the Hamilton clip's audience after its cut).
            self.redetect = cut
            boxes, scores = detect_scored(grey, self.opts.detect)
            trusted = [sc >= self.opts.min_new_score or has_eyes(grey, b) for b, sc in zip(boxes, scores)]
            self.tracker.update(boxes, self.step, scores, trusted, looks)
        if self.opts.follow:
            self._look_again(grey, looks)
        live = self.tracker.live_tracks(self.step)
        for t in live:
            if t.last_hit == self.step:
                t.template = LazyTemplate(grey, t.box)
                t.look = looks(t.box)
        found_by = [t.how if t.last_step == self.step else "held" for t in live]
        self.step += 1
        boxes = np.stack([t.box for t in live]).astype(np.int32) if live else np.zeros((0, 4), np.int32)
        return Faces(source, frame.index, round(frame.time_s, 6), boxes, np.asarray([t.id for t in live], np.int64),
                     crop_faces(grey, boxes, self.image_size), scores=np.asarray([t.score for t in live]),
                     found_by=found_by)

    def _look_again(self, grey: np.ndarray, looks: FrameLooks) -> None:
        """Each recent track not seen on this frame: cascades in a window round its box, else its look (its
        template); either only where the face found there has the track's colours (`looks.same_look`)."""
        step = self.step
        self.tracker.expire(step)
        missing = self.tracker.unseen(step)
        if not missing:
            return
        found = refine_faces(grey, np.stack([t.box for t in missing]), self.opts.detect, profile=True)
        # The hits closest to their track's last box claim their face first: where two people stand close, the
        # window of one may hold the other's face, which then stays the other's.
        closeness = [float(iou(t.box.reshape(1, 4), np.asarray(hit[0]).reshape(1, 4))[0, 0]) if hit is not None
                     else -1.0 for t, hit in zip(missing, found)]
        left = []
        for i in sorted(range(len(missing)), key=lambda i: -closeness[i]):
            t, hit = missing[i], found[i]
            if hit is not None and not self.tracker.taken(hit[0], step, t) and same_look(t.look, looks(hit[0])):
                t.seen(hit[0], step, hit[2], hit[1])
            else:
                left.append(i)
        for t in (missing[i] for i in sorted(left)):
            if t.template is not None and t.hits > 1 and step - t.last_hit <= self.follow_steps \
                    and (template := t.template.image()) is not None:
                box, match = follow_template(grey, t.box, template)
                if match >= self.opts.follow_min_match and not self.tracker.taken(box, step, t) \
                        and same_look(t.look, looks(box)):
                    t.seen(box, step, "followed")
                    continue
            if t.last_step == step - 1:  # just lost: look over the whole frame soon
                self.redetect = True


@dataclass
class _Shown:
    """A decoded frame handed to the writer: its faces (an unanalysed frame shows the last analysed frame's)."""

    faces: Faces
    analysed: bool
    image: np.ndarray | None  # None when nothing is drawn


@dataclass
class FrameWriter:
    """The writer stage: classifies a batch of frames' faces, keeps their rows and, with `annotated`, draws the
    frames and encodes them (the encoder opens on the first frame, when its size is known)."""

    em: EmotionModel
    batch_size: int
    fps: float
    annotated: Path | None
    rows: list[dict] = field(default_factory=list)
    packed: list[pd.DataFrame] = field(default_factory=list)

    def __post_init__(self):
        self.sink = LazySink(self.annotated, self.fps or FALLBACK_FPS) if self.annotated is not None else None

    def write(self, batch: list[_Shown]) -> None:
        classify([s.faces for s in batch if s.analysed], self.em, self.batch_size)
        for s in batch:
            if s.analysed:
                self.rows += R.face_rows(s.faces, self.em.classes)
            if s.image is not None:
                annotate(s.image, s.faces, self.em.classes, with_ids=True)
                self.sink.write(s.image)
        if len(self.rows) >= PACK_ROWS:
            # A dict per face costs ~1 KB, a packed row ~0.2 KB: memory stays flat with video length.
            self.packed.append(R.faces_frame(self.rows, self.em.classes))
            self.rows = []

    def frames_table(self) -> pd.DataFrame:
        tables = self.packed + [R.faces_frame(self.rows, self.em.classes)]
        return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]

    def close(self) -> Encoded | None:
        return self.sink.close() if self.sink is not None else None


@dataclass
class PassResult:
    frames: pd.DataFrame  # face rows (frames.csv columns), track ids of this pass
    decoded: int
    analysed: int
    decode_error: str  # why decoding stopped early ('' when the stream simply ended)
    annotated: Encoded | None  # the encoded video, when one was asked for
    stream_end_s: float = 0.0  # where the last decoded frame ends, by the stream's own timestamps
    clock: list[float] | None = None  # a variable-rate video's frame times (`video.variable_rate_clock`)


def analyse_pass(path: Path, cap: cv2.VideoCapture, em: EmotionModel, opts: VideoOptions, sched: Schedule,
                 *, first: int = 0, last: int | None = None, annotated: Path | None = None,
                 bar: tqdm | None = None, clock: list[float] | None = None) -> PassResult:
    """Frames `first`..`last` of `path` (the capture is at `first`): face rows and, with `annotated`, the drawn
    frames encoded there; `clock`: a variable-rate video's frame times (`video.variable_rate_clock`). The
    per-range step of the local and the Ray runner."""
    finder = FaceFinder(opts, sched, em.image_size, first)
    writer = FrameWriter(em, opts.batch_size, sched.fps, annotated)
    try:
        decoded, decode_error, end = _run_stages(path, cap, finder, writer, sched, first, last, annotated is not None,
                                                 bar, clock)
    finally:
        encoded = writer.close()  # the encoder is closed whatever happened
    return PassResult(writer.frames_table(), decoded, finder.step - sched.analysed_before(first), decode_error,
                      encoded, end, clock)


def _run_stages(path: Path, cap: cv2.VideoCapture, finder: FaceFinder, writer: FrameWriter, sched: Schedule,
                first: int, last: int | None, draw: bool, bar: tqdm | None,
                clock: list[float] | None = None) -> tuple[int, str, float]:
    """Decode in a thread, find faces here, hand batches of frames to the writer's thread; (frames decoded,
    decode error, where the last decoded frame ends in stream time)."""
    decoded, decode_error, end = 0, "", 0.0
    last_faces = Faces(path.name)
    pending: list[_Shown] = []
    in_flight: deque = deque()
    ahead = in_background(read_frames(cap, sched.fps, first, last, clock), DECODE_AHEAD)
    with ThreadPoolExecutor(1) as pool, ahead as frames:
        def hand_over(batch: list[_Shown]) -> None:
            in_flight.append(pool.submit(writer.write, batch))
            while len(in_flight) > 2:  # bounded: the writer is at most two batches behind
                in_flight.popleft().result()

        try:
            for frame in frames:
                decoded += 1
                end = frame.stream_s + 1 / (sched.fps or FALLBACK_FPS)
                analysed = frame.index % sched.every == 0
                if analysed:
                    last_faces = finder.find(path.name, frame)
                pending.append(_Shown(last_faces, analysed, frame.image if draw else None))
                if sum(len(s.faces) for s in pending if s.analysed) >= writer.batch_size \
                        or len(pending) >= BATCH_FRAMES:
                    hand_over(pending)
                    pending = []
                if bar is not None:
                    bar.update(1)
        except BackgroundError as e:
            decode_error = str(e)
        if pending:
            hand_over(pending)
        while in_flight:
            in_flight.popleft().result()
    return decoded, decode_error, end
