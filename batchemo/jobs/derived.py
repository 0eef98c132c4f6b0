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
from ..report.events import EventsLog, events_for, read_log
from .options import VideoOptions
from .runtime import DERIVED

EPISODES_FILE, RESPONSES_FILE = "episodes.csv", "responses.csv"
# run.json's counts that the derived tables give (Derived.counts): a re-derive replaces them all, so one the new
# tables do not have (responses without --events) goes with the table.
DERIVED_COUNTS = ("uncertain", "uncertain_left_out", "episodes", "responses")


def events_or_none(opts: VideoOptions) -> EventsLog | None:
    """The events file read and checked (EventsError, one line, before any work); None without --events. A run
    reads it once, here, and hands the log to every video (`events` below)."""
    return read_log(opts.events) if opts.events else None


def run_events(opts: VideoOptions, events: EventsLog | None) -> EventsLog | None:
    """The run's events log: `events` as the caller read it, else (a caller that has not: a Ray task, which reads
    the file on its own machine) read here; None without --events."""
    return events if events is not None or not opts.events else events_or_none(opts)


def derived_settings(opts: VideoOptions, events: EventsLog | None) -> dict:
    """run.json's `derived`: the options the derived tables were made with, and the digest of the events the run
    read (`events`, the run's log of opts.events: `run_events`)."""
    out = {k: getattr(opts, k) for k in sorted(DERIVED)}
    out["events_sha256"] = events.sha256 if events is not None else None
    return out


def derived_options(options: dict, opts: VideoOptions) -> dict:
    """run.json's `options` (a record's) with the DERIVED values of `opts`: those a re-derive made its tables
    with, beside `derived`; the rest stay the analysis's."""
    return {**options, **{k: getattr(opts, k) for k in sorted(DERIVED)}}


def derived_counts(counts: dict, d: "Derived") -> dict:
    """run.json's `counts` (a record's) with the derived tables' counts of `d` in place of the earlier ones."""
    return {**{k: v for k, v in counts.items() if k not in DERIVED_COUNTS}, **d.counts()}


def counted_as_recorded(frames: pd.DataFrame, record: dict | None) -> pd.DataFrame:
    """The rows of a report's table that its own summary counts as far as uncertain rows go: with its run.json's
    `derived` saying --drop-uncertain, those not flagged uncertain (the caller leaves short tracks out first where
    its summary did)."""
    return E.counted(frames, bool(((record or {}).get("derived") or {}).get("drop_uncertain")))


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
           keep_short_tracks: bool, events: EventsLog | None) -> Derived:
    """The derived tables of `frames` (frames.csv's rows, `short_track` set); `seen`: how long each row's frame
    stands for (video.frame_seconds); `keep_short_tracks`: as the analysis ran (a skipped video keeps its own);
    `events`: the run's log of opts.events (`run_events`), None without --events."""
    classes = R.classes_of(frames)
    frames = E.with_uncertain(frames, opts.min_confidence)
    shown = R.shown_rows(frames, keep_short_tracks)
    counted = E.counted(shown, opts.drop_uncertain)
    timeline = R.timeline_table(counted, classes, opts.bin_s, source)
    summary = R.track_summary(counted, classes, seen, source)
    episodes = E.episodes_table(counted, seen, opts.episode_rule, source)
    mine = responses = None
    if events is not None:
        mine = events_for(events.table, source)
        responses = E.responses_table(mine, counted, episodes, opts.response_window_s, source)
    return Derived(frames, shown, timeline, summary, episodes, mine, responses, len(shown) - len(counted))


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
    for name, schema in ((EPISODES_FILE, R.EPISODES), (RESPONSES_FILE, R.RESPONSES)):
        path = Path(out) / name
        try:
            found, table = R.read_table(path)
        except (OSError, ValueError):  # not there, or not a table batchemo reads
            continue
        if found is not schema:  # a file of the user's by that name stays as it is
            continue
        table["person"] = pd.array([person.get(int(f)) for f in table["face"]], dtype="Int64")
        R.write_csv(table, path)


def page_events(record: dict, source: str, events: EventsLog | None = None) -> pd.DataFrame | None:
    """The events a video's page marks: those its derived tables were made with (run.json's `derived`): from
    `events`, the run's log, where the record's digest is its; else the file the record names, where it is still
    there and reads to the same digest. None without."""
    derived = record.get("derived") or {}
    path, digest = derived.get("events"), derived.get("events_sha256")
    if not path:
        return None
    if events is None or events.sha256 != digest:
        try:
            events = read_log(path)
        except ValueError:  # gone, or changed since into something unreadable: the page goes without marks
            return None
        if digest is not None and events.sha256 != digest:  # changed since: not the events responses.csv has
            return None
    return events_for(events.table, source)
