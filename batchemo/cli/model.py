"""`batchemo train`, `evaluate`, `export` and `calibrate`: making and measuring emotion models."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..training.options import FRESH_ALPHA, FRESH_SIZE, TRAIN_RANGES, TrainOptions
from ..training.start import Start, shown
from .app import Command, app, command_line, fail, plural

_T = TrainOptions()  # one set of training defaults for `train` and `evaluate --folds`


def _ranged(help: str, name: str) -> str:
    """An option's help with its valid values, as TrainOptions checks them."""
    return f"{help} {TRAIN_RANGES[name].text}"


# Each option that several commands take is declared once here, so it reads the same in every --help.
Alpha = Annotated[Optional[float], typer.Option(help=_ranged(
    f"MobileNet width multiplier (default: the starting model's, from its card; {FRESH_ALPHA:g} from ImageNet or "
    "scratch). Wider than the starting model's widens its network.", "alpha"))]
Size = Annotated[Optional[int], typer.Option(help=_ranged(
    f"Network input size in pixels; crops are resized inside the model (default: the starting model's; {FRESH_SIZE} "
    "from ImageNet or scratch).", "size"))]
Epochs = Annotated[int, typer.Option(help=_ranged("Most epochs of the main (fine-tune or scratch) phase.", "epochs"))]
HeadEpochs = Annotated[int, typer.Option(help=_ranged(
    "Epochs training only the new head on the frozen pretrained base, before the main phase.", "head_epochs"))]
BatchSize = Annotated[int, typer.Option(help=_ranged(
    "Images per training step, and faces per model call when scoring.", "batch_size"))]
Lr = Annotated[float, typer.Option(help=_ranged(
    "Learning rate (head, or the whole network from scratch); cosine decay.", "lr"))]
FineTuneLr = Annotated[Optional[float], typer.Option(help=_ranged(
    "Learning rate for fine-tuning a pretrained base (default: --lr / 2).", "fine_tune_lr"))]
BaseWeights = Annotated[Optional[str], typer.Option(help=(
    "Start from these base weights instead of a batchemo model: 'imagenet' (Keras's cache, downloaded where there "
    "is internet; an error where it cannot be), a no-top .h5 PATH, or 'none' (random weights)."))]
InitModel = Annotated[Optional[Path], typer.Option(help=(
    "Start from this batchemo model's network, with its card's alpha and size unless --alpha / --size say "
    "otherwise (default: the shipped model, unless --base-weights is given)."))]
Patience = Annotated[int, typer.Option(help=_ranged(
    "Early-stopping patience in epochs (on validation accuracy).", "patience"))]
Seed = Annotated[int, typer.Option(help=_ranged(
    "Seed of training (initial head, shuffling, augmentation) and, without --split-seed, of the held-out slice; "
    "CV fold k trains with seed + k.", "seed"))]
SPLIT_SEED_HELP = _ranged("Seed of the slice --val-split holds out (train: default --seed, so that runs with other "
                          "seeds are compared on the same images; calibrate: default the card's).", "split_seed")
GroupBy = Annotated[Optional[str], typer.Option(help=(
    "Regex whose first group is a file's group (a CK+ subject: '^(S\\d+)_'): no group is on both sides of a split "
    "or of a CV fold; calibrate needs the one the model was trained with."))]
ValSplit = Annotated[float, typer.Option(help=(
    "Share of DATA_DIR (of its groups, with --group-by) held out for validation; calibrate fits on the share train "
    "held out, or with 0 on all of DATA_DIR. (>=0,<1; train >0)"))]
Votes = Annotated[Optional[Path], typer.Option(help=(
    "Crowd votes CSV for DATA_DIR's files (a file column, one vote-count column per class; docs/model.md, "
    "'Crowd votes'): "
    "train towards each image's vote shares; evaluate and calibrate also against the crowd majority."))]
Verbose = Annotated[bool, typer.Option("--verbose", help="Show TensorFlow's own log lines (kept off the console "
                                                         "otherwise).")]

# The options of `evaluate` that only train CV folds (with --folds), and so mean nothing without it.
_CV_ONLY = ("group_by", "alpha", "size", "epochs", "head_epochs", "lr", "fine_tune_lr", "base_weights",
            "init_model", "patience", "seed")


def _spell_out_start(ctx: typer.Context, start: Start) -> None:
    """The recorded command names where the run started (alpha, size, the model), so that it re-runs the same
    training even after the shipped model or its card changes."""
    opts = start.opts
    ctx.params.update(alpha=opts.alpha, size=opts.size)
    if opts.init_model:
        ctx.params["init_model"] = shown(opts.init_model)


@app.command(cls=Command)
def train(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="Folder with one sub-folder of face images per class.")],
    out: Annotated[Path, typer.Option(help="Model file to write (.keras; required, so that no run replaces a model "
                                           "it was not told to); its TFLite twin and model card (.json, .md) go "
                                           "beside it.")],
    val_dir: Annotated[Optional[Path], typer.Option(help="A separate validation folder (same class "
                                                         "sub-folders).")] = None,
    val_split: ValSplit = 0.1,
    group_by: GroupBy = None,
    init_model: InitModel = None,
    base_weights: BaseWeights = None,
    alpha: Alpha = None,
    size: Size = None,
    image_size: Annotated[int, typer.Option(help=_ranged("Crop size the saved model takes.",
                                                         "image_size"))] = _T.image_size,
    epochs: Epochs = _T.epochs,
    head_epochs: HeadEpochs = _T.head_epochs,
    batch_size: BatchSize = _T.batch_size,
    lr: Lr = _T.lr,
    fine_tune_lr: FineTuneLr = None,
    class_weight_power: Annotated[float, typer.Option(help=_ranged(
        "Class weights (1/frequency)^power; 0 turns them off.", "class_weight_power"))] = _T.class_weight_power,
    patience: Patience = _T.patience,
    seed: Seed = _T.seed,
    split_seed: Annotated[Optional[int], typer.Option(help=SPLIT_SEED_HELP)] = None,
    augment: Annotated[bool, typer.Option(help="Flip, rotate, zoom, shift and contrast augmentation.")] = _T.augment,
    erase: Annotated[float, typer.Option(help=_ranged(
        "With --augment: probability of erasing a random rectangle of each training crop (random erasing).",
        "erase"))] = _T.erase,
    label_smoothing: Annotated[float, typer.Option(help=_ranged("Label smoothing of the training targets.",
                                                                "label_smoothing"))] = _T.label_smoothing,
    flip_average: Annotated[bool, typer.Option(help=(
        "The model card asks for each face to be classified together with its mirror image and the two averaged "
        "(twice the work, more accurate)."))] = _T.flip_average,
    teacher: Annotated[Optional[list[Path]], typer.Option(help=(
        "Distil from this batchemo model (repeat for an ensemble): its predictions become soft training "
        "targets."))] = None,
    distill: Annotated[float, typer.Option(help=_ranged(
        "With --teacher: target = distill * teachers + (1 - distill) * label.", "distill"))] = _T.distill,
    recipe: Annotated[str, typer.Option(help=(
        "'notebook' reproduces the original notebook's baseline for comparison: pixels in [0, 1], base frozen "
        "throughout, from ImageNet unless told otherwise."))] = "batchemo",
    votes: Votes = None,
    val_votes: Annotated[Optional[Path], typer.Option(help="Crowd votes CSV for --val-dir (select epochs against "
                                                           "the crowd's votes).")] = None,
    verbose: Verbose = False,
) -> None:
    """Train an emotion model on labelled folders or crowd votes, by default from the shipped model's network
    (resumable: re-run the same command after an interruption)."""
    from ..training.quiet import quiet_tensorflow
    from ..training.start import resolve_start
    from ..training.train import train_folder

    if recipe not in ("batchemo", "notebook"):
        fail(f"--recipe must be batchemo or notebook (got {recipe!r})")
    try:
        opts = TrainOptions(alpha=alpha, size=size, image_size=image_size, epochs=epochs, head_epochs=head_epochs,
                            batch_size=batch_size, lr=lr, fine_tune_lr=fine_tune_lr, seed=seed,
                            split_seed=split_seed, base_weights=base_weights,
                            init_model=str(init_model) if init_model else None,
                            class_weight_power=class_weight_power, patience=patience, augment=augment, erase=erase,
                            label_smoothing=label_smoothing, flip_average=flip_average,
                            teachers=[str(t) for t in teacher or []], distill=distill,
                            scale="unit" if recipe == "notebook" else "mobilenet", freeze_base=recipe == "notebook")
        quiet_tensorflow(not verbose)
        start = resolve_start(opts)
        _spell_out_start(ctx, start)
        card = train_folder(data_dir, out, start.opts, val_dir=val_dir, val_split=val_split, group_by=group_by,
                            command=command_line(ctx, set(ctx.params) - {"verbose"}), votes=votes,
                            val_votes=val_votes, start=start)
    except (FileNotFoundError, ValueError, ImportError) as e:
        fail(str(e))
    v = card["validation"]
    typer.echo(f"saved {out} (card {out.with_suffix('.json')}, {out.with_suffix('.md')}): validation accuracy "
               f"{100 * v['accuracy']:.2f} % on {plural(card['data']['val_images'], 'image')}, "
               f"{plural(card['epochs_run'], 'epoch')} in {card['training_seconds']:.0f} s")


@app.command(cls=Command)
def export(model: Annotated[Path, typer.Argument(help="Model file (.keras).")], verbose: Verbose = False) -> None:
    """Write a model's TFLite twin beside it (the fast CPU path the folder and video jobs prefer)."""
    from ..training.export import export_model
    from ..training.quiet import quiet_tensorflow

    if not model.is_file():
        fail(f"{model}: model file not found")
    quiet_tensorflow(not verbose)
    try:
        typer.echo(f"wrote {export_model(model)}")
    except ImportError as e:
        fail(f"{model}: the TFLite converter needs TensorFlow ({e})")
    except (ValueError, RuntimeError) as e:
        fail(f"{model}: {str(e).splitlines()[0]}")


def _needs_tensorflow(model: Path) -> bool:
    """Scoring runs on the TFLite twin where there is one (no TensorFlow loaded); without one, on Keras."""
    return not model.with_suffix(".tflite").is_file()


@app.command(cls=Command)
def evaluate(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="Model file (.keras, card beside it); with --folds only the name of "
                                               "the recipe's output.")],
    data_dir: Annotated[Path, typer.Argument(help="Labelled folder: one sub-folder per class.")],
    out: Annotated[Path, typer.Option(help="Folder for metrics, confusion matrix and plots.")] = Path(
        "reports/evaluate"),
    batch_size: BatchSize = _T.batch_size,
    votes: Votes = None,
    temperature: Annotated[Optional[float], typer.Option(help=(
        "Override the card's temperature (1: the network's uncalibrated output). (>0)"))] = None,
    flip: Annotated[Optional[bool], typer.Option("--flip/--no-flip", help=(
        "Average each face with its mirror image (default: as the model card says; CV: on)."))] = None,
    record: Annotated[Optional[str], typer.Option(help=(
        "Also write the figures into MODEL's card under evaluation.RECORD (e.g. fer2013_val)."))] = None,
    folds: Annotated[int, typer.Option(help=(
        "K > 1: K-fold cross-validation on DATA_DIR, training each fold as `batchemo train` would, with the options "
        "below. (0 or >=2)"))] = 0,
    group_by: GroupBy = None,
    init_model: InitModel = None,
    base_weights: BaseWeights = None,
    alpha: Alpha = None,
    size: Size = None,
    epochs: Epochs = _T.epochs,
    head_epochs: HeadEpochs = _T.head_epochs,
    lr: Lr = _T.lr,
    fine_tune_lr: FineTuneLr = None,
    patience: Patience = _T.patience,
    seed: Seed = _T.seed,
    verbose: Verbose = False,
) -> None:
    """Measure a model on labelled data: accuracy, macro F1, per-class P/R/F1, confusion matrix, faces/s, and
    calibration (ECE over 15 bins, NLL, reliability diagram calibration.png); with --votes the same against the
    crowd majority. With --folds: grouped cross-validation of the training recipe."""
    from ..training.card import record_in_card
    from ..training.evaluate import cross_validate
    from ..training.evaluate import evaluate as run_eval
    from ..training.quiet import quiet_tensorflow
    from ..training.start import resolve_start

    if folds == 1 or folds < 0:
        fail(f"--folds must be 0 (score MODEL) or at least 2 (cross-validate), not {folds}")
    if folds and (votes or temperature is not None):
        fail("--votes and --temperature score MODEL itself; with --folds each fold's model is trained, scored on "
             "its folder labels")
    # By the source's name: typer carries its own copy of click, whose enum is not click's.
    trains = [n for n in _CV_ONLY if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"]
    if not folds and trains:
        fail(f"--{trains[0].replace('_', '-')} trains the folds of a cross-validation: it needs --folds K")
    if batch_size < 1:
        fail(f"--batch-size must be at least 1 (got {batch_size})")
    if temperature is not None and not temperature > 0:
        fail(f"--temperature must be more than 0 (got {temperature:g})")
    quiet_tensorflow(not verbose)
    try:
        if folds > 1:
            opts = TrainOptions(alpha=alpha, size=size, epochs=epochs, head_epochs=head_epochs, lr=lr,
                                fine_tune_lr=fine_tune_lr, base_weights=base_weights, batch_size=batch_size,
                                init_model=str(init_model) if init_model else None, patience=patience, seed=seed,
                                flip_average=flip is not False)
            start = resolve_start(opts)
            _spell_out_start(ctx, start)
            r = cross_validate(data_dir, out, folds, group_by, start.opts, batch_size=batch_size,
                               command=command_line(ctx, set(ctx.params) - {"verbose"}), start=start)
            typer.echo(f"{folds}-fold CV by {group_by!r}: accuracy {100 * r['accuracy_mean']:.2f} ± "
                       f"{100 * r['accuracy_std']:.2f} %, macro F1 {r['macro_f1_mean']:.3f} -> {out}")
            if record:
                record_in_card(model, record, {k: r[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean",
                                                                 "pooled_accuracy", "folds", "group_by", "command")})
            return
        quiet_tensorflow(not verbose, import_now=_needs_tensorflow(model))
        r = run_eval(model, data_dir, out, batch_size, flip=flip, votes=votes, temperature=temperature)
        if record:
            figures = {k: r[k] for k in ("accuracy", "accuracy_ci", "macro_f1", "images", "faces_per_second")
                       if k in r}
            figures.update({"data": str(data_dir), "flip_average": r["flip_average"]})
            figures.update({k: v for k, v in r.items() if k == "temperature" or k.endswith(("ece", "nll"))
                            or k in ("votes", "crowd_images", "crowd_accuracy", "crowd_accuracy_ci")})
            figures["command"] = command_line(ctx, {"out", "batch_size", "flip", "record", "votes", "temperature"})
            record_in_card(model, record, figures)
    except (FileNotFoundError, ValueError, ImportError) as e:
        fail(str(e))
    _echo_figures(r, batch_size)
    typer.echo(f"-> {out}")


def _before_temperature(r: dict, prefix: str) -> str:
    """' (before temperature: ECE …, NLL …)' from the figures under `prefix`, where the card has a temperature."""
    if f"{prefix}ece" not in r:
        return ""
    return f" (before temperature: ECE {100 * r[f'{prefix}ece']:.2f} %, NLL {r[f'{prefix}nll']:.3f})"


def _echo_per_class(rows: list[dict], against: str) -> None:
    typer.echo(f"{'class':<10} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}   (against the {against})")
    for row in rows:
        typer.echo(f"{row['class']:<10} {row['support']:>7} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                   f"{row['f1']:>6.3f}")


def _echo_figures(r: dict, batch_size: int) -> None:
    """`batchemo evaluate`'s report on stdout: accuracy, speed, calibration, crowd figures, per class."""
    from ..training.card import interval_text

    typer.echo(f"{plural(r['images'], 'image')}, accuracy {100 * r['accuracy']:.2f} %"
               f"{interval_text(r['accuracy_ci'])}, macro F1 {r['macro_f1']:.3f}, "
               f"{r['faces_per_second']:.0f} faces/s (batch {batch_size}"
               f"{', each face averaged with its mirror image' if r['flip_average'] else ''})")
    typer.echo(f"temperature {r['temperature']:.3f}: against the folder labels ECE {100 * r['ece']:.2f} %, "
               f"NLL {r['nll']:.3f}{_before_temperature(r, 'raw_')}")
    if "crowd_accuracy" not in r and str(r.get("temperature_target", "")).startswith("crowd"):
        typer.echo("  (the temperature was fitted to crowd votes, the majority of several raters: against single "
                   "folder labels the ECE is expected to be higher; --votes measures against the crowd)")
    if "crowd_accuracy" in r:
        typer.echo(f"crowd majority ({plural(r['crowd_images'], 'image')} with a unique most-voted class): accuracy "
                   f"{100 * r['crowd_accuracy']:.2f} %{interval_text(r['crowd_accuracy_ci'])}, "
                   f"ECE {100 * r['crowd_ece']:.2f} %, NLL {r['crowd_nll']:.3f}"
                   + _before_temperature(r, "crowd_raw_"))
    _echo_per_class(r["per_class"], "folder labels")
    if "crowd_per_class" in r:
        _echo_per_class(r["crowd_per_class"], f"crowd majority, macro F1 {r['crowd_macro_f1']:.3f}")
    if r["classes_not_in_model"]:
        typer.echo(f"left out (the model has no such class): {r['left_out']}")
    if r["model_classes_not_in_data"]:
        typer.echo(f"model classes absent from the data (predictions into them count as errors): "
                   f"{r['model_classes_not_in_data']}")


@app.command(cls=Command)
def calibrate(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="Model file (.keras, card beside it): its card gets the "
                                               "temperature.")],
    data_dir: Annotated[Path, typer.Argument(help="The training data folder (or, with --val-split 0, a folder kept "
                                                  "aside for calibration).")],
    votes: Votes = None,
    val_split: ValSplit = 0.1,
    group_by: GroupBy = None,
    split_seed: Annotated[Optional[int], typer.Option("--split-seed", "--seed", help=SPLIT_SEED_HELP)] = None,
    batch_size: BatchSize = _T.batch_size,
    verbose: Verbose = False,
) -> None:
    """Fit a temperature on data the model did not train on and store it in the card: afterwards `confidence`
    and `p_<class>` are calibrated probabilities in every job."""
    from ..training.evaluate import calibrate as run_calibrate
    from ..training.quiet import quiet_tensorflow

    if not model.is_file():
        fail(f"{model}: model file not found")
    if not 0 <= val_split < 1:
        fail(f"--val-split must be at least 0 (0: all of DATA_DIR) and below 1 (got {val_split:g})")
    if batch_size < 1:
        fail(f"--batch-size must be at least 1 (got {batch_size})")
    if split_seed is not None and split_seed < 0:
        fail(f"--split-seed must be at least 0 (got {split_seed})")
    quiet_tensorflow(not verbose, import_now=_needs_tensorflow(model))
    try:
        info = run_calibrate(model, data_dir, votes, val_split, split_seed, group_by, batch_size,
                             command=command_line(ctx, {"votes", "val_split", "split_seed", "group_by"}))
    except (FileNotFoundError, ValueError, ImportError) as e:
        fail(str(e))
    typer.echo(f"temperature {info['temperature']:.3f} fitted on {plural(info['images'], 'image')} ({info['target']}): "
               f"accuracy {100 * info['accuracy']:.2f} %, NLL {info['nll_before']:.3f} -> {info['nll_after']:.3f}, "
               f"ECE {100 * info['ece_before']:.2f} % -> {100 * info['ece_after']:.2f} %; written to "
               f"{model.with_suffix('.json')}")
