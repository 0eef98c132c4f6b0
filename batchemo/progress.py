"""Progress bars of the jobs: tqdm.auto, so that a notebook gets a widget; on a terminal a bar redrawn in place;
to a file or a pipe (a log) a line now and then, not a redraw ten times a second."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["bar_label", "bar_options", "tqdm"]

LABEL_CHARS = 30  # a bar's label, at most: the bar itself needs the rest of an 80-column terminal
LOG_INTERVAL_S = 30.0  # seconds between a redirected run's progress lines (the last state is always written)


def _in_notebook() -> bool:
    return "tqdm.notebook" in sys.modules and issubclass(tqdm, sys.modules["tqdm.notebook"].tqdm)


def bar_options(enabled: bool) -> dict:
    """Keyword arguments for a job's `tqdm(...)`: off unless `enabled`; few updates where stderr is no terminal
    (a notebook's widget excepted: it is redrawn in place)."""
    interactive = _in_notebook() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    if interactive:
        return {"disable": not enabled, "dynamic_ncols": True}
    # maxinterval too: past it tqdm's monitor thread would redraw anyway.
    return {"disable": not enabled, "dynamic_ncols": True, "mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S}


def bar_label(name: str, width: int = LABEL_CHARS) -> str:
    """A file name as a bar's label: its end kept, where names differ ('...Langer_Pexels.mp4', not
    'pyfeat-WolfgangLanger_Pexels.m')."""
    return name if len(name) <= width else "\u2026" + name[-(width - 1):]
