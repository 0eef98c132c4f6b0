"""The summaries a report derives from its face rows: timelines per track, a video's per-track summary, a batch
of videos' summary, the people tables of --people; how long each analysed frame stands for."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .tables import BATCH_SUMMARY, GROUP_SUMMARY, PEOPLE, PHOTO_PEOPLE, TIMELINE, TRACK_SUMMARY, prob_columns


SMOOTH_BINS = 3  # centred rolling mean over this many time bins: the timeline's smoothed view (docs/how-it-works.md)


def _smooth_over_bins(tl: pd.DataFrame, probs: list[str]) -> pd.DataFrame:
    """Each track's centred mean over SMOOTH_BINS consecutive bins. Bins the track has no frame in are missing,
    not skipped, so a gap in a track, or fewer analysed frames than bins (--fps 0.5 with 1 s bins), never
    stretches the window past SMOOTH_BINS x --bin seconds."""
    half = SMOOTH_BINS // 2  # odd: the window is the bin itself and `half` bins either side
    parts = []
    for _, part in tl.groupby("face", sort=False):
        means = part.set_index("bin")[probs]
        # Neighbours looked up by bin number rather than by filling in every bin of the track's span: an hour's
        # track at --bin 0.0001 spans 36 million bins, which took gigabytes to hold as empty rows.
        near = [means.reindex(means.index + d).set_axis(means.index) for d in range(-half, half + 1)]
        total = sum(n.fillna(0.0) for n in near)
        seen = sum(n.notna().astype(int) for n in near)
        parts.append((total / seen).set_axis(part.index))
    return pd.concat(parts).loc[tl.index]


def timeline_table(frames: pd.DataFrame, classes: list[str], bin_s: float, source: str = "") -> pd.DataFrame:
    """Per track and time bin: mean probability of each class, the dominant emotion, frames seen, and a
    smoothed view (centred rolling mean of the bin means over SMOOTH_BINS bins, per track). `source`: the video's
    `source` column, last (new columns are appended), so the timelines of a batch concatenate."""
    probs = prob_columns(classes)
    cols = ["face", "bin", "start_s", "end_s", "frames"] + probs + ["dominant"] + \
        [f"smooth_{c}" for c in classes] + ["dominant_smooth", "source"]
    if frames.empty:
        return TIMELINE.apply(pd.DataFrame(columns=cols))
    # Rounded before the floor: 0.3 / 0.1 is 2.9999999999999996, and a frame at 0.3 s belongs to the bin from 0.3.
    df = frames.assign(bin=np.floor(np.round(frames["time_s"].to_numpy(float) / bin_s, 9)).astype("int64"))
    g = df.groupby(["face", "bin"], sort=True)
    tl = g[probs].mean()
    tl.insert(0, "frames", g.size())
    tl = tl.reset_index()
    tl.insert(2, "start_s", tl["bin"] * bin_s)
    tl.insert(3, "end_s", (tl["bin"] + 1) * bin_s)
    tl["dominant"] = np.asarray(classes)[tl[probs].to_numpy().argmax(1)]
    smooth = _smooth_over_bins(tl, probs)
    smooth = smooth.div(smooth.sum(axis=1), axis=0)
    for c in classes:
        tl[f"smooth_{c}"] = smooth[f"p_{c}"]
    tl["dominant_smooth"] = np.asarray(classes)[smooth.to_numpy().argmax(1)]
    tl["source"] = source
    return TIMELINE.apply(tl[cols])


def track_summary(frames: pd.DataFrame, classes: list[str], seen: float | pd.Series,
                  source: str = "", end_s: float | None = None) -> pd.DataFrame:
    """Per track (`scope` 'track') and for the whole video (`scope` 'all', `face` <NA>): first/last time seen,
    seconds on screen, dominant emotion (the most frequent top emotion), share of frames with each top emotion,
    mean probability of each class. `source` and `scope` come last (new columns are appended). `seen`: how long
    each row's frame stands for (`row_seconds`); `end_s`: where the video ends (seconds on screen never run past
    it)."""
    cols = ["face", "first_s", "last_s", "seconds_on_screen", "frames", "dominant"] + \
        [f"share_{c}" for c in classes] + [f"mean_p_{c}" for c in classes] + ["source", "scope"]
    seconds = row_seconds(frames, seen, end_s)
    groups = [(int(f), part) for f, part in frames.groupby("face", sort=True)] if len(frames) else []
    groups.append((pd.NA, frames))
    rows = [_track_row(face, part, classes, seconds) for face, part in groups]
    df = pd.DataFrame(rows, columns=cols[:-2])
    df["source"] = source
    df["scope"] = ["track"] * (len(df) - 1) + ["all"]
    return TRACK_SUMMARY.apply(df)


def seen_for(times, interval: float, end_s: float | None = None) -> np.ndarray:
    """How long each analysed frame at `times` stands for when analysed frames are `interval` apart: up to the
    next analysed frame, and for a frame near the end only up to the end of the video (with --every 200 a 6 s
    clip's one analysed frame is not 13 s of face)."""
    t = np.asarray(times, dtype=float)
    return np.full(t.shape, interval) if end_s is None else np.clip(end_s - t, 0.0, interval)


def row_seconds(frames: pd.DataFrame, seen: float | pd.Series, end_s: float | None = None) -> pd.Series:
    """How long each face row's frame stands for: `seen` itself where it is already one figure per row (a
    variable-rate video's, by its frames' own clock), else `seen` is the steady interval between analysed frames
    (`seen_for`)."""
    if isinstance(seen, pd.Series):
        return seen.reindex(frames.index)
    return pd.Series(seen_for(frames["time_s"], seen, end_s), index=frames.index, dtype=float)


def _track_row(face, part: pd.DataFrame, classes: list[str], seconds: pd.Series) -> dict:
    n = len(part)
    seen = part.drop_duplicates("frame").index if n else part.index
    return {"face": face, "first_s": part["time_s"].min() if n else np.nan,
            "last_s": part["time_s"].max() if n else np.nan,
            "seconds_on_screen": float(seconds.loc[seen].sum()), "frames": len(seen),
            **_emotion_columns(part, classes)}


def _emotion_columns(part: pd.DataFrame, classes: list[str]) -> dict:
    """`dominant`, `share_<class>` (share of rows with that top emotion) and `mean_p_<class>` of some face rows:
    the same in a track's row, a video's all-faces row and a video's row of a batch, so those always agree
    (<NA> / NaN without rows)."""
    n = len(part)
    counts = part["emotion"].value_counts() if n else pd.Series(dtype=int)
    return {"dominant": _dominant(counts, classes) if n else pd.NA,
            **{f"share_{c}": counts.get(c, 0) / n if n else np.nan for c in classes},
            **{f"mean_p_{c}": part[f"p_{c}"].mean() if n else np.nan for c in classes}}


def _dominant(counts, classes: list[str]) -> str:
    # Ties go to the class first in the model's order.
    return max(classes, key=lambda c: counts.get(c, 0))


def video_share_row(frames: pd.DataFrame, classes: list[str], source: str) -> dict:
    """One video's row of a batch summary.csv: face rows, tracks, dominant emotion, share of rows with each top
    emotion and mean probability of each class (NaN without faces)."""
    return {"source": source, "scope": "video", "faces": len(frames), "tracks": int(frames["face"].nunique()),
            **_emotion_columns(frames, classes)}


def batch_summary(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    """A batch of videos' summary.csv: the all-videos row first (`source` <NA>, `scope` 'all'), then `rows`
    (video_share_row). The all row weighs each video by its face rows, as if all rows were one table."""
    per = pd.DataFrame(rows, columns=list(BATCH_SUMMARY.fixed) + [f"share_{c}" for c in classes] +
                       [f"mean_p_{c}" for c in classes])
    n = int(per["faces"].sum())
    w = per["faces"].to_numpy(dtype=float)
    # share x rows gives each video's count back (rounded: shares are floats)
    counts = {c: float(np.rint(np.nansum(per[f"share_{c}"].to_numpy(dtype=float) * w))) for c in classes}
    total = {"source": pd.NA, "scope": "all", "faces": n, "tracks": int(per["tracks"].sum()),
             "dominant": _dominant(counts, classes) if n else pd.NA}
    total.update({f"share_{c}": counts[c] / n if n else np.nan for c in classes})
    total.update({f"mean_p_{c}": float(np.nansum(per[f"mean_p_{c}"].to_numpy(dtype=float) * w)) / n if n else np.nan
                  for c in classes})
    return BATCH_SUMMARY.apply(pd.concat([pd.DataFrame([total], columns=per.columns), per], ignore_index=True))


def emotion_summary(faces: pd.DataFrame, classes: list[str], by: pd.Series | None = None,
                    groups: Iterable[str] = ()) -> pd.DataFrame:
    """Count and share of each top emotion, over all faces (`group` 'all', `scope` 'all') and per group of `by`
    (`scope` 'group'), `groups` included even where no face has them (a row of zero faces)."""
    rows = []
    parts = [("all", faces)]
    if by is not None:
        parts += [(g, faces[by == g]) for g in sorted(set(by.dropna().unique()) | set(groups))]
    for i, (name, part) in enumerate(parts):
        counts = part["emotion"].value_counts()
        n = len(part)
        row = {"group": name, "faces": n}
        for c in classes:
            row[f"n_{c}"] = int(counts.get(c, 0))
        for c in classes:
            row[f"share_{c}"] = round(counts.get(c, 0) / n, 6) if n else np.nan
        row["scope"] = "group" if i else "all"
        rows.append(row)
    cols = ["group", "faces"] + [f"n_{c}" for c in classes] + [f"share_{c}" for c in classes] + ["scope"]
    return GROUP_SUMMARY.apply(pd.DataFrame(rows, columns=cols))


def people_table(parts: list[tuple[str, pd.DataFrame, pd.DataFrame]], classes: list[str]) -> pd.DataFrame:
    """people.csv of a video report or of a batch of videos: one row per person number, in number order.

    `parts`: per video, in input order, (source, its frames.csv rows with `person`, its summary.csv). A person's
    `tracks` and `videos` are those with their number; `first_source` / `first_seen_s` the first video (input order)
    they are in and the first time in it, `last_source` / `last_seen_s` the last video and the last time in it
    (within one video report, both are that video); `seconds_on_screen` the sum of their tracks' seconds on screen
    from summary.csv (so the same per-frame seconds the summary counts; two tracks of one person on screen at once,
    a held box and a new one, count twice); `faces` their face rows; `dominant`, `share_<class>` and
    `mean_p_<class>` over those rows, as a track's summary row has them."""
    cols = list(PEOPLE.fixed) + [f"share_{c}" for c in classes] + [f"mean_p_{c}" for c in classes]
    seen = [(source, rows[rows["person"].notna()], summary) for source, rows, summary in parts]
    numbers = sorted({int(p) for _, rows, _ in seen for p in rows["person"]})
    out = []
    for person in numbers:
        mine = [(source, rows[rows["person"] == person], summary) for source, rows, summary in seen]
        mine = [(source, rows, summary) for source, rows, summary in mine if len(rows)]
        tracks = [(source, set(rows["face"].astype(int)), summary) for source, rows, summary in mine]
        on_screen = sum(float(s.loc[(s["scope"] == "track") & s["face"].isin(faces), "seconds_on_screen"].sum())
                        for _, faces, s in tracks)
        every = pd.concat([rows for _, rows, _ in mine], ignore_index=True)
        out.append({"person": person, "tracks": sum(len(faces) for _, faces, _ in tracks), "videos": len(mine),
                    "first_source": mine[0][0], "first_seen_s": float(mine[0][1]["time_s"].min()),
                    "last_source": mine[-1][0], "last_seen_s": float(mine[-1][1]["time_s"].max()),
                    "seconds_on_screen": on_screen, "faces": len(every), **_emotion_columns(every, classes)})
    return PEOPLE.apply(pd.DataFrame(out, columns=cols))


def photo_people_table(faces: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """people.csv of a folder of photos: one row per person number (faces.csv's `person`), in number order: their
    `faces` and `photos`, the first and last photo they are in (faces.csv's order: the walk's), `dominant`,
    `share_<class>` and `mean_p_<class>` over their faces."""
    cols = list(PHOTO_PEOPLE.fixed) + [f"share_{c}" for c in classes] + [f"mean_p_{c}" for c in classes]
    known = faces[faces["person"].notna()]
    out = []
    for person, rows in sorted(known.groupby(known["person"].astype(int), sort=False), key=lambda g: g[0]):
        out.append({"person": person, "faces": len(rows), "photos": int(rows["source"].nunique()),
                    "first_source": rows["source"].iloc[0], "last_source": rows["source"].iloc[-1],
                    **_emotion_columns(rows, classes)})
    return PHOTO_PEOPLE.apply(pd.DataFrame(out, columns=cols))


def shown_rows(frames: pd.DataFrame, keep_short_tracks: bool) -> pd.DataFrame:
    """The rows timeline.* and summary.csv count: short tracks left out unless `keep_short_tracks`."""
    return frames if keep_short_tracks else frames[~frames["short_track"].astype(bool)]
