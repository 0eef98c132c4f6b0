"""A stimulus log (--events): a CSV of `time_s` (seconds from the video's start) and `label`, optionally `source`
(the video it belongs to, as frames.csv's `source` or its file name; a row without one is every video's). Read and
checked before any work, so a bad file stops the run with one line naming it and the reason."""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


class EventsError(ValueError):
    """An events file batchemo cannot use; the message is one line naming the file and why."""


@dataclass(frozen=True)
class EventsLog:
    """An events file as one run reads it, once: its path, its events (`read_events`) and the digest of the very
    bytes they were read from, so every video of the run gets the same events, and run.json the digest of those
    (a file changed or removed half way through a batch changes nothing of this run)."""

    path: str
    table: pd.DataFrame
    sha256: str


def read_log(path: str | Path) -> EventsLog:
    """The events file at `path` read once and checked (EventsError, one line, as `read_events`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EventsError(f"{path}: events file not found") from None
    except IsADirectoryError:
        raise EventsError(f"{path}: events file not found (a folder)") from None
    except OSError as e:
        raise EventsError(f"{path}: not readable ({' '.join(str(e).split()) or type(e).__name__})") from None
    return EventsLog(str(path), _parse(path, data), hashlib.sha256(data).hexdigest()[:16])


def read_events(path: str | Path) -> pd.DataFrame:
    """The events of `path` in file order: `time_s` (float), `label` (string), `source` (string, <NA> where the row
    is every video's). EventsError (one line) for a missing or unreadable file, a missing column, or a time that is
    not a finite number at least 0."""
    return read_log(path).table


def _parse(path: Path, data: bytes) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' parse errors are ValueErrors
        why = " ".join(str(e).split()) or type(e).__name__
        raise EventsError(f"{path}: not a readable CSV ({why})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("time_s", "label") if c not in df.columns]
    if missing:
        raise EventsError(f"{path}: no {' or '.join(missing)} column (an events file has time_s, label and "
                          f"optionally source; found {', '.join(df.columns) or 'no columns'})")
    times = pd.to_numeric(df["time_s"].str.strip(), errors="coerce").astype(float)
    bad = [i for i, v in enumerate(times) if not (math.isfinite(v) and v >= 0)]
    if bad:
        i = bad[0]
        raise EventsError(f"{path}: row {i + 2}: time_s must be a number of seconds, at least 0 "
                          f"(got {df['time_s'].iloc[i]!r})")
    source = df["source"].str.strip().replace("", pd.NA) if "source" in df.columns else pd.NA
    return pd.DataFrame({"time_s": times.astype(float), "label": df["label"].str.strip().astype("string"),
                         "source": pd.Series(source, index=df.index, dtype="string")})


def events_for(events: pd.DataFrame, source: str) -> pd.DataFrame:
    """The events of one video, indexed by their row in the file: rows naming its `source` (or its file name), and
    rows naming none."""
    name = Path(source).name
    mine = events["source"].isna() | events["source"].isin([source, name])
    return events[mine.fillna(False).astype(bool)]
