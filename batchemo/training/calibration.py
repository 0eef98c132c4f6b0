"""Calibration: how far a model's confidence is from its accuracy (ECE, NLL, reliability diagram), and the single
temperature that brings them together (`batchemo calibrate`)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..pipeline.model import apply_temperature

BINS = 15  # equal-width confidence bins of the expected calibration error


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes `y` (natural log; probabilities floored at 1e-12)."""
    if len(y) == 0:
        return float("nan")
    p = np.asarray(probs, np.float64)[np.arange(len(y)), np.asarray(y)]
    return float(-np.log(np.maximum(p, 1e-12)).mean())


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin ((k/bins, (k+1)/bins], the first one closed at 0): how many predictions,
    their mean confidence and their accuracy (NaN for an empty bin)."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(1)
    right = (probs.argmax(1) == np.asarray(y)).astype(np.float64)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / count
        acc = np.bincount(which, right, bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": acc, "edges": np.linspace(0, 1, bins + 1)}


def ece(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over the confidence bins of (share of predictions) x |accuracy - mean
    confidence|, with `bins` equal-width bins of the top-class probability."""
    if len(y) == 0:
        return float("nan")
    r = reliability(probs, y, bins)
    used = r["count"] > 0
    return float((r["count"][used] / len(y) * np.abs(r["accuracy"][used] - r["confidence"][used])).sum())


def fit_temperature(probs: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0,
                    tol: float = 1e-4) -> float:
    """The temperature T minimising the NLL of softmax(log(probs) / T) on (probs, y): golden-section search on
    log T (the NLL is convex in 1/T)."""
    if len(y) == 0:
        raise ValueError("no examples to fit a temperature on")
    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5) - 1) / 2

    def f(log_t: float) -> float:
        return nll(apply_temperature(probs, math.exp(log_t)), y)

    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return float(math.exp((a + b) / 2))


def calibration_figures(probs: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, float]:
    """{prefix}ece and {prefix}nll of `probs` against `y`."""
    return {f"{prefix}ece": ece(probs, y), f"{prefix}nll": nll(probs, y)}


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str,
                     bins: int = BINS) -> None:
    """Reliability diagram: accuracy against mean confidence per bin for each named (probs, y), the diagonal
    being perfect calibration; bar shading shows how many predictions fall in each bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), dpi=110, sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfectly calibrated")
    width = 1 / bins
    for k, (name, (probs, y)) in enumerate(curves.items()):
        r = reliability(probs, y, bins)
        used = r["count"] > 0
        ax.plot(r["confidence"][used], r["accuracy"][used], marker="o", ms=4,
                label=f"{name}: ECE {100 * ece(probs, y, bins):.1f} %, NLL {nll(probs, y):.3f}")
        hist.bar(r["edges"][:-1] + width * (0.1 + 0.8 * k / max(len(curves), 1)), r["count"],
                 width=0.8 * width / max(len(curves), 1), align="edge", label=name)
    ax.set_ylabel("accuracy in the bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    hist.set_xlabel(f"confidence (top-class probability, {bins} bins)")
    hist.set_ylabel("faces")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def calibrate(model_path: str | Path, data_dir: str | Path, votes: str | Path | None = None,
              val_split: float = 0.1, seed: int | None = None, group_by: str | None = None, batch_size: int = 64,
              command: str = "", progress: bool = True) -> dict:
    """Fit the model's temperature and store it in its card (`inference.temperature`, `calibration`).

    The data: the part of DATA_DIR (with `votes`: of the files its votes CSV lists) that `batchemo train` held out
    with the same --val-split, --group-by and seed (the card's seed by default), i.e. images the model did not
    train on; --val-split 0 takes all of DATA_DIR (for a folder set aside for calibration). The target: the crowd
    majority with votes (images with a unique most-voted class), else the folder labels. The network's own output
    (temperature 1, mirror-averaged as the card says) is what the temperature is fitted on."""
    from dataclasses import replace

    from ..pipeline.model import EmotionModel
    from .card import set_temperature
    from .data import labelled_from_votes, list_labelled
    from .evaluate import load_crops, match_classes
    from .options import TrainOptions
    from .train import split_files
    from .votes import majority

    em = EmotionModel.load(model_path)
    seed = int(em.card.get("options", {}).get("seed", 1)) if seed is None else seed
    if val_split > 0:
        _, held, split = split_files(data_dir, TrainOptions(seed=seed), None, val_split, group_by, votes)
    else:
        held = labelled_from_votes(votes, data_dir) if votes else list_labelled(data_dir)
        split = "all of it"
    mapping, lacking, _ = match_classes(em.classes, held.classes)
    if lacking:
        raise ValueError(f"{data_dir}: the model has no class {lacking}")
    y = np.asarray([mapping[int(l)] for l in held.labels], np.int64)
    if held.votes is not None:
        top = majority(held.votes)
        y = np.where(top >= 0, np.asarray([mapping.get(int(t), -1) for t in np.maximum(top, 0)]), -1)
    keep = y >= 0
    crops = load_crops([p for p, k in zip(held.paths, keep) if k], em.image_size, progress)
    probs = replace(em, temperature=1.0).predict(crops, batch_size)
    y = y[keep]
    t = fit_temperature(probs, y)
    tempered = apply_temperature(probs, t)
    info = {"temperature": t, "data": f"`{data_dir}`" + (f" with votes `{votes}`" if votes else "")
            + (f", the part held out from training ({split})" if val_split > 0 else ", all of it"),
            "target": "crowd majority (unique most-voted class)" if held.votes is not None else "folder labels",
            "images": int(keep.sum()), "flip_average": em.flip,
            "nll_before": nll(probs, y), "nll_after": nll(tempered, y),
            "ece_before": ece(probs, y), "ece_after": ece(tempered, y),
            "accuracy": float((probs.argmax(1) == y).mean()), "command": command}
    set_temperature(Path(model_path), t, info)
    return info
