"""A wider MobileNet started from a narrower one computes exactly what the narrow one did (Net2WiderNet)."""
from __future__ import annotations

import numpy as np
import pytest

from batchemo.training.widen import _channel_map, widen_base


def _mobilenet(alpha: float, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    m = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=alpha, include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in m.layers:  # non-trivial batch-norm statistics, so a wrong channel mapping shows
        if type(layer).__name__ == "BatchNormalization":
            g, b, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return m


@pytest.mark.parametrize("alpha", [0.5, 0.75])
def test_widened_mobilenet_computes_what_the_narrow_one_did(alpha):
    narrow, wide = _mobilenet(0.25, 0), _mobilenet(alpha, 1)
    x = np.random.default_rng(2).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    source = widen_base(narrow, wide, seed=3)
    n_out, w_out = np.asarray(narrow(x)), np.asarray(wide(x))
    assert w_out.shape[-1] == int(256 * alpha / 0.25) and len(source) == w_out.shape[-1]
    assert sorted(set(source)) == list(range(n_out.shape[-1]))  # every narrow channel is kept
    assert np.abs(n_out).max() > 0.1  # the comparison is not between two zero maps
    assert np.allclose(w_out, n_out[..., source], atol=1e-4)
    # The copies are not twins: consumers split each weight differently among them.
    pw = wide.get_layer("conv_pw_1").get_weights()[0][0, 0]  # [inputs, outputs]; inputs are copied channels
    assert not any(np.allclose(pw[i], pw[j]) for i in range(len(pw)) for j in range(i))


def test_widening_refuses_to_narrow():
    with pytest.raises(ValueError, match="cannot narrow"):
        _channel_map(16, 8, np.random.default_rng(0))
