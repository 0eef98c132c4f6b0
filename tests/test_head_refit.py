"""benchmarks/head_refit.py: the softmax layer it fits by L-BFGS reaches the targets a known layer produced, its
L2 pull keeps the layer near the trained one, and held-out scoring averages a crop with its mirror."""
from __future__ import annotations

import numpy as np

from tests.conftest import benchmark


def _known_layer(n: int = 3000, d: int = 6, c: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w, b = rng.normal(size=(d, c)), rng.normal(size=c)
    hr = benchmark("head_refit")
    return hr, x, w, b, hr.softmax(x @ w + b)


def test_fit_head_recovers_the_probabilities_of_a_known_layer():
    hr, x, w_true, b_true, t = _known_layer()
    w, b = hr.fit_head(x, t, np.zeros_like(w_true), np.zeros_like(b_true), l2=0.0)
    # Weights are identified only up to a shift shared by all classes; the probabilities are what must match.
    assert np.abs(hr.softmax(x @ w + b) - t).max() < 1e-3
    start = np.abs(hr.softmax(np.zeros_like(t)) - t).max()
    assert start > 0.3  # the fit had somewhere to go


def test_l2_pull_keeps_the_layer_near_the_trained_one():
    hr, x, w_true, b_true, t = _known_layer(seed=1)
    w0 = w_true + np.random.default_rng(2).normal(scale=2.0, size=w_true.shape)
    free, _ = hr.fit_head(x, t, w0, b_true, l2=0.0)
    pulled, _ = hr.fit_head(x, t, w0, b_true, l2=10.0)
    assert np.linalg.norm(pulled - w0) < 0.2 * np.linalg.norm(free - w0)


def test_the_pulled_fit_is_a_minimum_of_cross_entropy_plus_the_l2_term():
    hr, x, w_true, b_true, t = _known_layer(seed=3)
    w0, l2 = np.zeros_like(w_true), 0.05
    w, b = hr.fit_head(x, t, w0, np.zeros_like(b_true), l2=l2)

    def objective(w_, b_):
        return -(t * np.log(hr.softmax(x @ w_ + b_))).sum(1).mean() + l2 * ((w_ - w0) ** 2).sum()

    rng, best = np.random.default_rng(4), objective(w, b)
    for _ in range(10):  # a step either way along any direction must not go downhill
        dw, db = rng.normal(scale=1e-2, size=w.shape), rng.normal(scale=1e-2, size=b.shape)
        assert min(objective(w + dw, b + db), objective(w - dw, b - db)) > best - 1e-7


def test_held_accuracy_averages_each_crop_with_its_mirror():
    hr = benchmark("head_refit")
    w, b = np.eye(2), np.zeros(2)
    f = np.array([[1.0, 0.0], [0.0, 1.0]])      # alone: class 0, class 1
    fm = np.array([[0.0, 3.0], [0.0, 3.0]])     # mirrors vote strongly for class 1
    y = np.array([1, 1])
    assert hr.held_accuracy(f, f, y, w, b) == 0.5
    assert hr.held_accuracy(f, fm, y, w, b) == 1.0
