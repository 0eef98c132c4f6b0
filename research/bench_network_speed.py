"""What a candidate network would cost in faces/s before any GPU time goes on training it: untrained MobileNets of
each width and input size, built as `batchemo train` builds them, run through the TFLite path that the jobs and
`batchemo evaluate` use, alternating networks round by round in one process.

    python research/bench_network_speed.py     # writes research/results/network_speed.md

The work per crop does not depend on the weights, so an untrained network measures what the trained one will.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from batchemo.pipeline.model import _LitePredictor  # noqa: E402
from batchemo.training.options import TrainOptions  # noqa: E402
from batchemo.training.train import build_model  # noqa: E402


def lite_twin(alpha: float, size: int) -> _LitePredictor:
    import tensorflow as tf

    model = build_model(7, TrainOptions(alpha=alpha, size=size), None)
    return _LitePredictor(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", nargs="+", default=["0.5@128", "0.5@96", "0.5@112", "0.5@144", "0.75@96", "0.75@128"],
                    help="ALPHA@SIZE; the first is the reference the others are compared with")
    ap.add_argument("--crops", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "research" / "results" / "network_speed.md")
    a = ap.parse_args()
    specs = [(float(s.split("@")[0]), int(s.split("@")[1])) for s in a.nets]
    nets = {s: lite_twin(*s) for s in specs}
    x = np.random.default_rng(0).integers(0, 256, (a.crops, 48, 48, 1)).astype(np.float32)
    speeds: dict[tuple, list[float]] = {s: [] for s in specs}
    for net in nets.values():
        net(x[:64])  # first invokes are cold (seen: a third of the speed); they are not throughput
    for r in range(a.rounds):
        for s, net in nets.items():
            t = time.perf_counter()
            net(x)
            speeds[s].append(len(x) / (time.perf_counter() - t))
            print(f"round {r + 1} alpha {s[0]} at {s[1]} px: {speeds[s][-1]:.0f} crops/s", flush=True)
    ref = statistics.median(speeds[specs[0]])
    lines = [f"# Network width and input size against speed: {a.crops} crops, {a.rounds} rounds, TFLite/XNNPACK",
             "", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
             "Command: `python research/bench_network_speed.py`. Mirror-averaged faces/s is half the crops/s.", "",
             "| alpha | input px | crops/s per round | median | vs the first |", "| --- | --- | --- | --- | --- |"]
    for s in specs:
        med = statistics.median(speeds[s])
        lines.append(f"| {s[0]} | {s[1]} | {', '.join(f'{v:.0f}' for v in speeds[s])} | {med:.0f} | {med / ref:.2f}x |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
