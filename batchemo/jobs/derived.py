"""What a video report works out from its final face rows, written by the analysis and again whenever a later run
asks for other values (issue #40): the `uncertain` column, the rows the timeline and summary count (short tracks and,
with --drop-uncertain, uncertain rows left out), timeline.csv, summary.csv, episodes.csv and, with --events,
responses.csv. None of it needs the video decoded again, so a re-run with other episode options or another events
file rewrites these tables from frames.csv and skips the analysis (run.json's `derived` says what they were made
with)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import report as R
from ..report import episodes as E
from ..report.events import events_digest, events_for, read_events
from .options import VideoOptions
from .runtime import DERIVED

EPISODES_FILE, RESPONSES_FILE = "episodes.csv", "responses.csv"


def derived_settings(opts: VideoOptions) -> dict:
    """run.json's `derived`: the options the derived tables were made with, and the events file's content."""
    out = {k: getattr(opts, k) for k in sorted(DERIVED)}
    out["events_sha256"] = events_digest(opts.events)
    return out


@dataclass
class Derived:
    """The derived tables of one video (`responses` None without --events) and what they left out."""

    frames: pd.DataFrame
    shown: pd.DataFrame
    timeline: pd.DataFrame
    summary: pd.DataFrame
    episodes: pd.DataFrame
    events: pd.DataFrame | None
    responses: pd.DataFrame | None
    uncertain_left_out: int

    def counts(self) -> dict:
        return {"uncertain": int(self.frames["uncertain"].sum()), "uncertain_left_out": self.uncertain_left_out,
                "episodes": len(self.episodes),
                **({"responses": len(self.responses)} if self.responses is not None else {})}


def derive(frames: pd.DataFrame, seen: pd.Series, opts: VideoOptions, source: str, *,
           keep_short_tracks: bool) -> Derived:
    """The derived tables of `frames` (frames.csv's rows, `short_track` set); `seen`: how long each row's frame
    stands for (video.frame_seconds); `keep_short_tracks`: as the analysis ran (a skipped video keeps its own)."""
    classes = R.classes_of(frames)
    frames = E.with_uncertain(frames, opts.min_confidence)
    shown = R.shown_rows(frames, keep_short_tracks)
    counted = E.counted(shown, opts.drop_uncertain)
    timeline = R.timeline_table(counted, classes, opts.bin_s, source)
    summary = R.track_summary(counted, classes, seen, source)
    episodes = E.episodes_table(counted, seen, opts.episode_rule, source)
    events = responses = None
    if opts.events:
        events = events_for(read_events(opts.events), source)
        responses = E.responses_table(events, counted, episodes, opts.response_window_s, source)
    return Derived(frames, shown, timeline, summary, episodes, events, responses, len(shown) - len(counted))


def write_derived(out: Path, d: Derived) -> None:
    """The derived tables into `out`; a responses.csv of an earlier run with --events goes when this one has none."""
    R.write_csv(d.frames, out / "frames.csv")
    R.write_csv(d.timeline, out / "timeline.csv")
    R.write_csv(d.summary, out / "summary.csv")
    R.write_csv(d.episodes, out / EPISODES_FILE)
    if d.responses is not None:
        R.write_csv(d.responses, out / RESPONSES_FILE)
    else:
        remove_table(out / RESPONSES_FILE, R.RESPONSES)


def remove_table(path: Path, schema: R.Schema) -> None:
    """`path` where batchemo wrote it as a `schema` table; a file of the user's by that name stays."""
    try:
        found, _ = R.read_table(path)
    except (OSError, ValueError):
        return
    if found is schema:
        path.unlink()


def set_persons(out: Path, frames: pd.DataFrame) -> None:
    """episodes.csv and responses.csv of a report given the person numbers of `frames` (frames.csv with or without
    `person`: <NA> without), track by track."""
    if "person" in frames.columns:
        known = frames[frames["person"].notna()].drop_duplicates("face")
        person = dict(zip(known["face"].astype(int), known["person"].astype(int)))
    else:
        person = {}
    for name in (EPISODES_FILE, RESPONSES_FILE):
        path = Path(out) / name
        if not path.is_file():
            continue
        table = R.read_report(path)
        table["person"] = pd.array([person.get(int(f)) for f in table["face"]], dtype="Int64")
        R.write_csv(table, path)


def events_or_none(opts: VideoOptions) -> pd.DataFrame | None:
    """The events file read and checked (EventsError, one line, before any work); None without --events."""
    return read_events(opts.events) if opts.events else None


def page_events(record: dict, source: str) -> pd.DataFrame | None:
    """The events a video's page marks: those of the events file its derived tables were made with (run.json's
    `derived`), where that file is still there; None without."""
    path = (record.get("derived") or {}).get("events")
    if not path or not Path(path).is_file():
        return None
    try:
        return events_for(read_events(path), source)
    except ValueError:  # changed since into something unreadable: the page goes without marks
        return None
