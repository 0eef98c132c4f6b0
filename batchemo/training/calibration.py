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
    from ..report.plots import pyplot

    plt = pyplot()

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
