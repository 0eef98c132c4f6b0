"""Same rows? The face rows of this tree against another tree's (a commit checked out with `git worktree add`),
video by video and photo by photo: what a speed change did to the answers.

    git worktree add /tmp/base <commit>
    python benchmarks/same_rows.py --base /tmp/base            # writes benchmarks/results/same_rows.md

Inputs: the shared real clips and photos (../shared/media/realclips, the CASME II clip) when present, and the
project's samples. Each tree runs `batchemo video CLIP --no-annotate` and `batchemo folder` in its own process,
with its own code (PYTHONPATH). Rows are paired by (source, frame, box): a row of one tree with no row of the
same box (IoU >= 0.5) on the same frame or photo in the other is "only base" / "only new". For paired rows:
boxes equal to the pixel, the same emotion, the largest difference of any class probability, and the same
track id (video).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from batchemo.pipeline.track import iou  # noqa: E402

SHARED = ROOT.parent / "shared" / "media"
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi"}


def inputs() -> tuple[list[Path], list[Path]]:
    """(videos, photo folders)."""
    videos = sorted(p for p in (SHARED / "realclips").glob("*") if p.suffix in VIDEO_SUFFIXES)
    videos += [p for p in [SHARED / "casme2-EP02_05.avi"] if p.exists()]
    videos += sorted((ROOT / "samples" / "video").glob("*.mp4"))
    folders = [ROOT / "samples" / "images"]
    if (SHARED / "realclips").exists():
        folders.append(SHARED / "realclips")
    return videos, folders


def run(tree: Path, job: str, path: Path, out: Path) -> float:
    """CPU seconds (user + system) of one job run by `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, "-m", "batchemo", job, str(path), "--out", str(out), "--redo", "--no-progress", "--force"]
    if job == "video":
        args.append("--no-annotate")
    else:
        args += ["--no-annotate", "--no-html"]
    t0 = os.times()
    # cwd too: `python -m` puts it first on sys.path, ahead of PYTHONPATH
    p = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tree)
    t1 = os.times()
    if p.returncode not in (0, 1):
        raise SystemExit(f"{tree}: {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)


def compare(base: pd.DataFrame, new: pd.DataFrame, key: list[str]) -> dict:
    probs = [c for c in base.columns if c.startswith("p_")]
    paired = same_box = same_emotion = same_id = 0
    worst = 0.0
    only_base = 0
    groups = {k: g for k, g in new.groupby(key)} if len(new) else {}
    for k, b in (base.groupby(key) if len(base) else []):
        n = groups.get(k)
        if n is None:
            only_base += len(b)
            continue
        m = iou(b[["x", "y", "w", "h"]].to_numpy(float), n[["x", "y", "w", "h"]].to_numpy(float))
        pairs = []
        for flat in np.argsort(-m, axis=None):  # best overlap first, one-to-one
            i, j = np.unravel_index(flat, m.shape)
            if m[i, j] < 0.5:
                break
            if all(i != pi and j != pj for pi, pj in pairs):
                pairs.append((i, j))
        only_base += len(b) - len(pairs)
        for i, j in pairs:
            rb, rn = b.iloc[i], n.iloc[j]
            paired += 1
            same_box += all(rb[c] == rn[c] for c in ("x", "y", "w", "h"))
            same_emotion += rb.emotion == rn.emotion
            if "face" in b.columns and key == ["frame"]:
                same_id += rb.face == rn.face
            worst = max(worst, float(np.abs(rb[probs].to_numpy(float) - rn[probs].to_numpy(float)).max()))
    return {"rows base": len(base), "rows new": len(new), "paired": paired, "only base": only_base,
            "only new": len(new) - paired, "same box %": round(100 * same_box / paired, 2) if paired else None,
            "same emotion %": round(100 * same_emotion / paired, 2) if paired else None,
            "same id %": round(100 * same_id / paired, 2) if paired and key == ["frame"] else None,
            "max |dp|": f"{worst:.1e}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, required=True, help="the other tree (a git worktree)")
    ap.add_argument("--work", type=Path, default=HERE / "work" / "same_rows")
    a = ap.parse_args()
    videos, folders = inputs()
    rows = []
    cpu = {"base": 0.0, "new": 0.0}
    for kind, paths in (("video", videos), ("folder", folders)):
        for p in paths:
            tables = {}
            for name, tree in (("base", a.base.resolve()), ("new", ROOT)):
                out = (a.work / name / p.name).resolve()
                cpu[name] += run(tree, kind, p, out)
                tables[name] = pd.read_csv(out / ("frames.csv" if kind == "video" else "faces.csv"))
            row = {"input": p.name, **compare(tables["base"], tables["new"],
                                               ["frame"] if kind == "video" else ["source"])}
            rows.append(row)
            print(row, flush=True)
    df = pd.DataFrame(rows)
    total = df[["rows base", "rows new", "paired", "only base", "only new"]].sum()
    sys.path.insert(0, str(HERE))
    from bench_speed import markdown

    head = subprocess.run(["git", "-C", str(a.base), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    md = (f"Measured {time.strftime('%Y-%m-%d %H:%M')} with `python benchmarks/same_rows.py --base <worktree at "
          f"{head}>` (base) against the working tree (new).\n\n{markdown(df.astype(object).fillna(''))}\n\n"
          f"All inputs: {int(total['paired'])} rows paired, {int(total['only base'])} only in base, "
          f"{int(total['only new'])} only in new. CPU seconds of the jobs (all child processes): base "
          f"{cpu['base']:.1f}, new {cpu['new']:.1f}.\n")
    (HERE / "results" / "same_rows.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
