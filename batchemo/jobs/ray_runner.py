"""The Ray runner (`--ray ADDRESS`, extra `batchemo[ray]`): the same per-file, per-batch and per-range steps as
the local runner, scheduled by Ray. Folders go through Ray Data: detection in CPU tasks, classification in a
pool of actors that each load the model once. Videos: one task per video, and a long video cut into frame
ranges analysed by parallel tasks (`ranges`). The driver gathers the results and writes the reports with the
local code, so the files are a local run's.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..report.encode import Encoded
from ..report.events import EventsLog
from ..pipeline.faces import Faces
from ..pipeline.model import EmotionModel
from ..pipeline.files import BadInput, SourceFile
from ..pipeline.video import probe
from ..progress import bar_label, bar_options, tqdm
from . import ranges as RG
from .derived import run_events
from .options import FolderOptions, VideoOptions
from .photos import Chunk, Photo, detect_photo, finish_batch
from .ranges import NotSeekable
from .runtime import OutputConflict
from .video import VideoResult, analyse_video, prepare_out, write_reports
from .video_pass import PassResult, Schedule

EXPECTED = (BadInput, OutputConflict, FileNotFoundError)  # a video's own failure, returned with its result


def init(address: str) -> None:
    """`local` (or empty): a Ray instance on this machine; otherwise a cluster address (`auto`, `ray://...`)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs the Ray extra: pip install 'batchemo[ray]'") from None
    if not ray.is_initialized():
        # Ray's own INFO lines (instance started, execution plans) would bury the job's one progress bar.
        ray.init(address=None if address in ("", "local") else address, ignore_reinit_error=True,
                 log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
    from ray.data import DataContext

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # after the import, which sets up its own logging

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar over files, as the local runner does
    ctx.execution_options.preserve_order = True


def actor_pool(n: int) -> dict:
    """map_batches' argument for a pool of n actors: Ray 2.9-2.50 warn that `compute=` is deprecated in favour
    of `concurrency=`, Ray 2.51+ the other way round."""
    import ray

    major, minor = (int(x) for x in ray.__version__.split(".")[:2])
    return {"compute": ray.data.ActorPoolStrategy(size=n)} if (major, minor) >= (2, 51) else {"concurrency": n}


def _detect_batch(batch: pd.DataFrame, opts: FolderOptions, image_size: int) -> pd.DataFrame:
    out = []
    for r in batch.itertuples(index=False):
        photo = detect_photo(SourceFile(Path(r.path), r.rel, int(r.size), int(r.mtime_ns)), opts, image_size, False)
        crops = photo.faces.crops
        out.append({"path": r.path, "rel": r.rel, "size": r.size, "mtime_ns": r.mtime_ns,
                    "width": photo.width or -1, "height": photo.height or -1, "error": photo.error,
                    "boxes": photo.faces.boxes.astype(np.int32).tobytes(),
                    "scores": np.asarray(photo.faces.scores, np.float64).tobytes(),
                    "crops": crops.tobytes() if crops is not None else b""})
    return pd.DataFrame(out)


class _Classifier:
    """A Ray actor: loads the model once, classifies the crops of many files per call, writes annotated copies."""

    def __init__(self, model_path: str, opts: FolderOptions, annotated_dir: str | None):
        self.em = EmotionModel.load(model_path)
        self.opts = opts
        self.annotated_dir = Path(annotated_dir) if annotated_dir else None

    def _photo(self, r) -> Photo:
        s = self.em.image_size
        sf = SourceFile(Path(r.path), r.rel, int(r.size), int(r.mtime_ns))
        faces = Faces(r.rel, boxes=np.frombuffer(r.boxes, np.int32).reshape(-1, 4),
                      crops=np.frombuffer(r.crops, np.uint8).reshape(-1, s, s) if r.crops else None,
                      scores=np.frombuffer(r.scores, np.float64))
        return Photo(sf, faces, None if r.width < 0 else int(r.width), None if r.height < 0 else int(r.height),
                     r.error)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        chunk = finish_batch([self._photo(r) for r in batch.itertuples(index=False)], self.em, self.opts,
                             self.annotated_dir)
        return pd.DataFrame({"file": [f for f, _ in chunk], "faces": [rows for _, rows in chunk]})


def ray_folder_runner(todo: list[SourceFile], em: EmotionModel, opts: FolderOptions,
                      annotated_dir: Path | None) -> Iterator[Chunk]:
    import ray.data

    init(opts.ray or "")
    if not todo:
        return
    items = [{"path": str(Path(s.path).resolve()), "rel": s.rel, "size": s.size, "mtime_ns": s.mtime_ns}
             for s in todo]
    n_actors = max(1, min(4, int(ray.cluster_resources().get("CPU", 1)) // 2))
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // 8, 200)))
    ds = ds.map_batches(_detect_batch, batch_format="pandas", batch_size=8,
                        fn_kwargs={"opts": replace(opts, ray=None), "image_size": em.image_size})
    ds = ds.map_batches(_Classifier, batch_format="pandas", batch_size=32, **actor_pool(n_actors),
                        fn_constructor_kwargs={"model_path": str(Path(em.path).resolve()),
                                               "opts": replace(opts, ray=None),
                                               "annotated_dir": str(annotated_dir.resolve()) if annotated_dir
                                               else None})
    for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
        yield [(f, list(r)) for f, r in zip(batch["file"], batch["faces"])]


def ray_videos(paths: list[Path], outs: list[Path], model_path: Path, opts: VideoOptions, address: str,
               *, progress: bool = True, command: str | None = None, sources: list[str] | None = None,
               events: EventsLog | None = None) -> list:
    """Videos on Ray, results (or the exception that stopped one) in input order: one task per video, and a
    video longer than 1.5 x `opts.split_frames` frames cut into frame ranges analysed by several tasks
    (`ray_video_ranges`). `events`: the run's log of opts.events, for the reports written here (a task reads
    the file itself, on its machine)."""
    import ray

    init(address)

    sources = sources or [None] * len(paths)  # write_reports names each by its file name

    @ray.remote(num_cpus=1)
    def one(path: str, out: str, source: str):
        try:
            # The person numbers are the driver's (analyze_videos, after every video): a task describes its
            # video's faces into its report (people.npz), not more.
            return analyse_video(Path(path), Path(out), Path(model_path), opts, progress=False, command=command,
                                 source=source)
        except EXPECTED as e:
            return e

    def frame_count(p: Path) -> int:
        try:
            return probe(p).frame_count
        except BadInput:
            return -1

    split = [opts.split_frames > 0 and frame_count(Path(p)) > 1.5 * opts.split_frames for p in paths]
    refs = {k: one.remote(str(Path(p).resolve()), str(Path(o).resolve()), sources[k])
            for k, (p, o) in enumerate(zip(paths, outs)) if not split[k]}
    results = []
    for k, (p, o) in enumerate(zip(paths, outs)):
        if split[k]:
            try:
                results.append(ray_video_ranges(Path(p), Path(o), Path(model_path), opts, progress=progress,
                                                command=command, source=sources[k], events=events))
            except NotSeekable:  # no exact frame seeking in this container: one task after all
                results.append(ray.get(one.remote(str(Path(p).resolve()), str(Path(o).resolve()), sources[k])))
            except EXPECTED as e:
                results.append(e)
        else:
            results.append(ray.get(refs[k]))
    return results


def _analyse_ranges(path: Path, model: str, opts: VideoOptions, plan: list, total: int,
                    progress: bool) -> list[PassResult]:
    import ray

    analyse = ray.remote(num_cpus=1)(RG.analyse_range)
    pending = {analyse.remote(str(path.resolve()), model, opts, r): k for k, r in enumerate(plan)}
    parts: list = [None] * len(plan)
    with tqdm(total=total, unit="frame", desc=bar_label(path.name), **bar_options(progress)) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready[0])
            parts[k] = ray.get(ready[0])
            bar.update(parts[k].decoded)
    return parts


def _annotate_ranges(path: Path, out: Path, frames: pd.DataFrame, classes: list[str], opts: VideoOptions,
                     plan: list, stamp: int, notes: list[str]) -> Encoded | None:
    """Annotated segments drawn by parallel tasks and joined; None (and a note) when they cannot be joined."""
    import ray

    draw = ray.remote(num_cpus=1)(RG.annotate_range)
    segments = [out / f".annotated.{stamp}.seg{k:04d}.tmp.mp4" for k in range(len(plan))]
    encoded = ray.get([
        draw.remote(str(path.resolve()), frames[(frames["frame"] >= r.start)
                                                & (frames["frame"] < (r.stop if r.stop is not None else 2**62))],
                    classes, opts, r, seg)
        for r, seg in zip(plan, segments)])
    joined = out / f".annotated.{stamp}.tmp.mp4"
    why = RG.concat_segments([e.path for e in encoded if e.codec], joined)
    for seg in segments:
        seg.unlink(missing_ok=True)
    if why:
        # No annotated video this time: an older one must not pass for this run's.
        joined.unlink(missing_ok=True)
        (out / "annotated.mp4").unlink(missing_ok=True)
        notes.append(why)
        return None
    return Encoded(joined, encoded[0].codec, encoded[0].note)


def ray_video_ranges(path: Path, out: Path, model_path: Path, opts: VideoOptions, *, progress: bool = True,
                     command: str | None = None, source: str | None = None,
                     events: EventsLog | None = None) -> VideoResult:
    """One long video on Ray: frame ranges analysed by parallel tasks, track ids joined, annotated segments
    drawn in parallel and joined; the reports are written by the local code (module `ranges`). `events`: the
    run's log of opts.events (read here where not given)."""
    t0 = time.time()
    events = run_events(opts, events)
    info = probe(path)
    done = prepare_out(path, out, opts, t0, model_path, events)
    if done is not None:
        return done
    sched = Schedule.of(info.fps, opts)
    plan = RG.plan(info.frame_count, sched, opts, opts.split_frames)
    RG.check_seekable(path, plan, info.fps)
    em = EmotionModel.load(model_path)
    parts = _analyse_ranges(path, str(Path(model_path).resolve()), opts, plan, info.frame_count, progress)
    decoded = sum(p.decoded for p in parts)
    if decoded == 0:
        raise BadInput("no frames could be decoded (not a video, or no video stream)")
    frames = RG.join_ranges([(r, p.frames) for r, p in zip(plan, parts)])
    notes: list[str] = []
    annotated = _annotate_ranges(path, out, frames, em.classes, opts, plan, int(t0), notes) if opts.annotate else None
    res = PassResult(frames, decoded, sum(p.analysed for p in parts),
                     next((p.decode_error for p in parts if p.decode_error), ""), annotated, parts[-1].stream_end_s)
    return write_reports(path, out, opts, em, sched, info, res, t0=t0, notes=notes, command=command, source=source,
                         events=events)
