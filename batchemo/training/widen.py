"""Start a wider MobileNet from a trained narrower one (Net2WiderNet, Chen et al. 2016).

The only ImageNet MobileNet weights at hand are alpha 0.25; a wider network (alpha 0.5, 0.75, 1.0) would
otherwise start from scratch. Each channel of the wide network copies a channel of the narrow one, and each
consumer of a copied channel splits the original weight among the copies, so the wide network computes exactly
what the narrow one did. The splits are random (they still sum to the original weight) so the copies receive
different gradients and do not stay twins.
"""
from __future__ import annotations

import numpy as np


def _channel_map(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """For each of `new` channels, the old channel it copies: every old channel once, then random repeats."""
    if new < old:
        raise ValueError(f"cannot narrow {old} channels to {new}")
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)])


def _splits(source: np.ndarray, n_out: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Weights [len(source), n_out] that sum to 1 over the copies of each old channel, for every output."""
    s = 1.0 + noise * rng.standard_normal((len(source), n_out))
    s = np.clip(s, 0.05, None)
    totals = np.zeros((source.max() + 1, n_out))
    np.add.at(totals, source, s)
    return s / totals[source]


def widen_base(narrow, wide, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """Set the weights of Keras MobileNet `wide` from the same-architecture, narrower `narrow`, in place.
    Returns, for each output channel of `wide`, the channel of `narrow` it copies."""
    rng = np.random.default_rng(seed)
    source = np.arange(3)  # RGB input: the same three channels in both
    for layer in wide.layers:
        if not layer.weights:  # input, padding, activations
            continue
        old = narrow.get_layer(layer.name).get_weights()
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel = old[0]  # [kh, kw, in, out]
            out_map = _channel_map(kernel.shape[3], layer.kernel.shape[3], rng)
            split = _splits(source, len(out_map), rng, noise)  # [in_new, out_new]
            new = kernel[:, :, source][:, :, :, out_map] * split[None, None]
            layer.set_weights([new.astype(kernel.dtype)])
            source = out_map
        elif kind == "DepthwiseConv2D":
            layer.set_weights([old[0][:, :, source]])
        elif kind == "BatchNormalization":
            layer.set_weights([w[source] for w in old])
        else:
            raise ValueError(f"{layer.name}: cannot widen a {kind} layer")
    return source
