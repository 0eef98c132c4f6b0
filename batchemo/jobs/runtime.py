"""Small shared helpers of the runners: ordered prefetching, run metadata, output-folder ownership."""
from __future__ import annotations

import json
import platform
import sys
from collections import deque
from concurrent.futures import Executor
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
