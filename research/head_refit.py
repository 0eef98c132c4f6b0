"""Refit only a model's last layer (Dense on the pooled MobileNet features) on clean crops, without augmentation:
does a head fitted to the features the trained base gives lift the accuracy against the crowd majority?

    pip install ".[bench]"   # scipy, for L-BFGS
    python research/head_refit.py MODEL TRAIN_DIR VOTES [--out OUT.keras] [--l2 A B ...] [--power P Q ...]

The base is frozen, so the features of every crop of train (the part `batchemo train` trained on: the same
--val-split 0.1 and seed as the model's card) and of its mirror image are computed once; a softmax layer is then
fitted to the vote distributions by L-BFGS, pulled towards the trained head by an L2 penalty on the difference
(each --l2 strength is one candidate). --power sharpens the targets towards the majority (shares ** P,
renormalised; 1 leaves them as voted): every power with every strength is a candidate. The held-out 10 % scores
every candidate the way `batchemo calibrate` does (mirror-averaged, against the unique crowd majority), beside the
unchanged model; with --out the best
candidate is saved with the model's card (temperature to be fitted again with `batchemo calibrate`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batchemo.pipeline.model import read_card  # noqa: E402
from batchemo.training.card import write_card  # noqa: E402
from batchemo.training.evaluate import load_crops  # noqa: E402
from batchemo.training.options import TrainOptions, hold_out_seed  # noqa: E402
from batchemo.training.train import split_files  # noqa: E402
from batchemo.training.votes import majority  # noqa: E402


def features(model, crops: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of each crop and of its mirror image."""
    import keras

    pooled = keras.Model(model.input, model.get_layer("pool").output)
    x = crops[..., None].astype(np.float32)
    return (pooled.predict(x, batch_size=batch, verbose=0),
            pooled.predict(x[:, :, ::-1], batch_size=batch, verbose=0))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_head(x: np.ndarray, t: np.ndarray, w0: np.ndarray, b0: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax layer minimising mean cross-entropy to the soft targets t + l2 * |W - W0|^2, from (W0, b0)."""
    d, c = w0.shape

    def loss(theta):
        w, b = theta[:d * c].reshape(d, c), theta[d * c:]
        p = softmax(x @ w + b)
        ce = -(t * np.log(p + 1e-12)).sum(1).mean()
        g = (p - t) / len(x)
        gw = x.T @ g + 2 * l2 * (w - w0)
        return ce + l2 * ((w - w0) ** 2).sum(), np.concatenate([gw.ravel(), g.sum(0)])

    res = minimize(loss, np.concatenate([w0.ravel(), b0]), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return res.x[:d * c].reshape(d, c), res.x[d * c:]


def held_accuracy(f: np.ndarray, fm: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
    p = (softmax(f @ w + b) + softmax(fm @ w + b)) / 2
    return float((p.argmax(1) == y).mean())


def main() -> None:
    import keras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("train_dir")
    ap.add_argument("votes")
    ap.add_argument("--out")
    ap.add_argument("--l2", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1])
    ap.add_argument("--power", type=float, nargs="+", default=[1.0])
    a = ap.parse_args()
    model = keras.saving.load_model(a.model, compile=False)
    card = read_card(Path(a.model))
    seed = hold_out_seed(card.get("options", {}))
    train, held, _ = split_files(a.train_dir, TrainOptions(seed=seed), None, 0.1, None, a.votes)
    y = majority(held.votes, held.classes, card["classes"], a.votes)
    keep = y >= 0
    ft, ftm = features(model, load_crops(train.paths, card["input"]["image_size"]))
    fh, fhm = features(model, load_crops([p for p, k in zip(held.paths, keep) if k], card["input"]["image_size"]))
    y = y[keep]
    x, t = np.concatenate([ft, ftm]), np.concatenate([train.targets()] * 2)
    w0, b0 = (np.asarray(v, np.float64) for v in model.get_layer("emotion").get_weights())
    print(f"held-out {len(y)} images; trained head: {100 * held_accuracy(fh, fhm, y, w0, b0):.2f} %")
    best = (held_accuracy(fh, fhm, y, w0, b0), None, w0, b0)
    for power in a.power:
        tp = t ** power
        tp /= tp.sum(1, keepdims=True)
        for l2 in a.l2:
            w, b = fit_head(x, tp, w0, b0, l2)
            acc = held_accuracy(fh, fhm, y, w, b)
            fit = held_accuracy(ft, ftm, t.argmax(1)[:len(ft)], w, b)
            print(f"refit, power {power:g}, l2 {l2:g}: {100 * acc:.2f} % (train fit {100 * fit:.2f} %)", flush=True)
            if acc > best[0]:
                best = (acc, (power, l2), w, b)
    if a.out and best[1] is not None:
        model.get_layer("emotion").set_weights([best[2].astype(np.float32), best[3].astype(np.float32)])
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        card = dict(card, model_file=out.name, head_refit={"from": a.model, "power": best[1][0], "l2": best[1][1]})
        write_card(out, card)
        print(f"{out}: head refit with power {best[1][0]:g}, l2 {best[1][1]:g}, held-out {100 * best[0]:.2f} %")


if __name__ == "__main__":
    main()
