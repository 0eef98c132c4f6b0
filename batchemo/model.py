"""Loading an emotion model and its card, cropping faces, and batched prediction."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "emotion.keras"


def default_model_path() -> Path:
    """The shipped model: $BATCHEMO_MODEL, else models/emotion.keras of the project, else the installed copy."""
    env = os.environ.get("BATCHEMO_MODEL")
    if env:
        return Path(env)
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    installed = Path(__file__).resolve().parent / "models" / "emotion.keras"
    return installed if installed.exists() else DEFAULT_MODEL


def read_card(model_path: Path) -> dict:
    card_path = Path(model_path).with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: the model card (classes, input size) is missing beside the model")
    return json.loads(card_path.read_text())


def crop_faces(grey: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Grey face crops [N, size, size] uint8, resized with area interpolation as in training."""
    out = np.empty((len(boxes), size, size), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        crop = grey[y:y + h, x:x + w]
        interp = cv2.INTER_AREA if min(crop.shape[:2]) >= size else cv2.INTER_LINEAR
        out[i] = cv2.resize(crop, (size, size), interpolation=interp)
    return out


_CACHE: dict = {}


@dataclass
class EmotionModel:
    """A Keras emotion model with its card; `predict` takes grey uint8 crops and returns probabilities."""

    path: Path
    classes: list[str]
    image_size: int
    card: dict
    _predict: object = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EmotionModel":
        """Load a model (cached per process by path and mtime: a worker or a test suite loads it once)."""
        path = Path(path) if path else default_model_path()
        key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0)
        if key not in _CACHE:
            _CACHE[key] = cls._load(path)
        return _CACHE[key]

    @classmethod
    def _load(cls, path: Path) -> "EmotionModel":
        if not path.exists():
            raise FileNotFoundError(f"{path}: model file not found (train one with `batchemo train`, or pass "
                                    "--model)")
        card = read_card(path)
        import keras
        import tensorflow as tf

        model = keras.saving.load_model(path, compile=False)
        return cls.from_keras(model, list(card["classes"]), int(card["input"]["image_size"]), card, path)

    @classmethod
    def from_keras(cls, model, classes: list[str], image_size: int, card: dict | None = None,
                   path: Path | None = None) -> "EmotionModel":
        import tensorflow as tf

        # A traced graph call is several times faster than model.predict for batches of a few dozen faces.
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return cls(Path(path) if path else Path("<in memory>"), classes, image_size, card or {}, fn)

    def predict(self, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities [N, n_classes] (float32, rows sum to 1) for grey crops [N, S, S] uint8."""
        n = len(crops)
        if n == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        x = crops.reshape(n, self.image_size, self.image_size, 1).astype(np.float32)
        out = []
        for i in range(0, n, batch_size):
            chunk = x[i:i + batch_size]
            pad = batch_size - len(chunk)
            if pad:  # one fixed batch shape: no re-tracing for the short tail batch
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            out.append(np.asarray(self._predict(chunk))[:batch_size - pad])
        p = np.concatenate(out).astype(np.float32)
        return p / p.sum(axis=1, keepdims=True)
