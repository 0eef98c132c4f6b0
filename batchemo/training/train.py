"""`batchemo train`: fine-tune (or train from scratch) a Keras MobileNet on labelled face folders.

The saved model takes plain grey uint8-valued crops of `image_size` pixels (the card says which) and does its
own scaling (MobileNet's [-1, 1]), resizing to the network size and grey-to-RGB inside, so nobody can feed it
the wrong scale.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..knobs import setting_changes
from ..report import write_json
from . import data as D
from .card import write_card
from .export import export_model
from .labels import canonical
from .options import TrainOptions, comparable_options, hold_out_seed
from .start import Start, resolve_start


@dataclass
class FitResult:
    model: object
    epochs_run: int
    best_val_accuracy: float
    best_val_loss: float
    history: list[dict] = field(default_factory=list)
    base: str = ""
    seconds: float = 0.0
    options: TrainOptions | None = None  # as trained: the starting point, alpha and size spelled out


def build_model(n_classes: int, opts: TrainOptions, weights: str | None):
    import keras
    from keras import layers

    inp = keras.Input((opts.image_size, opts.image_size, 1), name="grey_uint8")
    if opts.scale == "unit":
        x = layers.Rescaling(1 / 255.0, name="unit_scale")(inp)
    else:
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="mobilenet_preprocess")(inp)
    if opts.size != opts.image_size:
        x = layers.Resizing(opts.size, opts.size, interpolation="bilinear", name="to_network_size")(x)
    x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    try:
        base = keras.applications.MobileNet(input_shape=(opts.size, opts.size, 3), alpha=opts.alpha,
                                            include_top=False, weights=weights, name="base")
    except ValueError as e:  # weights for another width, or a file of something else
        if weights is None:
            raise
        raise ValueError(f"{weights}: cannot load as MobileNet alpha {opts.alpha:g} weights "
                         f"({str(e).splitlines()[0]})") from None
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(opts.dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inp, out, name="batchemo_emotion")


def trainer_of(model, opts: TrainOptions):
    """What `fit` compiles and trains: `model` behind the training-only FaceAugment layer (with --augment), so the
    crops are warped inside the compiled step (on the GPU where there is one). `model` shares its weights and is
    never compiled itself, so the saved file holds the network alone, without optimizer state."""
    import keras

    from .augment import FaceAugment

    inp = keras.Input(model.input_shape[1:], name="crops")
    x = FaceAugment(erase=opts.erase, seed=opts.seed, name="augment")(inp) if opts.augment else inp
    return keras.Model(inp, model(x), name="trainer")


def teacher_targets(files: D.Labelled, teachers: list[str], batch_size: int = 256) -> np.ndarray:
    """Mean class probabilities [N, len(files.classes)] of the teacher models on `files`, in `files.classes`
    order (matched through the class aliases): each network's own output (mirror-averaged as its card says),
    without the card's temperature."""
    from ..pipeline.model import EmotionModel

    total = np.zeros((len(files.paths), len(files.classes)), np.float32)
    crops: dict[int, np.ndarray] = {}  # decoded once per crop size, shared by the teachers that take it
    for path in teachers:
        # A vote-trained network's output estimates the vote shares, the scale of the labels it is mixed with;
        # its fitted temperature (< 1 there) sharpens towards the majority, for reporting confidence.
        teacher = replace(EmotionModel.load(path), temperature=1.0)
        missing = [c for c in files.classes if canonical(c) not in teacher.classes]
        if missing:
            raise ValueError(f"{path}: the teacher has no class {missing}")
        order = [teacher.classes.index(canonical(c)) for c in files.classes]
        size = teacher.image_size
        if size not in crops:
            crops[size] = np.stack([D.read_grey(p, size) for p in files.paths])
        total += teacher.predict(crops[size], batch_size)[:, order]
    return total / len(teachers)  # each teacher's rows sum to 1, so their mean's do


def network_checkpoint(network, *args, **kwargs):
    """Keras's ModelCheckpoint, saving `network` (the model without its training-only augmentation wrapper)."""
    import keras

    class Checkpoint(keras.callbacks.ModelCheckpoint):
        def set_model(self, _trainer):
            super().set_model(network)

    return Checkpoint(*args, **kwargs)


class _EpochLine:
    """A one-line progress report per epoch (Keras's own bars are unreadable in logs)."""

    def __init__(self, phase: str, total: int):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                lr = float(np.asarray(self.model.optimizer.learning_rate))
                nan = float("nan")
                print(f"[{phase}] epoch {epoch + 1}/{total}  loss {logs.get('loss', nan):.4f}  "
                      f"acc {logs.get('accuracy', nan):.4f}  val_loss {logs.get('val_loss', nan):.4f}  "
                      f"val_acc {logs.get('val_accuracy', nan):.4f}  lr {lr:.2e}  "
                      f"{time.time() - outer.t0:.0f}s", flush=True)

        self.callback = CB()
        self.t0 = time.time()


def init_model(n_classes: int, start: Start):
    """(network, description of its base weights). An --init-model's base replaces the base weights (copied, or
    widened when --alpha is wider than its own)."""
    import keras

    opts = start.opts
    model = build_model(n_classes, opts, start.weights)
    if not opts.init_model:
        return model, ("none (trained from scratch)" if start.weights is None
                       else f"ImageNet MobileNet alpha {opts.alpha:g} ({Path(start.weights).name})"
                       if opts.base_weights == "imagenet" else f"MobileNet alpha {opts.alpha:g} weights "
                                                              f"({Path(start.weights).name})")
    donor = keras.saving.load_model(opts.init_model, compile=False).get_layer("base")
    base = model.get_layer("base")
    if donor.output.shape[-1] == base.output.shape[-1]:
        base.set_weights(donor.get_weights())
        return model, f"base of {Path(opts.init_model).name}"
    from .widen import widen_base

    widen_base(donor, base, seed=opts.seed)
    return model, (f"base of {Path(opts.init_model).name} widened from {donor.output.shape[-1]} to "
                   f"{base.output.shape[-1]} channels (Net2WiderNet)")


def training_targets(train: D.Labelled, val: D.Labelled, opts: TrainOptions):
    """(train targets, val targets, loss, accuracy metric class): integer labels with sparse crossentropy, or soft
    targets [N, C] (crowd vote shares, label smoothing, teachers) with categorical crossentropy."""
    import keras

    if not (opts.teachers or opts.label_smoothing > 0 or train.votes is not None):
        return None, None, keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy
    # Soft targets: crowd vote shares (with votes), else one-hot labels.
    train_y, val_y = train.targets(), val.targets()
    if opts.teachers:
        # Teacher targets are computed once on the unaugmented images; they are mirror-averaged, so they
        # stay right for flipped crops, and near enough for the small shifts and rotations.
        train_y = opts.distill * teacher_targets(train, opts.teachers) + (1 - opts.distill) * train_y
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=opts.label_smoothing)
    return train_y, val_y, loss, keras.metrics.CategoricalAccuracy


def datasets(train: D.Labelled, val: D.Labelled, opts: TrainOptions, train_y=None, val_y=None):
    """(training batches, validation batches, steps per execution) for the running Keras backend."""
    import keras

    val_batch = max(opts.batch_size, 256)
    if keras.backend.backend() == "tensorflow":
        return (D.image_dataset(train, opts.image_size, opts.batch_size, shuffle=True, seed=opts.seed,
                                targets=train_y),
                D.image_dataset(val, opts.image_size, val_batch, shuffle=False, seed=opts.seed, targets=val_y), 1)
    # KERAS_BACKEND=jax (or torch) trains on a GPU without TensorFlow; the saved .keras is the same format.
    # A small network's step is short: Keras then runs callbacks and reads back metrics once per 16 steps
    # instead of after every step.
    return (D.array_batches(train, opts.image_size, opts.batch_size, shuffle=True, seed=opts.seed, targets=train_y),
            D.array_batches(val, opts.image_size, val_batch, shuffle=False, seed=opts.seed, targets=val_y), 16)


def data_fingerprint(files: D.Labelled) -> str:
    """What a run trains or selects on, independent of the folder's spelling (each file as <class folder>/<name>,
    its label and votes): another DATA_DIR, --val-split, --group-by, --votes or --val-dir changes it."""
    h = hashlib.sha1()
    votes = files.votes if files.votes is not None else [None] * len(files.paths)
    for path, label, v in zip(files.paths, files.labels, votes):
        row = "/".join(Path(path).parts[-2:]) + f"\t{int(label)}\t" + ("" if v is None else ",".join(map(str, v)))
        h.update(row.encode() + b"\n")
    return h.hexdigest()[:16]


def load_state(work: Path, opts: TrainOptions, data: dict | None = None) -> dict:
    """The resume state of an interrupted run in `work` (a fresh one if none); other options, or other training
    or validation images (`data`: their fingerprints), are an error. A state saved before fingerprints were
    recorded is resumed on the options alone."""
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"best": -1.0, "history": []}
    if data is not None and state.get("data", data) != data:
        # The best checkpoint and its threshold were measured on other validation images, part of which may now
        # be training images.
        raise ValueError(f"{work} holds an interrupted run on other images ("
                         + ", ".join(k for k in data if state["data"].get(k) != data[k])
                         + " differ: another DATA_DIR, --val-split, --group-by, --votes or --val-dir); re-run with "
                         "the same data to resume it, or delete that folder to start over")
    if data is not None:
        state["data"] = data
    options = json.loads(json.dumps(asdict(opts)))
    new = comparable_options(options)
    # An option the saved state predates takes today's value: a run interrupted before it existed resumes.
    changed = setting_changes(comparable_options(state.get("options", options)), new, defaults=new)
    if changed:
        # Resuming with other options would mix two runs in one model and one card.
        raise ValueError(f"{work} holds an interrupted run with other options ({', '.join(changed)}); re-run with "
                         "the same options to resume it, or delete that folder to start over")
    state["options"] = options
    return state


def plan_phases(opts: TrainOptions, pretrained: bool) -> list[tuple[str, int, float, bool]]:
    """(name, epochs, learning rate, base trainable) of each training phase."""
    if opts.freeze_base:
        return [("head", opts.epochs, opts.lr, False)]
    phases = []
    if pretrained and opts.head_epochs > 0:
        phases.append(("head", opts.head_epochs, opts.lr, False))
    ft_lr = opts.fine_tune_lr or (opts.lr / 2 if pretrained else opts.lr)
    phases.append(("fine-tune" if pretrained else "scratch", opts.epochs, ft_lr, True))
    return phases


def _state_keeper(state: dict, state_path: Path, phase: str):
    """A callback that records each epoch in the resume state (written atomically)."""
    import keras

    class Keep(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.time()

        def on_epoch_end(self, epoch, logs=None):
            # Training time summed over epochs survives restarts (a resumed run counts every epoch once).
            state["seconds"] = state.get("seconds", 0.0) + time.time() - self.t
            logs = {k: float(v) for k, v in (logs or {}).items()}
            state["best"] = max(state["best"], logs.get("val_accuracy", -1))
            state["history"].append({"phase": phase, "epoch": epoch + 1, **logs})
            state[f"{phase}_epochs"] = epoch + 1
            write_json(state, state_path)

    return Keep()


def resumable_early_stopping(patience: int, val_accuracy: list[float]):
    """Keras's EarlyStopping on val_accuracy, its count resumed: Keras starts `wait` and `best` afresh when fit()
    begins, so a run resumed after N epochs without a better one would wait `patience` more epochs than the run
    left alone, and end with another model. The phase's recorded epochs (`val_accuracy`) are replayed first."""
    import keras

    class Resumed(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            for v in val_accuracy:  # as on_epoch_end counts them, with min_delta 0 and no baseline
                self.wait += 1
                if self.best is None or v > self.best:
                    self.best, self.wait = v, 0

    return Resumed(monitor="val_accuracy", mode="max", patience=patience)


def run_phase(model, trainer, phase: tuple, train_ds, val_ds, *, n_train: int, opts: TrainOptions, loss, accuracy,
              steps_per_execution: int, work: Path, state: dict, class_weight, verbose: bool) -> int:
    """Train one phase (resumably); returns the epochs it ran."""
    import keras

    name, epochs, lr, base_trainable = phase
    done_marker = work / f"{name}.done.weights.h5"
    if done_marker.exists():
        model.load_weights(done_marker)
        return state.get(f"{name}_epochs", epochs)
    model.get_layer("base").trainable = base_trainable
    steps = epochs * int(np.ceil(n_train / opts.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(steps, 1), alpha=0.02)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=[accuracy(name="accuracy")],
                    steps_per_execution=steps_per_execution)
    # Best-so-far survives a restart: the checkpoint only overwrites when val accuracy beats it.
    ckpt = network_checkpoint(model, str(work / "best.keras"), monitor="val_accuracy", mode="max",
                              save_best_only=True, save_weights_only=False,
                              initial_value_threshold=state["best"] if state["best"] >= 0 else None)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work / f"backup-{name}")),
        ckpt,
        resumable_early_stopping(opts.patience, [h["val_accuracy"] for h in state["history"]
                                                 if h.get("phase") == name and "val_accuracy" in h]),
        _state_keeper(state, work / "state.json", name),
    ]
    if verbose:
        callbacks.append(_EpochLine(name, epochs).callback)
    trainer.fit(train_ds, validation_data=val_ds, epochs=epochs, class_weight=class_weight, verbose=0,
                shuffle=False, callbacks=callbacks)
    model.save_weights(done_marker)
    return state.get(f"{name}_epochs", epochs)


def fit(train: D.Labelled, val: D.Labelled, opts: TrainOptions, work_dir: Path | None = None,
        verbose: bool = True) -> FitResult:
    """Train on `train`, select on `val`; resumable through `work_dir` (re-run the same call to resume)."""
    from .quiet import import_keras

    keras = import_keras()

    t0 = time.time()
    start = resolve_start(opts)
    opts = start.opts
    keras.utils.set_random_seed(opts.seed)
    n = len(train.classes)
    model, base_desc = init_model(n, start)
    train_y, val_y, loss, accuracy = training_targets(train, val, opts)
    trainer = trainer_of(model, opts)
    train_ds, val_ds, steps_per_execution = datasets(train, val, opts, train_y, val_y)
    cw = D.class_weights(train.labels, n, opts.class_weight_power) if opts.class_weight_power > 0 else None

    work = Path(work_dir) if work_dir else Path(os.environ.get("TMPDIR", "/tmp")) / f"batchemo-train-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    state = load_state(work, opts, {"train": data_fingerprint(train), "val": data_fingerprint(val)})
    epochs_run = 0
    for phase in plan_phases(opts, start.pretrained):
        epochs_run += run_phase(model, trainer, phase, train_ds, val_ds, n_train=len(train.paths), opts=opts, loss=loss,
                                accuracy=accuracy, steps_per_execution=steps_per_execution, work=work, state=state,
                                class_weight=cw, verbose=verbose)

    best_path = work / "best.keras"  # the whole model without the augmentation, usable while training goes on
    if best_path.exists():
        model.set_weights(keras.saving.load_model(best_path, compile=False).get_weights())
    model.get_layer("base").trainable = True
    trainer.compile(loss=loss, metrics=[accuracy(name="accuracy")])
    val_loss, val_acc = trainer.evaluate(val_ds, verbose=0)
    return FitResult(model, epochs_run, float(val_acc), float(val_loss), state["history"], base_desc,
                     state.get("seconds", time.time() - t0), opts)


def train_folder(data_dir: str | Path, out: str | Path, opts: TrainOptions, *, val_dir: str | Path | None = None,
                 val_split: float = 0.1, group_by: str | None = None, command: str = "",
                 verbose: bool = True, votes: str | Path | None = None,
                 val_votes: str | Path | None = None, start: Start | None = None) -> dict:
    """Train on DATA_DIR and save OUT (.keras) with its model card; returns the card. With `votes` (a crowd votes
    CSV, see `votes.py`) the images it lists under DATA_DIR are trained towards their vote distributions. `start`:
    `resolve_start(opts)` where the caller already has it (its console line is the one printed)."""
    out = Path(out)
    if out.suffix != ".keras":
        raise ValueError(f"{out}: the model file must end in .keras")
    if out.is_dir() or any(p.exists() and not p.is_dir() for p in out.parents):
        raise ValueError(f"{out}: cannot write the model there (it is a folder, or a file stands in its path)")
    start = start or resolve_start(opts)  # before the images are read: a start that cannot work is refused at once
    opts = start.opts
    train, val, split_desc = split_files(data_dir, opts, val_dir, val_split, group_by, votes, val_votes, verbose)
    if verbose:
        print(start.line, flush=True)
        print(f"train: {len(train.paths)} images {train.counts()}\nval:   {len(val.paths)} images {val.counts()}",
              flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(out.name + ".work")
    res = fit(train, val, opts, work_dir=work, verbose=verbose)
    return save_trained(res, out, opts, data_dir=data_dir, val_dir=val_dir, train=train, val=val,
                        split_desc=split_desc, command=command, votes=votes, val_votes=val_votes)


def split_files(data_dir, opts: TrainOptions, val_dir=None, val_split: float = 0.1, group_by: str | None = None,
                votes=None, val_votes=None, verbose: bool = False) -> tuple[D.Labelled, D.Labelled, str]:
    """(train, val, how they were split) as `batchemo train` takes them; `batchemo calibrate` repeats the split to
    find the held-out part again."""
    if val_votes and not val_dir:
        raise ValueError("--val-votes needs --val-dir (the folder its files lie under)")
    if val_dir and opts.split_seed is not None:
        raise ValueError("--split-seed chooses the slice --val-split holds out; with --val-dir nothing is held out")
    if votes:
        files = D.labelled_from_votes(votes, data_dir, verbose=verbose)
    else:
        files = D.list_labelled(data_dir)
    classes = [canonical(c) for c in files.classes]
    if val_dir and val_votes:
        val = D.labelled_from_votes(val_votes, val_dir, classes, verbose=verbose)
        return files, val, f"separate folder `{val_dir}` with crowd votes `{val_votes}`"
    if val_dir:
        val = D.list_labelled(val_dir)
        if [canonical(c) for c in val.classes] != classes:
            # Re-list val in the training order, through aliases, so label i means the same class on both sides.
            by_canon = {canonical(c): c for c in val.classes}
            missing = [c for c in classes if c not in by_canon]
            if missing:
                raise ValueError(f"{val_dir}: lacks classes {missing} that {data_dir} has")
            val = D.list_labelled(val_dir, [by_canon[c] for c in classes])
        train = files
        split_desc = f"separate folder `{val_dir}`"
    else:
        if not 0 < val_split < 1:
            raise ValueError(f"--val-split must be more than 0 and less than 1 (got {val_split:g}), or give --val-dir")
        groups = D.group_keys(files.paths, group_by)
        split_seed = hold_out_seed(asdict(opts))
        tr, va = D.group_split(groups, val_split, split_seed)
        train, val = files.subset(tr), files.subset(va)
        if not len(train.paths) or not len(val.paths):
            raise ValueError(f"{data_dir}: --val-split {val_split:g} of {len(files.paths)} images leaves "
                             f"{len(train.paths)} to train on and {len(val.paths)} to validate on; both need some")
        split_desc = (f"{val_split:.0%} of groups held out by --group-by {group_by!r} (no group on both sides)"
                      if group_by else f"{val_split:.0%} of images held out at random (seed {split_seed})")
    return train, val, split_desc


def save_trained(res: FitResult, out: Path, opts: TrainOptions, *, data_dir, val_dir, train: D.Labelled,
                 val: D.Labelled, split_desc: str, command: str, votes=None, val_votes=None) -> dict:
    """Write the trained model, its TFLite twin and its card; remove the work folder."""
    classes = [canonical(c) for c in train.classes]
    work = out.with_name(out.name + ".work")
    # The network and its twin are made under temporary names and renamed in place together, the card written
    # right after: an earlier model's files are replaced in milliseconds, not across the seconds an export takes
    # (and a network beside another model's card is refused when loaded, by its class count).
    tmp = out.with_name(out.stem + ".tmp.keras")  # not write_atomic's name: Keras insists on the .keras suffix
    res.model.save(tmp)
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        twin = export_model(tmp)
    else:
        twin = None
        # The TFLite converter needs the TensorFlow backend (a JAX GPU machine may not even have TensorFlow).
        print(f"note: no TFLite twin written under the {backend} backend; run `batchemo export {out}` with "
              "TensorFlow installed", file=sys.stderr)
    os.replace(tmp, out)
    if twin is not None:
        os.replace(twin, out.with_suffix(".tflite"))  # renamed after the network: its mtime stays the newer
    else:
        out.with_suffix(".tflite").unlink(missing_ok=True)  # another network's twin
    card = {
        "format": "batchemo-model-card/1",
        "model_file": out.name,
        "classes": classes,
        "input": {"image_size": opts.image_size, "channels": 1, "dtype": "uint8 values as float32",
                  "preprocessing": "grey crop resized with area interpolation; the model itself scales to "
                                   + ("[0, 1]" if opts.scale == "unit" else "[-1, 1] (MobileNet preprocess_input)")
                                   + " and resizes to the network size"},
        "inference": {"flip_average": opts.flip_average},
        "size": opts.size,
        "alpha": opts.alpha,
        "base_weights": res.base,
        "keras_backend": backend,
        "options": asdict(opts),
        "data": {"train_dir": str(data_dir), "train_images": len(train.paths), "train_counts": train.counts(),
                 "val_dir": str(val_dir) if val_dir else None, "val_images": len(val.paths), "split": split_desc,
                 **({"votes": str(votes), "val_votes": str(val_votes) if val_votes else None,
                     "targets": "crowd vote distributions (contempt, unknown and NF votes dropped, images whose "
                                "NF count is the highest left out)"} if votes else {})},
        "command": command,
        "epochs_run": res.epochs_run,
        "training_seconds": round(res.seconds, 1),
        "validation": {"accuracy": res.best_val_accuracy, "loss": res.best_val_loss},
        "history": res.history,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_card(out, card)
    shutil.rmtree(work, ignore_errors=True)
    return card
