"""The speed work of issue 38 changed how much is computed, never what: these check the answers stay the same."""
from __future__ import annotations

import numpy as np

from batchemo.pipeline.model import _LitePredictor
from .conftest import need


def _crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_a_face_gets_the_same_probabilities_alone_or_in_any_batch(model):
    """The TFLite twin pads a short slice to a power of two instead of the whole batch: each face's answer must not
    depend on how many faces share its call."""
    need(isinstance(model._predict, _LitePredictor), "the shipped model runs without its TFLite twin here (LiteRT, "
         "a dependency on Linux and macOS, is missing)")
    crops = _crops(37)
    together = model.predict(crops, batch_size=64)
    for size in (1, 3, 17):
        apart = np.concatenate([model.predict(crops[i:i + size], batch_size=64) for i in range(0, 37, size)])
        np.testing.assert_allclose(apart, together, atol=1e-6)
    assert set(model._predict.interpreters) <= {1, 2, 4, 8, 16}
