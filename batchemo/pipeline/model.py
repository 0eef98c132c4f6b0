"""Loading an emotion model and its card, cropping faces, and batched prediction."""
from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "emotion.keras"


def default_model_path() -> Path:
    """The shipped model: $BATCHEMO_MODEL, else models/emotion.keras of the project, else the installed copy."""
    env = os.environ.get("BATCHEMO_MODEL")
    if env:
        return Path(env)
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    installed = Path(__file__).resolve().parents[1] / "models" / "emotion.keras"
    return installed if installed.exists() else DEFAULT_MODEL


def read_card(model_path: Path) -> dict:
    card_path = Path(model_path).with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: the model card (classes, input size) is missing beside the model")
    try:
        card = json.loads(card_path.read_text())
        classes, size = card["classes"], card["input"]["image_size"]
        if not isinstance(classes, list) or not classes or int(size) < 1:
            raise ValueError("no classes, or no input size")
    except (OSError, ValueError, KeyError, TypeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{card_path}: not a readable model card ({what})") from None
    return card


def crop_faces(grey: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Grey face crops [N, size, size] uint8: area interpolation to shrink, bilinear to enlarge, as training
    resizes its images (`training.data`)."""
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
    # Average each face with its mirror image (test-time augmentation): twice the work, +1.9 points on
    # fer2013/val for the shipped model. None: as the model card says (`inference.flip_average`).
    flip: bool | None = None
    # Calibration: probabilities p become softmax(log(p) / T), after mirror averaging. None: the card's
    # `inference.temperature` (1, i.e. unchanged, where the card has none). Fitted by `batchemo calibrate`.
    temperature: float | None = None

    def __post_init__(self):
        inference = self.card.get("inference", {})
        if self.flip is None:
            self.flip = bool(inference.get("flip_average", False))
        if self.temperature is None:
            self.temperature = float(inference.get("temperature", 1.0))
        if not self.temperature > 0:
            raise ValueError(f"{self.path}: temperature must be > 0, not {self.temperature}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EmotionModel":
        """Load a model (cached per process by path and the mtimes of the model and its card: a worker or a test
        suite loads it once, and a card changed since, e.g. by `batchemo calibrate`, is read again)."""
        path = Path(path) if path else default_model_path()
        card = path.with_suffix(".json")
        key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0,
               card.stat().st_mtime_ns if card.exists() else 0)
        if key not in _CACHE:
            _CACHE[key] = cls._load(path)
        return _CACHE[key]

    @classmethod
    def _load(cls, path: Path) -> "EmotionModel":
        if not path.exists():
            raise FileNotFoundError(f"{path}: model file not found (train one with `batchemo train`, or pass "
                                    "--model)")
        card = read_card(path)
        classes, size = list(card["classes"]), int(card["input"]["image_size"])
        lite = path.with_suffix(".tflite")
        if lite.exists() and lite.stat().st_mtime_ns >= path.stat().st_mtime_ns and _lite_available():
            predictor = _LitePredictor.from_file(lite)
            it = predictor._interpreter(INVOKE_SLICE, JOB_THREADS)  # the one the jobs' full slices run on
            _check_shapes(lite, card, it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"])
            return cls(path, classes, size, card, predictor)
        try:
            import keras
        except ImportError:
            raise ImportError(f"{path}: running this model without its TFLite twin ({lite.name}, or LiteRT to run "
                              'it) needs TensorFlow: pip install "batchemo[train]"') from None
        model = keras.saving.load_model(path, compile=False)
        _check_shapes(path, card, model.input_shape, model.output_shape)
        return cls.from_keras(model, classes, size, card, path)

    @classmethod
    def from_keras(cls, model, classes: list[str], image_size: int, card: dict | None = None,
                   path: Path | None = None) -> "EmotionModel":
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # A traced graph call is several times faster than model.predict for batches of a few dozen faces.
            fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)
        else:  # e.g. teachers for distillation on a JAX GPU machine without TensorFlow
            fn = model.predict_on_batch
        return cls(Path(path) if path else Path("<in memory>"), classes, image_size, card or {}, fn)

    def predict(self, crops: np.ndarray, batch_size: int = 64, threads: int | None = None) -> np.ndarray:
        """Probabilities [N, n_classes] (float32, rows sum to 1) for grey crops [N, S, S] uint8: the network's
        softmax, averaged with the mirror image's (`flip`), then tempered (`temperature`). `threads`: the cores
        the TFLite twin may use (None: all of them); the answers are the same for any count."""
        n = len(crops)
        if n == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        x = crops.reshape(n, self.image_size, self.image_size, 1).astype(np.float32)
        if self.flip:
            x = np.concatenate([x, x[:, :, ::-1]])
        # One fixed batch shape for a traced Keras graph (no re-tracing for the short tail batch); the TFLite
        # twin pads a short slice only to a power of two (`_LitePredictor._invoke`): padding the whole batch
        # was a quarter of the model's work in the video job, whose batches are a few dozen faces.
        lite = isinstance(self._predict, _LitePredictor)
        run = partial(self._predict, threads=threads) if lite else self._predict
        out = []
        for i in range(0, len(x), batch_size):
            chunk = x[i:i + batch_size]
            pad = 0 if lite else batch_size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            out.append(np.asarray(run(chunk))[:batch_size - pad])
        p = np.concatenate(out).astype(np.float32)
        if self.flip:
            p = (p[:n] + p[n:]) / 2
        return apply_temperature(p, self.temperature)


def _check_shapes(net: Path, card: dict, input_shape, output_shape) -> None:
    """ValueError where a network and the card beside it disagree (one model's network left beside another's
    card): its probabilities would be labelled with the wrong classes."""
    n, size = len(card["classes"]), int(card["input"]["image_size"])
    if int(output_shape[-1]) != n or any(d is not None and int(d) != size for d in tuple(input_shape)[1:3]):
        raise ValueError(f"{net}: the network takes {tuple(input_shape)[1:3]} crops and gives {int(output_shape[-1])} "
                         f"classes, its card {Path(net).with_suffix('.json').name} says {size}x{size} and {n} "
                         "classes: not the same model")


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) row by row (T = 1: p renormalised; T > 1 softens, T < 1 sharpens)."""
    p = np.asarray(p, np.float64)
    if temperature != 1.0:
        z = np.log(np.maximum(p, 1e-12)) / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _interpreter_class():
    """LiteRT's interpreter (imports in 0.3 s, ~60 MB) where installed, else TensorFlow's own tf.lite."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite's deprecation notice
            return tf.lite.Interpreter


def _lite_available() -> bool:
    try:
        _interpreter_class()
        return True
    except ImportError:  # neither LiteRT nor TensorFlow (a JAX GPU machine): the Keras model runs instead
        return False


_delegate_announced = False  # TFLite has printed its XNNPACK line in this process


@contextmanager
def _native_stderr_muted():
    """File descriptor 2 sent to /dev/null for a moment. TFLite's C++ runtime writes "INFO: Created TensorFlow
    Lite XNNPACK delegate for CPU." straight to fd 2 when the first interpreter allocates its tensors, which lands
    inside the progress bar; no setting reaches that logger (TF_CPP_MIN_LOG_LEVEL does not). Only the few
    milliseconds of building an interpreter are muted; failures still raise Python exceptions."""
    if sys.stderr is not None:
        sys.stderr.flush()  # what Python has written so far goes out before fd 2 turns away
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a daemon): nothing to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# XNNPACK runs a batch as slices of this many crops: one layer's activations for 64 crops (64 x 64 x 64 x 16 floats
# at 128 px, 16 MB) are far past a core's L2 cache. Slices of 16 gave 1.13x the faces/s of 64-crop invokes on the
# 2-core CPU (median of 8 alternating rounds), with the same outputs to the bit (research/bench_lite_slice.py).
INVOKE_SLICE = 16
# Cores the jobs run the model on (`faces.classify`): face finding keeps the others busy, and a second model thread
# then cost 30 % more CPU per face for the same answers (2.8 -> 3.7 ms, on the 2-core machine of benchmarks/).
JOB_THREADS = 1


class _LitePredictor:
    """The model's TFLite twin run by XNNPACK: about 3x the faces/s of the Keras graph on a laptop CPU, same
    outputs to 1e-5 (checked when it is exported), and no TensorFlow import (seconds and hundreds of MB saved
    at start-up). Built from the flatbuffer's bytes (`from_file` reads them). Invoked in slices of at most
    `INVOKE_SLICE` crops, one interpreter per slice size; calls are serialised."""

    def __init__(self, content: bytes):
        self.content = bytes(content)
        self.interpreters: dict[tuple[int, int], object] = {}  # by (slice size, threads)
        self.lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path) -> "_LitePredictor":
        return cls(Path(path).read_bytes())

    def _interpreter(self, n: int, threads: int | None = None):
        threads = threads or os.cpu_count() or 1
        it = self.interpreters.get((n, threads))
        if it is None:
            global _delegate_announced
            # The line comes once per process, with the first interpreter: only that one is built with fd 2 muted,
            # so later ones (other batch sizes, other models) cannot swallow another thread's error messages.
            with nullcontext() if _delegate_announced else _native_stderr_muted():
                it = _interpreter_class()(model_content=self.content, num_threads=threads)
                inp = it.get_input_details()[0]
                it.resize_tensor_input(inp["index"], (n, *inp["shape"][1:]))
                it.allocate_tensors()
            _delegate_announced = True
            self.interpreters[n, threads] = it
        return it

    def __call__(self, x: np.ndarray, threads: int | None = None) -> np.ndarray:
        with self.lock:
            return np.concatenate([self._invoke(x[i:i + INVOKE_SLICE], threads)
                                   for i in range(0, len(x), INVOKE_SLICE)])

    def _invoke(self, x: np.ndarray, threads: int | None) -> np.ndarray:
        # A short slice is padded to the next power of two: at most five interpreters per thread count (1 to
        # 16), and at most half a short slice's work thrown away. A crop's output does not depend on what shares
        # its slice.
        n = len(x)
        size = 1 << (n - 1).bit_length()
        if size > n:
            x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])
        it = self._interpreter(size, threads)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])[:n].copy()
