"""The training-time augmentation layer (batchemo/augment.py)."""
from __future__ import annotations

import numpy as np
import pytest

from batchemo.training.augment import FaceAugment


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """16 asymmetric 48x48 'faces' (a bright block left of centre, a gradient): a mirror is never the original."""
    rng = np.random.default_rng(0)
    x = np.tile(np.linspace(20, 120, 48, dtype=np.float32), (16, 48, 1))
    for i in range(16):
        r, c = rng.integers(8, 30, 2)
        x[i, r:r + 10, max(c - 12, 2):c] = 250
    return x[..., None]


def _out(layer, x, training=True) -> np.ndarray:
    return np.asarray(layer(x, training=training))


def test_identity_outside_training(crops):
    aug = FaceAugment(erase=1.0, seed=1)
    assert np.array_equal(_out(aug, crops, training=False), crops)


def test_without_warp_each_crop_is_itself_or_its_mirror(crops):
    aug = FaceAugment(rotation=0, zoom=0, shift=0, contrast=0, seed=1)
    y = _out(aug, crops)
    same = np.abs(y - crops).max(axis=(1, 2, 3)) < 1e-3
    mirrored = np.abs(y - crops[:, :, ::-1]).max(axis=(1, 2, 3)) < 1e-3
    assert np.all(same ^ mirrored)
    assert same.any() and mirrored.any()  # both happen in a batch of 16


def test_warps_stay_in_range_and_differ_per_crop_and_call(crops):
    aug = FaceAugment(seed=2)
    a, b = _out(aug, crops), _out(aug, crops)
    assert a.shape == crops.shape and a.min() >= 0 and a.max() <= 255
    assert not np.allclose(a, b)  # a new draw on every call
    assert all(np.abs(a[i] - crops[i]).mean() > 0.5 for i in range(len(crops)))
    # a small warp keeps the picture: each output is far closer to its own input than to another crop
    own = np.abs(a - crops).mean(axis=(1, 2, 3))
    other = np.abs(a - np.roll(crops, 1, axis=0)).mean(axis=(1, 2, 3))
    assert np.mean(own < other) > 0.8


def test_erasing_fills_one_rectangle_with_one_grey(crops):
    aug = FaceAugment(rotation=0, zoom=0, shift=0, contrast=0, erase=1.0, seed=3)
    y = _out(aug, crops)
    for i in range(len(crops)):
        ref = crops[i] if np.abs(y[i] - crops[i]).sum() <= np.abs(y[i] - crops[i][:, ::-1]).sum() else crops[i][:, ::-1]
        changed = np.abs(y[i] - ref)[..., 0] > 1e-3
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        assert len(rows) and len(cols)
        box = y[i][rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert np.ptp(box) < 1e-3  # the whole bounding box of the changes is one grey: a filled rectangle
        assert 0.01 <= box.size / (48 * 48) <= 0.3


def test_no_erasing_when_its_probability_is_zero(crops):
    aug = FaceAugment(rotation=0, zoom=0, shift=0, contrast=0, erase=0.0, seed=3)
    y = _out(aug, crops)
    assert all(np.allclose(y[i], crops[i]) or np.allclose(y[i], crops[i][:, ::-1]) for i in range(len(crops)))
