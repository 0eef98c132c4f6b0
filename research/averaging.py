"""Networks made by averaging weights (a model soup, stochastic weight averaging), and the batch-norm statistics
such a network needs of its own."""
from __future__ import annotations

import numpy as np


def mean_weights(weight_lists: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of several `get_weights()` lists of one architecture."""
    if any([w.shape for w in ws] != [w.shape for w in weight_lists[0]] for ws in weight_lists):
        raise ValueError("the models do not share one architecture")
    return [np.mean(ws, axis=0) for ws in zip(*weight_lists)]


def refresh_batchnorm(model, crops: np.ndarray, batch_size: int = 128, mirror: bool = True) -> None:
    """Measure every batch-norm layer's moving statistics again: the average of its batch statistics over `crops`
    (N, H, W grey uint8 values; with `mirror`, their mirror images too), each layer seeing its input as the network
    in training mode gives it, as PyTorch's swa_utils.update_bn does.

    The mean of several networks' moving statistics is not the statistics of the mean network, and a network
    trained on augmented crops measured its statistics on those, not on the clean crops it will be given."""
    import keras

    for layer in model.layers:  # a frozen batch-norm layer normalises with its moving statistics whatever is asked
        layer.trainable = True
    bns = [l for l in _all_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.moving_mean.assign(np.zeros(l.moving_mean.shape, np.float32))
        l.moving_variance.assign(np.ones(l.moving_variance.shape, np.float32))
    x = crops[..., None].astype(np.float32)
    if mirror:
        x = np.concatenate([x, x[:, :, ::-1]])
    order = np.random.default_rng(0).permutation(len(x))  # batches that mix images and mirrors, as in training
    try:
        for k, start in enumerate(range(0, len(x), batch_size)):
            # Keras updates moving = m * moving + (1 - m) * batch; m = k / (k + 1) makes it the running mean.
            for l in bns:
                l.momentum = k / (k + 1)
            model(x[order[start:start + batch_size]], training=True)
    finally:
        for l, m in zip(bns, saved):
            l.momentum = m


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out
