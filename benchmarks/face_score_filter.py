"""What `face_score` separates on real footage: each box batchemo reported on the shared clips and photos, as
bench_faces scores it (a hit on a reference face, a false box on no face at all, or neither), and what a filter
`face_score >= T` keeps of each kind.

    python benchmarks/bench_faces.py --no-haar         # writes the reports this reads (benchmarks/work/faces/)
    python benchmarks/face_score_filter.py [--system batchemo_defaults] [--thresholds 0.1 0.3 0.5]

Writes benchmarks/results/face_score.md. README's advice on filtering by face_score comes from this table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_faces as B  # noqa: E402  (a script beside this one, not a package)

from batchemo.pipeline.track import iou  # noqa: E402


def label_boxes(rows: pd.DataFrame, must: dict, ignore: dict, key: str) -> pd.Series:
    """Per row of a report: 'hit' (matched one to one to a must-find face, as bench_faces matches), 'false'
    (overlaps no reference box at all), else 'other' (a loose box, a face only the ignore list has)."""
    kind = pd.Series("other", index=rows.index)
    for unit, part in rows.groupby(key):
        boxes = part[["x", "y", "w", "h"]].to_numpy(float)
        m = np.asarray(must.get(unit, np.zeros((0, 4))), float).reshape(-1, 4)
        g = np.asarray(ignore.get(unit, np.zeros((0, 4))), float).reshape(-1, 4)
        refs = np.vstack([m, g])
        ov = iou(boxes, refs) if len(refs) else np.zeros((len(boxes), 0))
        kind.loc[part.index[(ov.max(axis=1) if ov.shape[1] else np.zeros(len(boxes))) == 0]] = "false"
        pairs = iou(boxes, m) if len(m) else np.zeros((len(boxes), 0))
        taken_b, taken_m = set(), set()
        for flat in np.argsort(-pairs, axis=None):
            i, j = np.unravel_index(flat, pairs.shape)
            if pairs[i, j] < B.MATCH_IOU:
                break
            if i in taken_b or j in taken_m:
                continue
            taken_b.add(i)
            taken_m.add(j)
            kind.loc[part.index[i]] = "hit"
    return kind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=B.DATA)
    ap.add_argument("--system", default="batchemo_defaults", help="folder under benchmarks/work/faces/")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7])
    a = ap.parse_args()
    work = B.WORK / a.system
    if not work.is_dir():
        sys.exit(f"face_score_filter: no {work}: run benchmarks/bench_faces.py first")
    parts = []
    for clip in pd.read_csv(a.data / "clips.csv")["clip"]:
        csv = next(work.glob(f"{Path(clip).stem}*/frames.csv"), None)
        if csv is None:
            continue
        rows = B.read_rows(csv)
        must, ignore = B.split_reference(pd.read_csv(a.data / f"{clip}.faces.csv"),
                                         pd.read_csv(a.data / f"{clip}.faces_blazeface.csv"), "frame")
        parts.append(rows.assign(clip=clip, kind=label_boxes(rows, must, ignore, "frame")))
    photos = work / "photos" / "faces.csv"
    if photos.exists():
        rows = B.read_rows(photos)
        rows = rows.assign(file=rows["source"].map(lambda s: Path(s).name))
        must, ignore = B.split_reference(pd.read_csv(a.data / "photos.faces.csv"),
                                         pd.read_csv(a.data / "photos.faces_blazeface.csv"), "file")
        parts.append(rows.assign(clip="photos", kind=label_boxes(rows, must, ignore, "file")))
    if not parts:
        sys.exit(f"face_score_filter: no frames.csv under {work}")
    allrows = pd.concat(parts, ignore_index=True)
    lines = [f"# face_score on the shared clips and photos ({a.system})", "",
             "Boxes by kind (bench_faces' scoring) and the share of each a filter `face_score >= T` keeps.", "",
             "| clip | hits | false | other | " + " | ".join(f"T={t:g}: hits kept / false kept" for t in a.thresholds)
             + " |", "|---|---:|---:|---:|" + "---:|" * len(a.thresholds)]
    for name, g in [*allrows.groupby("clip", sort=False), ("all", allrows)]:
        n = g["kind"].value_counts()
        cells = []
        for t in a.thresholds:
            kept = g[g["face_score"] >= t]["kind"].value_counts()
            cells.append(" / ".join(f"{100 * kept.get(k, 0) / n[k]:.0f} %" if n.get(k, 0) else "-"
                                    for k in ("hit", "false")))
        lines.append(f"| {name} | {n.get('hit', 0)} | {n.get('false', 0)} | {n.get('other', 0)} | "
                     + " | ".join(cells) + " |")
    scores = allrows.assign(face_score=pd.to_numeric(allrows["face_score"], errors="coerce"))
    q = scores.groupby("kind")["face_score"].quantile([0.1, 0.25, 0.5]).unstack()
    lines += ["", "face_score quantiles by kind (10 %, 25 %, median):", ""]
    lines += [f"- {k}: " + ", ".join(f"{v:.2f}" for v in q.loc[k]) for k in q.index]
    text = "\n".join(lines) + "\n"
    (B.RESULTS / "face_score.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
