"""Episodes and responses from a video's face rows: when each track showed an emotion, for how long and how strongly
(episodes.csv), what it showed after each event of a stimulus log (responses.csv), and which rows are too unsure
to count (`uncertain`). Pure computation on frames.csv's rows: the jobs write the tables (docs/episodes.md says
why each default is what it is).

An episode of class c on a track: the class's probability, smoothed over `smooth_s` seconds of the track's rows
(never across a hole in the track that ends an episode: one of `bridge_s` or longer), reaches `onset`; it lasts
while that stays at or above `offset` (hysteresis: a curve hovering at the threshold is one episode, not many); two
episodes of one class on one track less than `bridge_s` apart are one; what lasts less than `min_s` is not an
episode. `onset_s` is the first row's time, `offset_s` the end of the last row's frame (its
time plus the time it stands for, as summary.csv's seconds on screen count it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .tables import EPISODES, RESPONSES, classes_of

# time_s is kept to the microsecond: comparisons of spans allow for its rounding (as short_tracks does).
EPS = 2e-6


@dataclass(frozen=True)
class EpisodeRule:
    """What makes an episode. Its defaults are VideoOptions' (taken from here), chosen in docs/episodes.md."""

    onset: float = 0.5
    offset: float = 0.35
    min_s: float = 0.3
    bridge_s: float = 0.3
    smooth_s: float = 0.3
    neutral: bool = False


def uncertain_rows(frames: pd.DataFrame, min_confidence: float) -> pd.Series:
    """Per row: is its calibrated confidence below `min_confidence`? (At 0.5: the crowd's majority would more
    likely than not call the face something else.)"""
    return (frames["confidence"] < min_confidence).astype("boolean")


def with_uncertain(frames: pd.DataFrame, min_confidence: float) -> pd.DataFrame:
    """`frames` with `uncertain` (re)computed as its last column: after `person` where --people gave one, so every
    column an older report had keeps its place (docs/reports.md)."""
    out = frames.drop(columns="uncertain", errors="ignore")
    out["uncertain"] = uncertain_rows(out, min_confidence)
    return out


def uncertain_last(frames: pd.DataFrame) -> pd.DataFrame:
    """`frames` with `uncertain` moved back to the end (after a column appended later, `person`)."""
    if "uncertain" not in frames.columns or frames.columns[-1] == "uncertain":
        return frames
    return frames[[c for c in frames.columns if c != "uncertain"] + ["uncertain"]]


def counted(frames: pd.DataFrame, drop_uncertain: bool) -> pd.DataFrame:
    """The rows summaries and episodes count: all, or with `drop_uncertain` those not flagged uncertain."""
    if not drop_uncertain or "uncertain" not in frames.columns:
        return frames
    return frames[~frames["uncertain"].fillna(False).astype(bool)]


def stretches(t: np.ndarray, seen: np.ndarray, bridge_s: float) -> np.ndarray:
    """Where one track's rows (times `t`, ascending; `seen`: how long each row's frame stands for) are cut by a
    hole: the face unseen (or its uncertain rows left out) for `bridge_s` or longer, from the end of a row's frame
    to the next row. The positions each stretch starts at, and len(t) last. An episode never spans such a hole,
    and smoothing never averages across one; a shorter hole is bridged like a dip, and smoothed across."""
    holes = t[1:] - (t[:-1] + seen[:-1])
    return np.concatenate([[0], np.flatnonzero((holes > EPS) & (holes >= bridge_s - EPS)) + 1, [len(t)]])


def smoothed(frames: pd.DataFrame, classes: list[str], smooth_s: float, seen: pd.Series | None = None,
             bridge_s: float = 0.0) -> pd.DataFrame:
    """Per row, each class's probability averaged over the rows of its track within `smooth_s` / 2 seconds either
    side (a centred moving mean by time) and within its stretch: never across a hole that ends an episode
    (`stretches`, by `seen`, how long each row's frame stands for, and `bridge_s`; without `seen` every track is
    one stretch). `smooth_s` 0: the rows' own probabilities. Indexed as `frames`."""
    probs = [f"p_{c}" for c in classes]
    if frames.empty or smooth_s <= 0:
        return frames[probs].astype(float)
    half = smooth_s / 2 + EPS
    out = np.empty((len(frames), len(probs)))
    pos = pd.Series(np.arange(len(frames)), index=frames.index)
    for _, part in frames.groupby("face", sort=False):
        part = part.sort_values("time_s", kind="stable")
        t = part["time_s"].to_numpy(float)
        p = part[probs].to_numpy(float)
        cuts = [0, len(t)] if seen is None else stretches(t, seen.reindex(part.index).to_numpy(float), bridge_s)
        rows = pos.loc[part.index].to_numpy()
        for i, j in zip(cuts[:-1], cuts[1:]):
            ts, ps = t[i:j], p[i:j]
            csum = np.vstack([np.zeros((1, ps.shape[1])), np.cumsum(ps, axis=0)])
            lo, hi = np.searchsorted(ts, ts - half, "left"), np.searchsorted(ts, ts + half, "right")
            out[rows[i:j]] = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    return pd.DataFrame(out, index=frames.index, columns=probs)


def _on(s: np.ndarray, onset: float, offset: float) -> np.ndarray:
    """Hysteresis: on from a value at or above `onset` until the first value below `offset`."""
    state = np.where(s >= onset, 1.0, np.where(s < offset, 0.0, np.nan))
    return pd.Series(state).ffill().fillna(0.0).to_numpy().astype(bool)


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of True."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def episodes_of_track(t: np.ndarray, seen: np.ndarray, s: np.ndarray, rule: EpisodeRule) -> list[tuple[int, int]]:
    """The episodes of one class on one track as (first, last) row positions: `t` its rows' times (ascending),
    `seen` how long each row's frame stands for, `s` the smoothed probability."""
    # A hole in the track (the face unseen, or its uncertain rows left out) as long as a bridge or longer ends what
    # went on before it: the next stretch must reach the onset again. A shorter one is bridged like a dip.
    cuts = stretches(t, seen, rule.bridge_s)
    runs = [(i + a, i + b) for i, j in zip(cuts[:-1], cuts[1:]) for a, b in _runs(_on(s[i:j], rule.onset,
                                                                                     rule.offset))]
    spans: list[list[int]] = []
    for a, b in runs:
        if spans and t[a] - (t[spans[-1][1]] + seen[spans[-1][1]]) < rule.bridge_s - EPS:
            spans[-1][1] = b  # a short dip (or a short hole in the track) bridged
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans if t[b] + seen[b] - t[a] >= rule.min_s - EPS]


def episodes_table(frames: pd.DataFrame, seen: pd.Series, rule: EpisodeRule, source: str = "") -> pd.DataFrame:
    """episodes.csv of one video: one row per episode per track, in track then onset order. `frames`: the rows
    episodes are found in (short tracks and, with --drop-uncertain, uncertain rows already left out), with
    `person` where --people numbered them; `seen`: how long each row's frame stands for (report.row_seconds)."""
    classes = classes_of(frames)
    wanted = [c for c in classes if rule.neutral or c != "neutral"]
    sm = smoothed(frames, wanted, rule.smooth_s, seen, rule.bridge_s)
    rows = []
    for face, part in frames.groupby("face", sort=True):
        part = part.sort_values("time_s", kind="stable")
        t = part["time_s"].to_numpy(float)
        sn = seen.reindex(part.index).to_numpy(float)
        person = _person_of(part)
        for c in wanted:
            s = sm.loc[part.index, f"p_{c}"].to_numpy(float)
            for a, b in episodes_of_track(t, sn, s, rule):
                k = a + int(np.argmax(s[a:b + 1]))
                rows.append({"source": source, "face": int(face), "person": person, "emotion": c,
                             "onset_s": t[a], "peak_s": t[k], "offset_s": t[b] + sn[b],
                             "duration_s": t[b] + sn[b] - t[a], "peak_p": float(s[k]),
                             "mean_p": float(s[a:b + 1].mean()), "frames": b - a + 1})
    df = pd.DataFrame(rows, columns=list(EPISODES.fixed))
    df = df.sort_values(["face", "onset_s", "emotion"], kind="stable").reset_index(drop=True)
    return EPISODES.apply(df)


def _person_of(part: pd.DataFrame):
    if "person" not in part.columns:
        return pd.NA
    known = part["person"].dropna()
    return int(known.iloc[0]) if len(known) else pd.NA


def responses_table(events: pd.DataFrame, frames: pd.DataFrame, episodes: pd.DataFrame, window_s: float,
                    source: str = "") -> pd.DataFrame:
    """responses.csv of one video: for each event (`events`: its `time_s` and `label`, indexed by its row in the
    events file, which `event` gives) and each
    track with a row in the window [time_s, time_s + window_s), the first of the track's episodes that starts in the
    window (emotion, onset, latency, peak; empty where none does) and the track's mean probabilities over its rows
    in the window."""
    classes = classes_of(frames)
    rows = []
    t_all = frames["time_s"].to_numpy(float)
    for k, at, label in zip(events.index, events["time_s"].astype(float), events["label"]):
        inside = frames[(t_all >= at - EPS) & (t_all < at + window_s - EPS)]
        for face, part in inside.groupby("face", sort=True):
            mine = episodes[(episodes["face"] == face) & (episodes["onset_s"] >= at - EPS)
                            & (episodes["onset_s"] < at + window_s - EPS)]
            first = mine.sort_values("onset_s", kind="stable").head(1)
            ep = first.iloc[0] if len(first) else None
            rows.append({"source": source, "event": int(k), "label": label, "event_s": at, "face": int(face),
                         "person": _person_of(part), "emotion": ep["emotion"] if ep is not None else pd.NA,
                         "onset_s": ep["onset_s"] if ep is not None else np.nan,
                         "latency_s": ep["onset_s"] - at if ep is not None else np.nan,
                         "peak_s": ep["peak_s"] if ep is not None else np.nan,
                         "peak_p": ep["peak_p"] if ep is not None else np.nan, "frames": len(part),
                         **{f"mean_p_{c}": float(part[f"p_{c}"].mean()) for c in classes}})
    cols = list(RESPONSES.fixed) + [f"mean_p_{c}" for c in classes]
    return RESPONSES.apply(pd.DataFrame(rows, columns=cols))
