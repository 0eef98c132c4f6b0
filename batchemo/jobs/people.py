"""--people as a step of the jobs: once per run, in the driver, every track (or photo face) given a person number,
the same for one person across the run, from the descriptors `descriptors` keeps in each report.

Groups are clustered once, in a fixed order (videos in input order, tracks by id; photos in faces.csv's order), so
the numbers depend only on the inputs: a batch on Ray, whose tasks describe their own video's faces, numbers them
as a local run does. Faces seen together on one frame (or photo) are never one person (`same_frame_pairs`).

Outputs: `person` appended to frames.csv / faces.csv (<NA> for short tracks and groups with no usable face),
people.csv (one row per person: report.summaries.people_table / photo_people_table) for each report and for a batch,
the person cards of report.html and index.html, and `people` in run.json (threshold, faces per group, persons). A run
without --people removes what an earlier --people run left in a report it reuses (`drop_people`), so a report never
shows numbers another run gave.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import report as R
from ..pipeline import identity as I
from ..report import episodes as E
from .derived import counted_as_recorded, page_events, set_persons
from .descriptors import (DESCRIPTORS_FILE, ENGINE, FACES_PER_GROUP, Described, counted_rows, describe_photos,
                          describe_video)

if TYPE_CHECKING:  # the page module brings Jinja2: imported where a page is written
    from ..pipeline.model import EmotionModel
    from ..report.events import EventsLog
    from ..report.html import People
    from .options import VideoOptions

PEOPLE_FILE = "people.csv"


def check_people(on: bool) -> None:
    """Before any work: PeopleUnavailable (one line naming the pip command) where --people is asked for and the
    people extra is missing."""
    if on:
        I.require_people()


def person_numbers(parts: list[tuple[pd.DataFrame, Described]]) -> list[pd.Series]:
    """A person number per row (nullable Int64, indexed as the rows given) of each part, clustered over all parts
    at once. A part: the rows that get a number (`counted_rows`), in the order its groups (`source`, `face`) are
    numbered in, and their descriptors. Parts are kept apart even where two share a `source` name."""
    tagged, groups, descriptors = [], [], []
    for k, (rows, described) in enumerate(parts):
        tag = {s: f"{k}/{s}" for s in pd.unique(rows["source"])}
        t = rows.assign(source=rows["source"].map(tag))
        tagged.append(t)
        mine: dict[tuple[str, int], list[np.ndarray]] = {}
        for s, f, d in zip(described.rows["source"], described.rows["face"], described.descriptors):
            mine.setdefault((f"{k}/{s}", int(f)), []).append(d)
        for s, f in t[["source", "face"]].drop_duplicates().itertuples(index=False):
            groups.append((s, int(f)))
            found = mine.get((s, int(f)), [])
            descriptors.append(np.stack(found) if found else np.empty((0, I.DESCRIPTOR_SIZE), np.float32))
    every = pd.concat(tagged) if tagged else pd.DataFrame(columns=["source", "frame", "face", "found_by"])
    persons = I.cluster_people(descriptors, I.same_frame_pairs(every, groups))
    number = dict(zip(groups, persons))
    return [pd.Series(pd.array([number.get((s, int(f))) for s, f in zip(t["source"], t["face"])], dtype="Int64"),
                      index=t.index) for t in tagged]


def people_record(persons: int) -> dict:
    """run.json's `people`: how the numbers were made, and how many people this report has."""
    return {"threshold": I.PEOPLE_THRESHOLD, "faces_per_group": FACES_PER_GROUP, "engine": ENGINE,
            "persons": persons}


def pictures(rows: pd.DataFrame, described: Described) -> pd.DataFrame:
    """Per person of `rows` (with `person`), the row their picture is cut from: the most confident of their picked
    faces that were described (the earliest of equals)."""
    usable = described.usable()
    mine = rows.loc[rows.index.intersection(usable.index)]
    mine = mine[mine["person"].notna()]
    if mine.empty:
        return mine
    return mine.loc[mine.sort_values("confidence", ascending=False, kind="stable").groupby("person").head(1).index] \
        .sort_values("person")


# --- photos ----------------------------------------------------------------------------------------------------

def number_photos(root: Path, out: Path, faces: pd.DataFrame, files: pd.DataFrame,
                  keep_side: int, drop_uncertain: bool = False) -> tuple[pd.DataFrame, People]:
    """--people for a folder: `faces` (faces.csv's final rows, in its order: the order the numbers are given in)
    with `person` (and `uncertain` after it, the last column), and the page's people (report.html.People:
    people.csv's table, counting with `drop_uncertain` only the rows not flagged uncertain, as summary.csv does,
    and each person's picture row). Descriptors from OUT/people.npz where it has them (a resumed run describes
    only the faces it lacks), the others described from the photos under `root`, decoded as the job decodes them
    (`keep_side`)."""
    from ..report.html import People

    described = describe_photos(root, out, faces, files, keep_side)
    [number] = person_numbers([(faces, described)])
    faces = E.uncertain_last(faces.assign(person=number.reindex(faces.index)))
    table = R.photo_people_table(E.counted(faces, drop_uncertain), R.classes_of(faces))
    return faces, People(table, pictures(faces, described))


# --- videos ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoReport:
    """An analysed video of the run: its `source` name, file and report folder."""

    source: str
    path: Path
    out: Path


@dataclass
class _Numbered:
    """A video once numbered: what the batch's people.csv and index page are made from."""

    report: VideoReport
    frames: pd.DataFrame
    summary: pd.DataFrame
    pictures: pd.DataFrame


def number_videos(reports: list[VideoReport], root: Path | None, *, card: dict | None,
                  html: bool, events: EventsLog | None = None) -> People | None:
    """--people for the videos of a run (input order): frames.csv's `person`, people.csv, run.json's `people` and
    report.html (with `html`) of each, and with `root` (a batch) the batch's people.csv. Descriptors come from
    each report's people.npz, described here where it lacks them (a video a run without --people analysed).
    Returns what the batch's index page shows of the people (report.html.People), None without `root`.
    `events`: the run's events log, marked on the pages."""
    from ..report.html import People

    loaded = []
    for r in reports:
        frames = R.read_report(r.out / "frames.csv").drop(columns="person", errors="ignore")
        loaded.append((frames, describe_video(r.path, r.out, frames)))
    # Tracks by id: the order the numbers are given in.
    numbers = person_numbers([(counted_rows(f).sort_values("face", kind="stable"), d) for f, d in loaded])
    done = []
    for r, (frames, described), number in zip(reports, loaded, numbers):
        frames["person"] = number.reindex(frames.index)
        frames = E.uncertain_last(frames)  # `person` keeps the place it had before `uncertain` existed
        summary = R.read_report(r.out / "summary.csv")
        classes = R.classes_of(frames)
        people = R.people_table([(r.source, _counted(r.out, frames), summary)], classes)
        R.write_csv(frames, r.out / "frames.csv")
        set_persons(r.out, frames)
        R.write_csv(people, r.out / PEOPLE_FILE)
        record = _set_record(r.out, people_record(len(people)))
        shown = pictures(frames, described)
        if html:
            _video_page(r, frames, summary, record, classes, card, People(people, shown), events)
        done.append(_Numbered(r, frames, summary, shown))
    return _batch_people(done, root) if root is not None else None


def _counted(out: Path, frames: pd.DataFrame) -> pd.DataFrame:
    """The rows a video's people.csv counts: with --drop-uncertain (as its run.json's `derived` says) the uncertain
    ones left out, as its summary.csv leaves them out."""
    return counted_as_recorded(frames, R.read_record(Path(out) / "run.json"))


def _set_record(out: Path, people: dict | None) -> dict:
    """run.json with its `people` set (None: removed); the record as written."""
    record = R.read_record(out / "run.json") or {}
    if people is None:
        record.pop("people", None)
    else:
        record["people"] = people
    R.write_json(record, out / "run.json")
    return record


def _video_page(r: VideoReport, frames: pd.DataFrame, summary: pd.DataFrame, record: dict, classes: list[str],
                card: dict | None, people: People | None, events: EventsLog | None = None) -> None:
    from ..report.html import write_video_page

    timeline = R.read_report(r.out / "timeline.csv")
    write_video_page(r.out, r.path, frames, timeline, summary, record, classes=classes, card=card, people=people,
                     events=page_events(record, r.source, events))


def _batch_people(done: list[_Numbered], root: Path) -> People:
    """The batch's people.csv, and the index page's people: each person's tracks per video, and the picture of
    their most confident picked face over the batch (cut by that video's page; the first video wins a tie)."""
    from ..report.html import People

    classes = R.classes_of(done[0].frames) if done else []
    table = R.people_table([(d.report.source, _counted(d.report.out, d.frames), d.summary) for d in done], classes)
    R.write_csv(table, Path(root) / PEOPLE_FILE)
    seen, best = [], {}
    for d in done:
        tracks = d.frames[d.frames["person"].notna()].drop_duplicates("face")[["face", "person"]]
        on_screen = d.summary[d.summary["scope"] == "track"][["face", "seconds_on_screen"]].astype({"face": "int64"})
        for t in tracks.merge(on_screen, on="face").sort_values("face").itertuples():
            seen.append({"person": int(t.person), "source": d.report.source, "out": d.report.out, "face": int(t.face),
                         "seconds_on_screen": t.seconds_on_screen})
        for p, conf in zip(d.pictures["person"].astype(int), d.pictures["confidence"]):
            if p not in best or conf > best[p][0]:
                best[p] = (conf, d.report.out / "thumbs" / f"person{p}.jpg")
    appearances = pd.DataFrame(seen, columns=["person", "source", "out", "face", "seconds_on_screen"])
    return People(table, appearances=appearances, picture_files={p: f for p, (_, f) in best.items()})


def finish_people(reports: list[VideoReport], root: Path | None, model: EmotionModel | str | Path | None,
                  opts: VideoOptions, events: EventsLog | None = None) -> People | None:
    """After the videos of a run (its analysed ones, input order): with `opts.people` their person numbers
    (`number_videos`; returns the index page's people for a batch, `root`); without, what an earlier --people run
    left in the reports this one reused is removed, and their pages written again without it. `events`: the
    run's log of opts.events, marked on the pages written here."""
    if opts.people:
        return number_videos(reports, root, card=card_of(model) if opts.html else None, html=opts.html,
                             events=events)
    for r in reports:
        if drop_people(r.out, "frames.csv") and opts.html and (r.out / "report.html").is_file():
            frames, summary = R.read_report(r.out / "frames.csv"), R.read_report(r.out / "summary.csv")
            _video_page(r, frames, summary, R.read_record(r.out / "run.json") or {},
                        R.classes_of(frames), card_of(model), None, events)
    if root is not None:
        remove_people_table(root)
    return None


def card_of(model: EmotionModel | str | Path | None) -> dict | None:
    """The model card a page quotes: an EmotionModel's own, else read beside the file (None: the shipped model)."""
    from ..pipeline.model import EmotionModel, default_model_path, read_card

    if isinstance(model, EmotionModel):
        return model.card
    return read_card(Path(model) if model else default_model_path())


# --- a run without --people ------------------------------------------------------------------------------------

def drop_people(out: Path, table: str) -> bool:
    """A report a run without --people reuses: the `person` column of its `table` (frames.csv / faces.csv),
    people.csv (batchemo's only) and people.npz removed, and run.json's `people`. True where its rows had person
    numbers (a page showing them is then out of date)."""
    out = Path(out)
    had = False
    path = out / table
    if path.is_file() and "person" in pd.read_csv(path, nrows=0).columns:
        frames = R.read_report(path).drop(columns="person")
        R.write_csv(frames, path)
        set_persons(out, frames)
        had = True
    remove_people_table(out)
    (out / DESCRIPTORS_FILE).unlink(missing_ok=True)
    if "people" in (R.read_record(out / "run.json") or {}):
        _set_record(out, None)
    return had


def remove_people_table(folder: Path) -> None:
    """folder/people.csv where batchemo wrote it (a people table); a file of the user's by that name stays."""
    path = Path(folder) / PEOPLE_FILE
    try:
        schema, _ = R.read_table(path)
    except (OSError, ValueError):
        return
    if schema in (R.PEOPLE, R.PHOTO_PEOPLE):
        path.unlink()
