"""Small shared helpers of the jobs: ordered prefetching, a producer thread, run.json, output-folder ownership."""
from __future__ import annotations

import json
import platform
import queue
import sys
import threading
from collections import deque
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

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


def run_record(job: str, command: str | None, input_path: Path, out: Path, options, model, counts: dict,
               seconds: float, **extra) -> dict:
    """run.json of either job: what ran (the command line as the CLI gives it; None from Python), on what,
    with which options, model and library versions, and what came out."""
    return {"job": job, "command": command, "input": str(Path(input_path).resolve()), "out": str(Path(out).resolve()),
            **extra, "options": asdict(options),
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


def claim_output(out: Path, input_path: Path, force: bool) -> None:
    """Refuse to mix two inputs' reports in one folder unless forced; create the folder (clear errors)."""
    run_json = out / "run.json"
    if run_json.exists() and not force:
        try:
            previous = json.loads(run_json.read_text()).get("input")
        except (OSError, ValueError):
            previous = None
        if previous and Path(previous).resolve() != input_path.resolve():
            raise OutputConflict(f"{out} holds the report of {previous}; choose another --out or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputConflict(f"{out}: cannot write the report here ({e.strerror or e})") from None
