"""Episodes on the shared clips (issue #40): how many each emotion gives with the defaults, how much each threshold
moves them, how many rows are uncertain, and what the episode/response/uncertain work costs the video job.

    python benchmarks/bench_episodes.py                          # writes benchmarks/results/episodes.md
    python benchmarks/bench_episodes.py --predictions P.csv      # also checks --min-confidence against FER+ votes

The clips (../shared/media/realclips/*.mp4|.mov and the CASME II clip) are analysed once with the default options
into benchmarks/work/episodes/ (a re-run reuses those reports); every variant of the episode rule is then worked
out again from their frames.csv, as a re-run with other options does (jobs/derived.py). `--predictions`: the
predictions.csv of `batchemo evaluate models/emotion.keras ../shared/datasets/fer2013/val --votes
../shared/datasets/ferplus/val.csv`: how often the crowd's majority agrees with the model's top class below and
above the confidence threshold. The cost: on the ~3,000-frame clip bench_speed makes (benchmarks/work/
casme2-EP02_05_x3000.avi), the job's wall time against the time of the derived work alone (uncertain, episodes,
responses to an event every 10 s, and writing episodes.csv / responses.csv), measured in this process.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from batchemo import report as R  # noqa: E402
from batchemo.jobs.derived import derive, write_derived  # noqa: E402
from batchemo.jobs.options import VideoOptions  # noqa: E402
from batchemo.jobs.video import analyze_video, recorded_seconds  # noqa: E402
from batchemo.report import episodes as E  # noqa: E402

SHARED = ROOT.parent / "shared" / "media"
WORK = HERE / "work" / "episodes"
SPEED_CLIP = HERE / "work" / "casme2-EP02_05_x3000.avi"
QUIET = dict(annotate=False, html=False)

# Each knob moved alone from the defaults (offset never above onset).
SWEEP = {"episode_onset": [0.4, 0.5, 0.6, 0.7], "episode_offset": [0.25, 0.35, 0.45, 0.5],
         "episode_min_s": [0.0, 0.3, 0.5, 1.0], "episode_bridge_s": [0.0, 0.3, 0.6, 1.0],
         "episode_smooth_s": [0.0, 0.3, 0.6, 1.0], "min_confidence": [0.5]}


def markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (without the tabulate package)."""
    cells = [[str(c) for c in df.columns]] + [["" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v)
                                               for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "| " + " | ".join("---" for _ in df.columns) + " |", *lines[1:]])


def clips() -> list[Path]:
    found = sorted(p for p in (SHARED / "realclips").iterdir() if p.suffix.lower() in (".mp4", ".mov"))
    return found + [SHARED / "casme2-EP02_05.avi"]


def analysed(clip: Path) -> tuple[Path, pd.DataFrame, pd.Series]:
    out = WORK / clip.name
    analyze_video(clip, out, options=VideoOptions(**QUIET), progress=False)
    record = R.read_record(out / "run.json")
    frames = R.read_report(out / "frames.csv")
    seen, _ = recorded_seconds(clip, frames, record)
    return out, frames, seen


def episodes_for(frames: pd.DataFrame, seen: pd.Series, opts: VideoOptions, source: str) -> pd.DataFrame:
    return derive(frames, seen, opts, source, keep_short_tracks=False, events=None).episodes


def sweep(reports: list[tuple[Path, pd.DataFrame, pd.Series]]) -> tuple[pd.DataFrame, list[str]]:
    rows = []
    # No rule at all: every run of rows at or above 0.5 (no smoothing, hysteresis, bridge or minimum): the flicker
    # the rule is there to remove.
    variants = [("defaults", VideoOptions(**QUIET)),
                ("no rule (0.5 / 0.5, no min, bridge or smoothing)",
                 VideoOptions(**QUIET, episode_offset=0.5, episode_min_s=0, episode_bridge_s=0, episode_smooth_s=0))]
    for knob, values in SWEEP.items():
        for v in values:
            base = VideoOptions(**QUIET)
            if knob == "episode_offset" and v > base.episode_onset:
                continue
            if knob == "episode_onset" and v < base.episode_offset:
                variants.append((f"{knob}={v:g} (offset {v:g})", replace(base, episode_offset=v, episode_onset=v)))
                continue
            if knob == "min_confidence":
                variants.append(("drop_uncertain (min_confidence 0.5)", replace(base, drop_uncertain=True)))
                continue
            variants.append((f"{knob}={v:g}", replace(base, **{knob: v})))
    classes = R.classes_of(reports[0][1])
    for name, opts in variants:
        eps = pd.concat([episodes_for(f, s, opts, o.name) for o, f, s in reports], ignore_index=True)
        counts = eps["emotion"].value_counts()
        rows.append({"variant": name, "episodes": len(eps),
                     **{c: int(counts.get(c, 0)) for c in classes if c != "neutral"},
                     "median_s": round(float(eps["duration_s"].median()), 2) if len(eps) else float("nan"),
                     "tracks_with_one": int(eps.groupby(["source", "face"]).ngroups) if len(eps) else 0})
    return pd.DataFrame(rows), classes


def per_clip(reports) -> pd.DataFrame:
    rows = []
    for out, frames, seen in reports:
        shown = R.shown_rows(frames, False)
        eps = episodes_for(frames, seen, VideoOptions(**QUIET), out.name)
        unc = E.uncertain_rows(shown, 0.5)
        rows.append({"clip": out.name, "tracks": int(shown["face"].nunique()), "rows": len(shown),
                     "uncertain_%": round(100 * float(unc.mean()), 1) if len(shown) else float("nan"),
                     "episodes": len(eps),
                     "by emotion": ", ".join(f"{k} {v}" for k, v in eps["emotion"].value_counts().items()) or "-"})
    return pd.DataFrame(rows)


def crowd_check(predictions: Path, threshold: float) -> str:
    p = pd.read_csv(predictions, keep_default_na=False)
    p = p[p["crowd_majority"] != ""]
    agree = p["predicted"] == p["crowd_majority"]
    lines = []
    for label, m in ((f"confidence < {threshold:g} (uncertain)", p["confidence"] < threshold),
                     (f"confidence >= {threshold:g}", p["confidence"] >= threshold)):
        lines.append(f"| {label} | {int(m.sum())} ({100 * m.mean():.1f} %) | {int(agree[m].sum())} "
                     f"({100 * agree[m].mean():.1f} %) | {100 * p.loc[m, 'confidence'].mean():.1f} % |")
    return "\n".join(["| fer2013/val faces with a crowd majority | faces | crowd majority agrees | mean confidence |",
                      "| --- | --- | --- | --- |", *lines])


def cost(repeats: int = 5) -> str:
    """The job's wall time on the ~3,000-frame clip and the derived work's own time on its rows, in one process."""
    if not SPEED_CLIP.exists():
        return f"{SPEED_CLIP} missing: run benchmarks/bench_speed.py first (it makes the clip)"
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.csv"
        out = Path(tmp) / "job"
        t0 = time.perf_counter()
        res = analyze_video(SPEED_CLIP, out, options=VideoOptions(annotate=False, html=False), progress=False)
        job = time.perf_counter() - t0
        frames = R.read_report(out / "frames.csv")
        seen, duration = recorded_seconds(SPEED_CLIP, frames, R.read_record(out / "run.json"))
        pd.DataFrame({"time_s": [float(t) for t in range(0, int(duration), 10)],
                      "label": [f"e{k}" for k in range(0, int(duration), 10)]}).to_csv(events, index=False)
        opts = VideoOptions(annotate=False, html=False, events=str(events))
        times, derived_total = [], []
        base = frames.drop(columns="uncertain")
        for _ in range(repeats):
            t0 = time.perf_counter()
            f = E.with_uncertain(base, opts.min_confidence)
            shown = R.shown_rows(f, False)
            eps = E.episodes_table(shown, seen, opts.episode_rule, SPEED_CLIP.name)
            ev = pd.read_csv(events)
            E.responses_table(ev, shown, eps, opts.response_window_s, SPEED_CLIP.name)
            R.write_csv(eps, Path(tmp) / "episodes.csv")
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            write_derived(out, derive(base, seen, opts, SPEED_CLIP.name, keep_short_tracks=False, events=None))
            derived_total.append(time.perf_counter() - t0)
        add = statistics.median(times)
        load = os.getloadavg()[0]
        return (f"`{SPEED_CLIP.name}`: {res.frames_decoded} frames, {res.faces} face rows (load average {load:.1f} "
                f"on {os.cpu_count()} cores), job wall time "
                f"{job:.2f} s (annotate and page off, so the share is the largest it can be). The additions "
                f"(uncertain flags, episodes, responses to {len(ev)} events, episodes.csv written): median "
                f"{1000 * add:.1f} ms of {repeats} = {100 * add / job:.2f} % of the job. The whole derived step "
                f"(those, plus timeline.csv, summary.csv and frames.csv as the job writes them anyway): median "
                f"{1000 * statistics.median(derived_total):.0f} ms.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", type=Path, help="predictions.csv of batchemo evaluate --votes on fer2013/val")
    ap.add_argument("--no-cost", action="store_true", help="skip the timing on the 3,000-frame clip")
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    reports = [analysed(c) for c in clips()]
    table, classes = sweep(reports)
    parts = ["# Episodes on the shared clips", "",
             f"`python benchmarks/bench_episodes.py{' --predictions PREDICTIONS.csv' if a.predictions else ''}`"
             f", {time.strftime('%Y-%m-%d')}. {len(reports)} clips analysed with the default options (short tracks "
             "left out); each row moves one knob from the defaults.", "",
             "## Per clip, defaults", "", markdown(per_clip(reports)), "",
             "## Episodes per emotion, all clips", "", markdown(table), ""]
    if a.predictions:
        parts += ["## `uncertain` against the FER+ crowd", "",
                  "PREDICTIONS.csv: `batchemo evaluate models/emotion.keras ../shared/datasets/fer2013/val --votes "
                  "../shared/datasets/ferplus/val.csv --out OUT` (OUT/predictions.csv).", "",
                  crowd_check(a.predictions, 0.5), ""]
    if not a.no_cost:
        parts += ["## Cost in the video job", "", cost(), ""]
    text = "\n".join(parts)
    (HERE / "results" / "episodes.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
