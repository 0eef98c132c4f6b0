"""Inference-side levers on the held-out slice (#17): how a face and its mirror image are combined, a per-class
bias on the log-probabilities (neither costs speed), and ensembles with other models (`--with`).

Scored on the slice of train the card held out (seed as the card says), against the unique crowd majority, each
face run once as it is and once mirrored at temperature 1. Combinations: one pass, the mean of the two
probabilities (what the jobs do), their geometric mean (mean of the log-probabilities). The bias: a scale and
one offset per class on the log of the mean, fitted by gradient descent on the NLL; it is fitted on the slice it
is scored on, so its figure is cross-fitted (k folds: fitted on k-1, scored on the one left out). The figure to
beat is the mean's, by the model card's bar (8 images of 2,726). `--with OTHER.keras` (held out on the same
slice): the model with OTHER's mirrored pass instead of its own (the same two passes a face costs today, if
OTHER is no bigger), and both models mirror-averaged (twice the work).

    python research/probe_combine.py models/emotion.keras ../shared/datasets/fer2013/train \
        ../shared/datasets/ferplus/train.csv [--with models/cand/prev/emotion.keras]
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np


def held_out(model: Path, data: Path, votes: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities as the face is, mirrored, crowd-majority class) on the card's held-out slice."""
    from batchemo.pipeline.model import EmotionModel
    from batchemo.training.evaluate import load_crops
    from batchemo.training.options import hold_out_seed
    from batchemo.training.train import TrainOptions, split_files
    from batchemo.training.votes import majority

    em = EmotionModel.load(model)
    seed = hold_out_seed(em.card.get("options", {}))
    _, held, _ = split_files(data, TrainOptions(seed=seed), None, 0.1, None, votes)
    y = majority(held.votes, held.classes, em.classes, str(data))
    keep = y >= 0
    crops = load_crops([p for p, k in zip(held.paths, keep) if k], em.image_size, False)
    one = replace(em, flip=False, temperature=1.0)
    return one.predict(crops), one.predict(np.ascontiguousarray(crops[:, :, ::-1])), y[keep]


def fit_bias(z: np.ndarray, y: np.ndarray, steps: int = 3000, lr: float = 0.5) -> tuple[float, np.ndarray]:
    """Scale a and offsets b minimising the NLL of softmax(a z + b)."""
    a, b, target = 1.0, np.zeros(z.shape[1]), np.eye(z.shape[1])[y]
    for _ in range(steps):
        s = a * z + b
        p = np.exp(s - s.max(1, keepdims=True))
        g = (p / p.sum(1, keepdims=True) - target) / len(y)
        a, b = a - lr * float((g * z).sum()), b - lr * g.sum(0)
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("votes", type=Path)
    ap.add_argument("--folds", type=int, nargs="+", default=[2, 5, 10])
    ap.add_argument("--with", dest="others", type=Path, nargs="*", default=[])
    a = ap.parse_args()
    p0, p1, y = held_out(a.model, a.data, a.votes)
    log0, log1 = np.log(np.maximum(p0, 1e-12)), np.log(np.maximum(p1, 1e-12))
    z = np.log(np.maximum((p0 + p1) / 2, 1e-12)).astype(np.float64)

    def right(scores: np.ndarray, truth: np.ndarray = y) -> int:
        return int((scores.argmax(1) == truth).sum())

    print(f"{len(y)} held-out images: one pass {right(p0)}, mean of the two {right(z)}, "
          f"geometric mean {right(log0 + log1)}")
    rng = np.random.default_rng(0)
    for k in a.folds:
        fold, n = rng.permutation(len(y)) % k, 0
        for f in range(k):
            scale, bias = fit_bias(z[fold != f], y[fold != f])
            n += right(scale * z[fold == f] + bias, y[fold == f])
        print(f"per-class bias, {k}-fold cross-fitted: {n}")
    for other in a.others:
        q0, q1, y_other = held_out(other, a.data, a.votes)
        if not np.array_equal(y_other, y):
            raise SystemExit(f"{other}: held out another slice than {a.model}")
        print(f"with {other}: its mirrored pass for the model's own {right(p0 + q1)}, "
              f"both mirror-averaged {right(p0 + p1 + q0 + q1)}")


if __name__ == "__main__":
    main()
