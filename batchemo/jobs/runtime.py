"""Small shared helpers of the jobs: ordered prefetching, a producer thread, run.json, output-folder ownership."""
from __future__ import annotations

import hashlib
import json
import platform
import queue
import shutil
import sys
import threading
from collections import deque
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from ..knobs import setting_changes
from ..report import read_record
from .journal import is_report_folder

T = TypeVar("T")
R = TypeVar("R")


def prefetch_map(pool: Executor, fn: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """fn over items in a pool, results in input order, at most `ahead` in flight (bounded memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class BackgroundError(Exception):
    """What stopped the producer of `in_background`; `error` is the exception itself."""

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}".splitlines()[0])
        self.error = error


_END = object()


@contextmanager
def in_background(items: Iterable[T], ahead: int) -> Iterator[Iterator[T]]:
    """`items` produced by a thread, at most `ahead` waiting (bounded memory); an exception in the producer
    reaches the consumer as BackgroundError where the items end. Leaving the block stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(BackgroundError(e))

    def consume() -> Iterator[T]:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BackgroundError):
                raise item
            yield item

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(0.05)


# Options that change how fast a report is made or which extra files it has, never its rows. `people` adds a
# column given after the rows are final, again on every run (a report made without it takes it on a re-run).
# DERIVED: what is worked out from the final rows (the `uncertain` column, what leaves uncertain rows out, episodes
# and responses); a run with other values derives them again from the rows (jobs/derived.py), never re-detects.
DERIVED = {"min_confidence", "drop_uncertain", "episode_onset", "episode_offset", "episode_min_s",
           "episode_bridge_s", "episode_smooth_s", "episode_neutral", "events", "response_window_s"}
ROW_NEUTRAL = {"batch_size", "redo", "force", "workers", "pending_megapixels", "ray", "split_frames", "annotate",
               "html", "save_faces", "max_tracks_plotted", "people"} | DERIVED
_HASHES: dict = {}


def model_identity(model) -> dict:
    """A model as far as it decides the rows: its file's content, classes and input size, and the temperature
    and mirror averaging applied (a card changed by `batchemo calibrate` is another model for the report). `model`: an
    EmotionModel, a path, or None for the default; only the card is read, not the network."""
    from ..pipeline.model import EmotionModel, default_model_path, read_card

    if isinstance(model, EmotionModel):
        if model.path is None or not Path(model.path).is_file():  # built in memory (e.g. from_keras): no file
            return {"file": None, "sha256": None, "classes": model.classes, "image_size": model.image_size,
                    "temperature": round(model.temperature, 6), "flip_average": model.flip}
        path, em = Path(model.path), model
    else:
        path = Path(model) if model else default_model_path()
        card = read_card(path)  # read as EmotionModel reads it (its defaults included), without the network
        em = EmotionModel(path, list(card["classes"]), int(card["input"]["image_size"]), card)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {"file": path.name, "sha256": _HASHES[key], "classes": em.classes, "image_size": em.image_size,
            "temperature": round(em.temperature, 6), "flip_average": em.flip}


def analysis_settings(options, model) -> dict:
    """What decides a report's rows: the model (`model_identity`) and every option but the ROW_NEUTRAL ones.
    Two runs with other settings must not share one report."""
    opts = json.loads(json.dumps(asdict(options), default=str))
    return {"model": model_identity(model), "options": {k: v for k, v in opts.items() if k not in ROW_NEUTRAL}}


def recorded_settings(path: Path) -> dict | None:
    """The `analysis` settings a run.json (or a journal's analysis.json) recorded; None where there are none."""
    return (read_record(path) or {}).get("analysis")


def check_settings(out: Path, previous: dict | None, options, model, ignore: Iterable[str] = (),
                   interrupted: bool = False) -> dict:
    """This run's `analysis_settings`, after refusing to add to a report made with other ones (`ignore`: option
    names whose difference the caller handles; `interrupted`: `previous` is an interrupted run's). A report
    written before settings were recorded (None) is taken as it is; an option it predates counts as its default,
    and one it has that no longer exists is passed over."""
    current = analysis_settings(options, model)
    if previous is None:
        return current
    skip = {"model.file"} | {f"options.{k}" for k in ignore}  # the file's name: its content is the sha256
    changed = setting_changes(previous, current, analysis_settings(type(options)(), model), skip)
    if changed:
        what = "an interrupted run in it used" if interrupted else "was made with"
        raise OutputConflict(f"{out}: {what} other settings ({', '.join(changed)}): pass --redo to start over "
                             "with these, or choose another --out")
    return current


def extra_outputs(opts, annotated: str) -> dict[str, bool]:
    """A report folder's extra outputs (name -> does `opts` ask for it). `annotated`: the job's annotated output
    (folder or video)."""
    return {annotated: opts.annotate, "report.html": opts.html, "thumbs": opts.html, "faces": opts.save_faces}


def remove_unwritten_extras(out: Path, opts, annotated: str) -> None:
    """After a run that changed a report's rows (a --redo, a changed input): the extra outputs it did not write
    belong to the analysis before, and go, so one report folder never shows two analyses."""
    from ..report.crops import remove_own_crops

    for name, written in extra_outputs(opts, annotated).items():
        p = Path(out) / name
        if not written and name == "faces" and p.is_dir():
            remove_own_crops(p)  # crops relabelled by hand are the user's
        elif not written and p.is_dir():
            shutil.rmtree(p)
        elif not written and p.is_file():
            p.unlink()


def run_record(job: str, input_path: Path, out: Path, options, model, *, command: str | None, counts: dict,
               seconds: float, **extra) -> dict:
    """run.json of either job: what ran (the command line as the CLI gives it; None from Python), on what,
    with which options, model and library versions, what decides its rows (`analysis`), and what came out."""
    return {"job": job, "command": command, "input": str(Path(input_path).resolve()), "out": str(Path(out).resolve()),
            **extra, "options": asdict(options), "analysis": analysis_settings(options, model),
            "model": {"path": str(model.path), "classes": model.classes, "image_size": model.image_size},
            "versions": versions(), "counts": counts, "wall_seconds": round(seconds, 3)}


def versions() -> dict:
    import cv2
    import numpy
    import pandas

    out = {"python": sys.version.split()[0], "platform": platform.platform(), "opencv": cv2.__version__,
           "numpy": numpy.__version__, "pandas": pandas.__version__}
    from importlib.metadata import PackageNotFoundError, version

    # Read from package metadata: importing TensorFlow just for its version would cost seconds.
    for name in ("batchemo", "tensorflow-cpu", "tensorflow", "ai-edge-litert"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class OutputConflict(Exception):
    """--out already holds the report of another input."""


# What a report folder holds, by name: replaced or removed by a run there.
REPORT_NAMES = ("faces.csv", "files.csv", "summary.csv", "frames.csv", "timeline.csv", "timeline.png", "run.json",
                "report.html", "annotated", "annotated.mp4", "faces", "thumbs", "people.csv", "people.npz",
                "episodes.csv", "responses.csv")


def refuse_replacing(folder: Path, names: tuple[str, ...], what: str, writer: str) -> None:
    """OutputConflict where `folder`, known not to be `what`, holds any of `names`: `writer` would replace files
    batchemo did not write."""
    theirs = [n for n in names if (folder / n).exists()]
    if theirs:
        raise OutputConflict(f"{folder} is not {what}, and {writer} would replace its {', '.join(theirs)}; "
                             "choose another --out or pass --force")


def claim_output(out: Path, input_path: Path, force: bool) -> None:
    """Refuse to mix two inputs' reports in one folder, or to write one over files batchemo did not write
    (a folder of the user's own `faces/` or `summary.csv`), unless forced; create the folder (clear errors)."""
    if not force:
        previous = (read_record(out / "run.json") or {}).get("input")
        if previous and Path(previous).resolve() != input_path.resolve():
            raise OutputConflict(f"{out} holds the report of {previous}; choose another --out or pass --force")
        if not is_report_folder(out):
            refuse_replacing(out, REPORT_NAMES, "a batchemo report", "a report there")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputConflict(f"{out}: cannot write the report here ({e.strerror or e})") from None
