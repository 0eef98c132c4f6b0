"""Where `batchemo train` starts: the network of a batchemo model (the shipped one unless --init-model names
another), ImageNet weights, or nothing; and the network width (alpha) and input size that start fixes.

Resolved before any image is read, so that a start that cannot work is refused at once, in one line that says what
to pass, and the console says where the run starts instead of leaving it to the card.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from .options import FRESH_ALPHA, FRESH_SIZE, TrainOptions

KERAS_WEIGHTS = "mobilenet_{alpha}_{rows}_tf_no_top.h5"
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
IMAGENET_ALPHAS = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}  # the widths Keras publishes weights for


@dataclass(frozen=True)
class Start:
    opts: TrainOptions  # alpha, size and the starting model (or base weights) spelled out
    weights: str | None  # the .h5 file Keras's MobileNet loads (ImageNet, --base-weights PATH); else None
    pretrained: bool  # the base starts trained: a head-only phase makes sense
    line: str  # the one console line saying where training starts


def resolve_start(opts: TrainOptions) -> Start:
    """The starting point `opts` asks for, with its alpha and size filled in; ValueError / FileNotFoundError in one
    line naming what to pass where it cannot work. Resolving a resolved `opts` again gives the same options."""
    if opts.base_weights is None and opts.init_model is None:
        if opts.scale == "unit":
            # The notebook baseline's [0, 1] pixels suit no batchemo network (they all take [-1, 1]): it started
            # from ImageNet, and reproducing it still does.
            return _from_weights(replace(opts, base_weights="imagenet"))
        from ..pipeline.model import default_model_path

        shipped = default_model_path()
        if not shipped.is_file():
            raise FileNotFoundError(f"{shipped}: the shipped model, training's default start, is missing; pass "
                                    "--init-model MODEL or --base-weights imagenet|PATH|none")
        return _from_model(opts, shipped, "the shipped model")
    if opts.init_model is not None:
        return _from_model(opts, Path(opts.init_model), "the model")
    return _from_weights(opts)


def _from_model(opts: TrainOptions, model: Path, what: str) -> Start:
    """Start from the network of the batchemo model `model` (`what`: how the console names it)."""
    from ..pipeline.model import read_card

    if not model.is_file():
        raise FileNotFoundError(f"{model}: --init-model file not found")
    card = read_card(model)
    own_alpha, own_size = card.get("alpha"), card.get("size")
    if (opts.alpha is None and own_alpha is None) or (opts.size is None and own_size is None):
        raise ValueError(f"{model.with_suffix('.json')}: the card does not say the network's alpha and size; pass "
                         "--alpha and --size")
    alpha = own_alpha if opts.alpha is None else opts.alpha
    size = own_size if opts.size is None else opts.size
    if own_alpha is not None and alpha < own_alpha and not math.isclose(alpha, own_alpha):
        # Net2WiderNet copies channels into a wider network; a narrower one would have to drop what was learned.
        raise ValueError(f"--alpha {alpha:g} cannot start from {what} {shown(model)} (a MobileNet alpha "
                         f"{own_alpha:g}, which can be widened, not narrowed): leave --alpha out or pass --alpha "
                         f"{own_alpha:g} or more, or pass --base-weights imagenet|PATH|none to start elsewhere")
    from_card = [name for name, given in (("alpha", opts.alpha), ("size", opts.size)) if given is None]
    line = (f"start: the network of {what} {shown(model)} (alpha {alpha:g} at {size} px"
            + (f", widened from its alpha {own_alpha:g}" if own_alpha is not None and alpha > own_alpha else "")
            + (f"; {' and '.join(from_card)} from its card" if from_card else "") + ")")
    if opts.base_weights is not None:
        line += f"; --base-weights {opts.base_weights} not loaded: --init-model replaces the whole base"
    resolved = replace(opts, alpha=float(alpha), size=int(size), init_model=str(model))
    return Start(resolved, None, True, line)


def _from_weights(opts: TrainOptions) -> Start:
    spec = (opts.base_weights or "none").strip()
    if spec.lower() == "none":
        resolved = replace(opts, alpha=opts.alpha or FRESH_ALPHA, size=opts.size or FRESH_SIZE, base_weights="none")
        return Start(resolved, None, False, f"start: random weights (--base-weights none), alpha "
                                            f"{resolved.alpha:g} at {resolved.size} px")
    if spec.lower() == "imagenet":
        resolved = replace(opts, alpha=opts.alpha or FRESH_ALPHA, size=opts.size or FRESH_SIZE,
                           base_weights="imagenet")
        path = imagenet_weights(resolved.alpha)
        return Start(resolved, str(path), True, f"start: ImageNet MobileNet weights ({path}), alpha "
                                                f"{resolved.alpha:g} at {resolved.size} px")
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: --base-weights file not found")
    own = weights_alpha(path)
    if own is not None and opts.alpha is not None and not math.isclose(own, opts.alpha):
        raise ValueError(f"{path} holds MobileNet alpha {own:g} weights: pass --alpha {own:g} or leave --alpha out")
    resolved = replace(opts, alpha=opts.alpha or own or FRESH_ALPHA, size=opts.size or FRESH_SIZE)
    return Start(resolved, str(path), True, f"start: MobileNet weights {path}, alpha {resolved.alpha:g} at "
                                            f"{resolved.size} px")


def shown(path: str | Path) -> str:
    """A path as the console names it: relative to the working folder when it lies below it (the shipped model is
    `models/emotion.keras` inside a checkout), else as it is."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def imagenet_weights(alpha: float) -> Path:
    """Keras's ImageNet no-top file for `alpha` in its cache, downloaded there where there is internet; an error
    saying how to get it otherwise (never a silent start from scratch)."""
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(f"--alpha {alpha:g}: ImageNet MobileNet weights exist for alpha 0.25, 0.5, 0.75 and 1 only")
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    cached = cache / KERAS_WEIGHTS.format(alpha=IMAGENET_ALPHAS[alpha], rows=224)
    if cached.exists():
        return cached
    from .quiet import import_keras

    keras = import_keras()

    try:
        return Path(keras.utils.get_file(cached.name, KERAS_WEIGHTS_URL + cached.name, cache_subdir="models"))
    except Exception as e:  # noqa: BLE001 - offline, proxy, disk: whatever it was, the user needs the same advice
        raise FileNotFoundError(f"no ImageNet weights for alpha {alpha:g}: {cached} is missing and the download "
                                f"failed ({type(e).__name__}); download {KERAS_WEIGHTS_URL}{cached.name} into "
                                f"{cache}, pass --base-weights PATH to that file, or leave --base-weights out to "
                                "start from the shipped model") from None


def weights_alpha(path: Path) -> float | None:
    """The width of the MobileNet whose no-top weights `path` holds (Keras's .h5 layout: conv_pw_13 has 1024 x alpha
    output channels); None where the file is laid out otherwise (Keras then says what it makes of it)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "conv_pw_13" not in f:
                return None
            shapes: list[tuple] = []
            f["conv_pw_13"].visititems(lambda _, o: shapes.append(o.shape) if isinstance(o, h5py.Dataset) else None)
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 weights file ({str(e).splitlines()[0]})") from None
    kernels = [s for s in shapes if len(s) == 4]
    return kernels[0][-1] / 1024 if kernels else None
