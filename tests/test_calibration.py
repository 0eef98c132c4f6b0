"""Calibration: ECE and NLL on hand-made cases, temperature fitting, and the card's temperature in EmotionModel."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from batchemo.pipeline.model import apply_temperature
from batchemo.training.calibration import ece, fit_temperature, nll, reliability


def _two_class(conf: float, right: bool) -> list[float]:
    return [conf, 1 - conf] if right else [1 - conf, conf]


def test_ece_on_a_hand_made_case():
    # 10 predictions at confidence 0.9, 7 of them right: |0.7 - 0.9| = 0.2
    probs = np.array([_two_class(0.9, True)] * 7 + [_two_class(0.9, False)] * 3)
    y = np.zeros(10, np.int64)
    assert ece(probs, y) == pytest.approx(0.2)
    # two bins, half the predictions each: 0.95 all right (gap 0.05), 0.55 half right (gap 0.05) -> 0.05
    probs = np.array([_two_class(0.95, True)] * 4 + [_two_class(0.55, True)] * 2 + [_two_class(0.55, False)] * 2)
    assert ece(probs, np.zeros(8, np.int64)) == pytest.approx(0.05)
    # perfectly calibrated: confidence 0.6, right 3 times in 5
    probs = np.array([_two_class(0.6, True)] * 3 + [_two_class(0.6, False)] * 2)
    assert ece(probs, np.zeros(5, np.int64)) == pytest.approx(0.0, abs=1e-12)


def test_accuracy_interval_on_hand_made_cases():
    from batchemo.training.evaluate import accuracy_interval

    assert accuracy_interval(8, 10) == pytest.approx([0.4902, 0.9433], abs=1e-4)  # Wilson, z = 1.96
    for correct, n in ((8, 10), (2957, 3439), (1, 50)):  # 2957 of 3439: the card's crowd-majority evaluation
        lo, hi = accuracy_interval(correct, n)
        # Wilson's interval by its definition: the accuracies at which the observed one is z = 1.96 of their own
        # standard errors away (a Wald interval, p +- 1.96 of p's error, is 0.06-0.4 z off here, and below 0 at 1/50)
        p = correct / n
        assert lo < p < hi
        assert (p - lo) / math.sqrt(lo * (1 - lo) / n) == pytest.approx(1.96, abs=1e-9)
        assert (hi - p) / math.sqrt(hi * (1 - hi) / n) == pytest.approx(1.96, abs=1e-9)
    assert accuracy_interval(10, 10)[1] == 1.0 and accuracy_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in accuracy_interval(0, 0))
    from batchemo.training.card import interval_text

    assert interval_text([0.8481, 0.8712]) == " (95 % CI 84.8-87.1)"
    assert interval_text(accuracy_interval(0, 0)) == "" and interval_text(None) == ""  # no images; older entries


def test_reliability_bins_are_fifteen_equal_widths():
    probs = np.array([[0.05, 0.95], [1.0, 0.0], [0.5, 0.5]])
    r = reliability(probs, np.array([1, 0, 0]))
    assert len(r["count"]) == 15 and r["count"].sum() == 3
    assert r["count"][14] == 2 and r["count"][7] == 1  # 0.95 and 1.0 in the last bin (14/15, 1]; 0.5 in (7/15, 8/15]


def test_nll_on_a_hand_made_case():
    probs = np.array([[0.5, 0.5, 0.0], [0.25, 0.7, 0.05]])
    assert nll(probs, np.array([0, 0])) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert nll(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(1e-12))  # floored, finite


def test_temperature_is_invertible_and_one_changes_nothing():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], np.float32)
    assert np.allclose(apply_temperature(p, 1.0), p)
    hot = apply_temperature(p, 2.0)
    assert np.allclose(hot.sum(1), 1) and (hot.max(1) < p.max(1)).all()  # softer
    assert np.allclose(hot[0], np.sqrt(p[0]) / np.sqrt(p[0]).sum())  # softmax(log p / 2) = sqrt(p), renormalised
    assert np.allclose(apply_temperature(hot, 0.5), p, atol=1e-6)


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20000, 5))
    p_true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (p_true.cumsum(1) > rng.random((len(p_true), 1))).argmax(1)  # labels drawn from the true probabilities
    model = apply_temperature(p_true, 1 / true_t)  # miscalibrated by 1 / true_t
    t = fit_temperature(model, y)
    assert t == pytest.approx(true_t, rel=0.05)
    assert ece(apply_temperature(model, t), y) < 0.02 < ece(model, y)
    assert nll(apply_temperature(model, t), y) < nll(model, y)


@pytest.fixture(scope="module")
def tempered_model(tmp_path_factory):
    """An untrained tiny network saved with its TFLite twin and a card asking for temperature 0.25."""
    from batchemo.training.export import export_model
    from batchemo.training.train import TrainOptions, build_model

    path = tmp_path_factory.mktemp("t") / "tiny.keras"
    opts = TrainOptions(alpha=0.25, size=32, base_weights="none")
    model = build_model(3, opts, None)
    model.get_layer("emotion").bias.assign(np.array([1.0, -0.5, 0.2], np.float32))  # not uniform untrained
    model.save(path)
    export_model(path)
    card = {"classes": ["angry", "happy", "sad"], "input": {"image_size": 48},
            "inference": {"flip_average": True, "temperature": 0.25}}
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def test_emotion_model_applies_the_cards_temperature_on_both_paths(tempered_model, monkeypatch):
    import batchemo.pipeline.model as M

    crops = np.random.default_rng(3).integers(0, 256, (6, 48, 48)).astype(np.uint8)
    lite = M.EmotionModel._load(tempered_model)
    assert type(lite._predict).__name__ == "_LitePredictor" and lite.temperature == 0.25
    raw = replace(lite, temperature=1.0).predict(crops)
    calibrated = lite.predict(crops)
    assert np.abs(calibrated - raw).max() > 1e-3  # the temperature does something
    assert np.allclose(calibrated, apply_temperature(raw, 0.25), atol=1e-6)

    monkeypatch.setattr(M, "_interpreter_class", lambda: (_ for _ in ()).throw(ImportError("no TFLite")))
    keras_path = M.EmotionModel._load(tempered_model)
    assert type(keras_path._predict).__name__ != "_LitePredictor" and keras_path.temperature == 0.25
    assert np.allclose(keras_path.predict(crops), calibrated, atol=1e-3)


def test_a_card_without_temperature_means_one(tempered_model, tmp_path):
    import batchemo.pipeline.model as M

    em = M.EmotionModel(tmp_path / "x.keras", ["a", "b"], 48, {"inference": {}}, lambda x: np.full((len(x), 2), 0.5))
    assert em.temperature == 1.0 and em.flip is False
    with pytest.raises(ValueError, match="temperature"):
        M.EmotionModel(tmp_path / "x.keras", ["a", "b"], 48, {"inference": {"temperature": 0}}, None)


def test_pipeline_model_imports_no_training_code_and_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, batchemo.pipeline.model; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
            "or m.startswith('batchemo.training')]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
