"""Does the shipped network score better on the held-out slice when run at another input size? (#17)

The model resizes its 48 px crops to the network size inside the graph, and MobileNet ends in global pooling, so the
same weights run at any size. Each size gets a copy of the model rebuilt at that size (card copied, `size` changed)
and is scored by `batchemo calibrate` on the slice of train the card held out (mirror-averaged as the card says),
which prints the accuracy against the crowd majority. The temperature it fits is the copy's, never the shipped one's.

    python research/probe_resolution.py models/emotion.keras ../shared/datasets/fer2013/train \
        ../shared/datasets/ferplus/train.csv --sizes 112 128 136 --work /tmp/probe_res
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path


def rebuilt(model: Path, size: int, work: Path) -> Path:
    import keras

    from batchemo.training.options import TrainOptions
    from batchemo.training.train import build_model

    card = json.loads(model.with_suffix(".json").read_text())
    src = keras.models.load_model(model, compile=False)
    opts = TrainOptions(alpha=card["alpha"], size=size, image_size=card["input"]["image_size"], base_weights="none")
    net = build_model(len(card["classes"]), opts, None)
    net.set_weights(src.get_weights())
    out = work / f"s{size}" / "emotion.keras"
    out.parent.mkdir(parents=True, exist_ok=True)
    net.save(out)
    out.with_suffix(".json").write_text(json.dumps({**card, "size": size, "model_file": out.name}, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("votes", type=Path)
    ap.add_argument("--sizes", type=int, nargs="+", default=[112, 128, 136, 144, 160])
    ap.add_argument("--work", type=Path, default=Path("/tmp/probe_res"))
    a = ap.parse_args()
    for size in a.sizes:
        path = rebuilt(a.model, size, a.work)
        r = subprocess.run([sys.executable, "-m", "batchemo", "calibrate", str(path), str(a.data),
                            "--votes", str(a.votes)], capture_output=True, text=True)
        m = re.search(r"fitted on ([\d,]+) images .*?accuracy ([\d.]+) %", r.stdout)
        if r.returncode or not m:
            sys.exit(f"size {size}: calibrate failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        n = int(m[1].replace(",", ""))
        print(f"{size} px: {round(float(m[2]) * n / 100)} of {n} held-out images ({m[2]} %)", flush=True)


if __name__ == "__main__":
    main()
