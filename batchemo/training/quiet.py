"""TensorFlow's own log lines kept off the console of `batchemo train` (and `evaluate --folds`, `export`): the C++
INFO and WARNING lines it prints when it loads and while it trains, and the TFLite converter's SavedModel dump, land
among the few lines the user needs. `--verbose` lets them through.

Two kinds need two means: TF_CPP_MIN_LOG_LEVEL silences TensorFlow's C++ logger, but only if set before TensorFlow
is imported, and absl's lines printed before absl::InitializeLog (at import) and Keras's "Saved artifact" listing
(printed by the converter) ignore it; those are captured at the file-descriptor level while they run.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator

_quiet = False


def quiet_tensorflow(quiet: bool = True, import_now: bool = False) -> None:
    """Keep TensorFlow's log lines off fd 1 and 2 in this process from now on (`quiet`; the CLI's --verbose passes
    False, letting them through). `import_now`: import TensorFlow at once, its import-time lines captured, for a
    command that will use it through code that does not import it by `import_keras` (the pipeline's Keras path)."""
    global _quiet
    _quiet = quiet
    if not quiet or "tensorflow" in sys.modules:  # once TensorFlow is loaded, the variable is read no more
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the user's own setting wins
    if import_now:
        with contextlib.suppress(ImportError):  # the code that needs it says what to install, in its own words
            import_keras()


def import_keras():
    """Keras (and with its TensorFlow backend, TensorFlow), its import-time lines captured in a quiet process.
    Training imports it through here, so that a run refused for its data or options never waits for it."""
    with tensorflow_output():
        try:
            import keras
        except ImportError as e:  # TensorFlow is the `train` extra: the folder and video jobs run without it
            raise ImportError(f'training needs TensorFlow: pip install "batchemo[train]" ({e})') from None
    return keras


@contextlib.contextmanager
def tensorflow_output() -> Iterator[None]:
    """While TensorFlow runs something chatty (its import, the TFLite converter): its output captured when the
    process is quiet, passed through otherwise. Captured output is dropped on success and written out if the
    block raises, so a failure keeps its explanation."""
    if not _quiet:
        yield
        return
    with tempfile.TemporaryFile() as log:
        try:
            with _fds_into(log):
                yield
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise


@contextlib.contextmanager
def _fds_into(log) -> Iterator[None]:
    """File descriptors 1 and 2, and Python's sys.stdout and sys.stderr (which a test runner may have replaced),
    written into `log` for the duration."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = []
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:  # no such descriptor (a daemon): nothing to capture there
                continue
            os.dup2(log.fileno(), fd)
        text = io.TextIOWrapper(os.fdopen(os.dup(log.fileno()), "wb"), errors="replace", write_through=True)
        with text, contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
