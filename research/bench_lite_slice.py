"""How many crops one XNNPACK invoke should take: faces/s of the shipped model's TFLite twin through
`EmotionModel.predict` (mirror-averaged, batch 64, as `batchemo evaluate` measures it) for each slice size,
alternating sizes round by round in one process so the machine's drift hits them all alike.

    python research/bench_lite_slice.py            # writes research/results/lite_slice.md

Crops are fer2013/val's where ../shared has it, else random grey crops (the work per crop does not depend on
what it shows). Slice 64 is what every batch of 64 ran as before slicing.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from batchemo.pipeline import model as M  # noqa: E402

VAL = ROOT.parent / "shared" / "datasets" / "fer2013" / "val"


def crops_for(em: M.EmotionModel) -> tuple[np.ndarray, str]:
    if VAL.is_dir():
        from batchemo.training.data import list_labelled
        from batchemo.training.evaluate import load_crops

        return load_crops(list_labelled(VAL, em.classes).paths, em.image_size), "fer2013/val"
    n = 3589
    return np.random.default_rng(0).integers(0, 256, (n, em.image_size, em.image_size), np.uint8), "random crops"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, nargs="+", default=[8, 16, 32, 64], help="64, the reference, is always run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "research" / "results" / "lite_slice.md")
    a = ap.parse_args()
    em = M.EmotionModel.load()
    if not isinstance(em._predict, M._LitePredictor):
        sys.exit("the shipped model has no usable TFLite twin here; nothing to measure")
    crops, what = crops_for(em)
    slices = sorted(set(a.slices) | {64})
    speeds: dict[int, list[float]] = {k: [] for k in slices}
    outputs: dict[int, np.ndarray] = {}
    for r in range(a.rounds):
        for k in slices:
            M.INVOKE_SLICE = k
            # a fresh predictor per size: interpreters of other sizes stay out of its caches
            e = dataclasses.replace(em, _predict=M._LitePredictor(em._predict.content))
            e.predict(crops[:64])
            t = time.perf_counter()
            outputs[k] = e.predict(crops)
            speeds[k].append(len(crops) / (time.perf_counter() - t))
            print(f"round {r + 1} slice {k}: {speeds[k][-1]:.0f} faces/s", flush=True)
    base = statistics.median(speeds[64])
    lines = [f"# TFLite invoke slice size: {len(crops)} {what}, mirror-averaged, batch 64, {a.rounds} rounds",
             "", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
             "Command: `python research/bench_lite_slice.py`", "",
             "| slice | faces/s per round | median | vs slice 64 | max abs output difference vs slice 64 |",
             "| --- | --- | --- | --- | --- |"]
    for k in slices:
        med = statistics.median(speeds[k])
        lines.append(f"| {k} | {', '.join(f'{s:.0f}' for s in speeds[k])} | {med:.0f} | {med / base:.2f}x | "
                     f"{np.abs(outputs[k] - outputs[64]).max():.1e} |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
