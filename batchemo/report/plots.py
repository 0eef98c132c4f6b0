"""The emotion timeline picture: one panel per face track, stacked smoothed probabilities over time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .colours import class_colours
from .atomic import write_atomic


def pyplot():
    """matplotlib's pyplot, drawing to files only, with `$` in text drawn as it is: titles carry file names, and
    `a$\\q$.mp4` read as mathtext stopped the run."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def step_areas(part: pd.DataFrame, classes: list[str]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """One track's timeline rows as step-shaped areas (times, smoothed share of each class), each bin's share over
    its own width: one area per run of consecutive bins, so the bins the face is absent from stay blank."""
    part = part.sort_values("bin")
    runs = np.cumsum(np.r_[True, np.diff(part["bin"].to_numpy()) != 1])
    return [(np.ravel(np.c_[run["start_s"].to_numpy(), run["end_s"].to_numpy()]),
             [np.repeat(run[f"smooth_{c}"].to_numpy(), 2) for c in classes]) for _, run in part.groupby(runs)]


def timeline_png(timeline: pd.DataFrame, summary: pd.DataFrame, classes: list[str], path: Path, *, title: str,
                 duration_s: float, max_tracks: int = 4, empty_note: str = "no faces found in this video",
                 events: pd.DataFrame | None = None) -> None:
    """timeline.png: `timeline_figure` written atomically."""
    fig = timeline_figure(timeline, summary, classes, title=title, duration_s=duration_s, max_tracks=max_tracks,
                          empty_note=empty_note, events=events)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    pyplot().close(fig)


def timeline_figure(timeline: pd.DataFrame, summary: pd.DataFrame, classes: list[str], *, title: str,
                    duration_s: float, max_tracks: int = 4, empty_note: str = "no faces found in this video",
                    events: pd.DataFrame | None = None):
    """The stacked probabilities of the `max_tracks` longest tracks, a panel each; `empty_note`: what the picture
    says when no track is shown; `events` (time_s, label; the video's own, from --events): a dashed line across
    every panel at each event, its label at the top of the first panel."""
    plt = pyplot()
    per_track = summary[summary["scope"] == "track"]  # the all-faces row has no track (face <NA>)
    tracks = per_track.sort_values("frames", ascending=False)["face"].head(max_tracks)
    n = max(1, len(tracks))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.2 + 2.0 * n), dpi=110, sharex=True, squeeze=False)
    if len(tracks) == 0:
        ax = axes[0, 0]
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", fontsize=14, transform=ax.transAxes)
        ax.set_yticks([])
    palette = class_colours(classes)
    for ax, face in zip(axes[:, 0], tracks):
        for t, ys in step_areas(timeline[timeline["face"] == face], classes):
            ax.stackplot(t, ys, colors=[palette[c] for c in classes], alpha=0.9, edgecolor="none")
        row = per_track[per_track["face"] == face].iloc[0]
        ax.set_title(f"track {face}: {row['seconds_on_screen']:.1f} s on screen, mostly {row['dominant']}",
                     loc="left", fontsize=10)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, max(duration_s, 1e-3))
    if events is not None and len(events):
        _mark_events(axes[:, 0], events)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c]) for c in classes]
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 / n, 1, 0.97))
    fig.legend(handles, classes, loc="lower center", ncol=len(classes), fontsize=9, frameon=False)
    return fig


def _mark_events(panels, events: pd.DataFrame) -> None:
    for ax in panels:
        for t in events["time_s"]:
            ax.axvline(float(t), color="black", linestyle="--", linewidth=0.9, alpha=0.75)
    for t, label in zip(events["time_s"], events["label"].fillna("")):
        # Turned upright beside its line: labels of events close together stay readable.
        panels[0].annotate(str(label), (float(t), 0.98), xycoords=("data", "axes fraction"), xytext=(2, 0),
                           textcoords="offset points", rotation=90, ha="left", va="top", fontsize=7,
                           annotation_clip=True)
