"""Weight averaging: the mean of weight lists, and batch-norm statistics measured again on given crops."""
from __future__ import annotations

import numpy as np
import pytest

from batchemo.training.averaging import mean_weights, refresh_batchnorm


def _net():
    import keras
    from keras import layers

    inner_in = keras.Input((8, 8, 1))
    inner = keras.Model(inner_in, layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, name="conv")(inner_in)),
                        name="base")  # nested, like the MobileNet base inside a batchemo model
    inp = keras.Input((8, 8, 1))
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(inner(inp)))
    return keras.Model(inp, out)


def test_mean_weights_is_elementwise_and_refuses_other_shapes():
    a, b = [np.zeros((2, 2)), np.ones(3)], [np.full((2, 2), 4.0), np.full(3, 3.0)]
    m = mean_weights([a, b])
    assert np.array_equal(m[0], np.full((2, 2), 2.0)) and np.array_equal(m[1], np.full(3, 2.0))
    with pytest.raises(ValueError, match="architecture"):
        mean_weights([a, [np.zeros((2, 3)), np.ones(3)]])


@pytest.mark.parametrize("mirror", [False, True])
def test_refresh_batchnorm_measures_the_statistics_of_the_crops(mirror):
    import keras

    model = _net()
    model.trainable = False  # a frozen network is measured all the same
    bn = model.get_layer("base").get_layer("bn")
    bn.moving_mean.assign(np.full(3, 50.0, np.float32))
    crops = np.random.default_rng(3).integers(0, 256, (64, 8, 8)).astype(np.uint8)
    refresh_batchnorm(model, crops, batch_size=16, mirror=mirror)

    x = crops[..., None].astype(np.float32)
    if mirror:
        x = np.concatenate([x, x[:, :, ::-1]])
    conv = keras.Model(model.get_layer("base").input, model.get_layer("base").get_layer("conv").output)
    feats = np.asarray(conv(x)).reshape(-1, 3)
    # equal batches: the mean of the batch means is the mean over all crops; likewise the batch variances
    assert np.asarray(bn.moving_mean) == pytest.approx(feats.mean(0), rel=1e-4, abs=1e-3)
    per_batch_var = np.mean([np.asarray(conv(x[i:i + 16])).reshape(-1, 3).var(0) for i in range(0, len(x), 16)], 0)
    assert not np.allclose(per_batch_var, 1.0)
    assert np.asarray(bn.moving_variance) == pytest.approx(per_batch_var, rel=0.05)  # batches mix crops at random
    assert bn.momentum == pytest.approx(0.99)  # the layer's own momentum given back
