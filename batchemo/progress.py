"""Progress bars of the jobs: tqdm.auto, so that a notebook gets a widget; on a terminal a bar redrawn in place;
to a file or a pipe (a log) a line now and then, not a redraw ten times a second."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["bar_options", "tqdm"]

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
