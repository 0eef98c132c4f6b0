"""Recipe comparison for the model card: the same data budget for each recipe, measured on fer2013/val.

    python research/compare_recipes.py [--per-class 500] [--epochs 3]   # writes benchmarks/results/recipes.md (bench_speed's writer)

A class-balanced subset of fer2013/train (symlinks, at most --per-class per class) trains each recipe with
`batchemo train` for the same number of epochs; every figure is top-1 accuracy on the full fer2013/val. Short
budgets rank recipes; they do not give the accuracy a full run reaches.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_speed import ROOT, WORK, write_result  # noqa: E402  (benchmarks/ holds scripts, not a package)

FER = ROOT.parent / "shared" / "datasets" / "fer2013"
WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
RECIPES = {
    "notebook baseline: alpha 0.25 ImageNet, frozen base, [0,1] pixels, 96 px":
        ["--alpha", "0.25", "--size", "96", "--base-weights", str(WEIGHTS), "--recipe", "notebook"],
    "alpha 0.25 ImageNet fine-tuned, 48 px": ["--alpha", "0.25", "--size", "48", "--base-weights", str(WEIGHTS)],
    "alpha 0.25 ImageNet fine-tuned, 64 px": ["--alpha", "0.25", "--size", "64", "--base-weights", str(WEIGHTS)],
    "alpha 0.25 ImageNet fine-tuned, 96 px": ["--alpha", "0.25", "--size", "96", "--base-weights", str(WEIGHTS)],
    "alpha 0.5 from scratch, 64 px": ["--alpha", "0.5", "--size", "64", "--base-weights", "none"],
    "alpha 0.5 from scratch, 96 px": ["--alpha", "0.5", "--size", "96", "--base-weights", "none"],
}


def subset(per_class: int) -> Path:
    dst = WORK / f"fer_train_{per_class}"
    if dst.exists():
        return dst
    for cls in sorted(p for p in (FER / "train").iterdir() if p.is_dir()):
        (dst / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            (dst / cls.name / f.name).symlink_to(f)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    data = subset(a.per_class)
    rows = []
    for name, args in RECIPES.items():
        out = WORK / "recipes" / (name.split(":")[0].replace(" ", "_").replace(",", "") + ".keras")
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "batchemo", "train", str(data), "--val-dir", str(FER / "val"), "--out", str(out),
               "--epochs", str(a.epochs), "--head-epochs", "1", "--lr", "2e-3", "--fine-tune-lr", "1e-3", *args]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            continue
        card = json.loads(out.with_suffix(".json").read_text())
        rows.append({"recipe": name, "fer2013/val top-1 %": round(100 * card["validation"]["accuracy"], 2),
                     "epochs": card["epochs_run"], "minutes": round((time.perf_counter() - t) / 60, 1)})
        print(rows[-1], flush=True)
    write_result("recipes", f"with `python research/compare_recipes.py --per-class {a.per_class} --epochs "
                 f"{a.epochs}` ({a.per_class} images per class at most, {a.epochs} epochs + 1 head epoch where "
                 "pretrained; full fer2013/val)", rows)


if __name__ == "__main__":
    main()
