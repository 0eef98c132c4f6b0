"""The training recipe's options (light to import: the CLI reads their defaults at start-up)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..pipeline.detect import Range, check_ranges

# One source for what is refused and what `--help` shows. MobileNet refuses inputs under 32 px; NumPy's and Keras's
# seeds are non-negative.
TRAIN_RANGES = {"alpha": Range(0, strict=True), "size": Range(32), "image_size": Range(1), "epochs": Range(0),
                "head_epochs": Range(0), "batch_size": Range(1), "lr": Range(0, strict=True),
                "fine_tune_lr": Range(0, strict=True), "class_weight_power": Range(0), "patience": Range(0),
                "erase": Range(0, high=1), "label_smoothing": Range(0, high=1), "distill": Range(0, high=1),
                "seed": Range(0), "split_seed": Range(0)}


# The network of a run that starts from ImageNet weights or from scratch, unless --alpha and --size say otherwise.
FRESH_ALPHA, FRESH_SIZE = 0.25, 96


@dataclass
class TrainOptions:
    # Where training starts: by default the base of the shipped model (a network that already reads faces; a lab's
    # few hundred images are too few to learn that from ImageNet or from scratch), with the width and input size of
    # its card. `training.start.resolve_start` spells these out before anything trains.
    alpha: float | None = None  # MobileNet width: the starting model's (FRESH_ALPHA from ImageNet or scratch)
    size: int | None = None  # network input size; crops are resized inside the model
    image_size: int = 48  # crop size the saved model takes (FER2013's native 48 px)
    epochs: int = 40
    head_epochs: int = 1  # epochs with the pretrained base frozen (skipped when training from scratch)
    batch_size: int = 64
    lr: float = 2e-3
    fine_tune_lr: float | None = None  # default lr / 2 when a pretrained base is fine-tuned
    seed: int = 1
    # The held-out slice's seed (default: `seed`): other training seeds, the same slice to compare them on.
    split_seed: int | None = None
    base_weights: str | None = None  # PATH, "imagenet" (Keras cache) or "none"; None: start from a batchemo model
    init_model: str | None = None  # the batchemo model whose base starts training (None: the shipped one)
    class_weight_power: float = 0.5
    patience: int = 8
    dropout: float = 0.3
    augment: bool = True
    erase: float = 0.0  # probability of random erasing per training crop (with --augment)
    label_smoothing: float = 0.0
    flip_average: bool = True  # the saved card asks predictions to average each face with its mirror image
    # Knowledge distillation: the mean predictions of these batchemo models (mirror-averaged as each card says,
    # without its temperature) become the training targets, mixed with the labels as
    # distill * teachers + (1 - distill) * label. A slow ensemble taught to one fast model.
    teachers: list[str] = field(default_factory=list)
    distill: float = 0.7
    # Only to reproduce the original notebook's flawed baseline: pixels to [0, 1] ("unit") instead of
    # MobileNet's [-1, 1], and a base that is never fine-tuned.
    scale: str = "mobilenet"
    freeze_base: bool = False

    def __post_init__(self):  # refused before any data is read, from the CLI or from Python
        check_ranges(self, TRAIN_RANGES)
        head_only = self.head_epochs > 0 and not self.freeze_base and (self.base_weights != "none" or self.init_model)
        if self.epochs == 0 and not head_only:
            raise ValueError("--epochs 0 trains nothing: the head-only phase (--head-epochs) runs only on a "
                             "pretrained base (--base-weights or --init-model)")


def hold_out_seed(options: dict) -> int:
    """The seed of the slice `batchemo train --val-split` held out, from training options as recorded (a card's,
    a resume state's): `split_seed`, else `seed`."""
    split = options.get("split_seed")
    return int(options.get("seed", 1) if split is None else split)


def comparable_options(options: dict) -> dict:
    """Recorded training options with the held-out seed spelled out, so a record written before --split-seed
    existed, or one that left the slice to --seed, equals one that names the same slice."""
    return {**options, "split_seed": hold_out_seed(options)}
