"""`batchemo export`: the TFLite twin of a saved Keras model (the fast CPU path of `EmotionModel`), written only
when its outputs match Keras's."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..pipeline.model import _LitePredictor
from ..report import write_atomic
from .quiet import tensorflow_output


def export_tflite(model, path: Path, check: np.ndarray | None = None) -> None:
    """Write the TFLite twin of a Keras model to `path`; refuse if its outputs on `check` differ from Keras's."""
    with tensorflow_output():  # the converter lists the SavedModel it goes through, and logs each step, from C++
        import tensorflow as tf

        content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    if check is not None:
        diff = np.abs(_LitePredictor(content)(check) - np.asarray(model(check, training=False))).max()
        if diff > 1e-3:
            raise RuntimeError(f"TFLite export differs from the Keras model by {diff:.2e}; not written")
    write_atomic(Path(path), lambda tmp: Path(tmp).write_bytes(content))


def export_model(model_path: str | Path) -> Path:
    """Write the TFLite twin of a saved .keras model (checked against Keras) beside it."""
    from .quiet import import_keras

    keras = import_keras()

    model_path = Path(model_path)
    model = keras.saving.load_model(model_path, compile=False)
    size = int(model.input_shape[1])
    probe = np.random.default_rng(0).integers(0, 256, (8, size, size, 1)).astype(np.float32)
    export_tflite(model, model_path.with_suffix(".tflite"), check=probe)
    return model_path.with_suffix(".tflite")
