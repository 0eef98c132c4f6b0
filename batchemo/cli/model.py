"""`batchemo train`, `evaluate` and `export`: making and measuring emotion models."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..training.options import TrainOptions
from .app import Command, app, command_line, fail, plural

_T = TrainOptions()  # one set of training defaults for `train` and `evaluate --folds`


@app.command(cls=Command)
def train(
    ctx: typer.Context,
    data_dir: Path = typer.Argument(..., help="Folder with one sub-folder of face images per class."),
    out: Path = typer.Option(Path("models/emotion.keras"), help="Model file to write (.keras); the model card "
                             "(.json, .md) goes beside it."),
    val_dir: Optional[Path] = typer.Option(None, help="A separate validation folder (same class sub-folders)."),
    val_split: float = typer.Option(0.1, help="Share held out for validation when there is no --val-dir."),
    group_by: Optional[str] = typer.Option(None, help="Regex whose first group is a file's group (e.g. subject "
                                           "'^(S\\d+)_'): no group lands on both sides of a split."),
    alpha: float = typer.Option(_T.alpha, help="MobileNet width multiplier."),
    size: int = typer.Option(_T.size, help="Network input size in pixels (crops are resized inside the model)."),
    image_size: int = typer.Option(48, help="Crop size the saved model takes."),
    epochs: int = typer.Option(_T.epochs, help="Most epochs of the main (fine-tune or scratch) phase."),
    head_epochs: int = typer.Option(_T.head_epochs, help="Epochs training only the head on a frozen pretrained base."),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(_T.lr, help="Learning rate (head, or whole net from scratch); cosine decay."),
    fine_tune_lr: Optional[float] = typer.Option(None, help="Learning rate for fine-tuning the base "
                                                 "(default lr/2)."),
    base_weights: str = typer.Option("imagenet", help="ImageNet weights: a .h5 PATH, 'imagenet' (Keras cache) or "
                                     "'none' (from scratch)."),
    init_model: Optional[Path] = typer.Option(None, help="Start from the base of another batchemo model "
                                              "(widened first when --alpha is wider than its own)."),
    class_weight_power: float = typer.Option(0.5, help="Class weights (1/frequency)^power; 0 turns them off."),
    patience: int = typer.Option(8, help="Early-stopping patience in epochs (on validation accuracy)."),
    seed: int = typer.Option(1),
    split_seed: Optional[int] = typer.Option(None, help="Seed of the --val-split hold-out (default: --seed): "
                                             "runs with other seeds held out on the same images."),
    augment: bool = typer.Option(True, help="Flip, rotate, zoom, shift and contrast augmentation."),
    erase: float = typer.Option(_T.erase, help="With --augment: probability of erasing a random rectangle of "
                                "each training crop (random erasing)."),
    label_smoothing: float = typer.Option(_T.label_smoothing, help="Label smoothing of the training targets."),
    flip_average: bool = typer.Option(True, help="The model card asks for each face to be classified together "
                                      "with its mirror image and the two averaged (twice the work, more accurate)."),
    teacher: Optional[list[Path]] = typer.Option(None, help="Distil from this batchemo model (repeat for an "
                                                  "ensemble): its predictions become soft training targets."),
    distill: float = typer.Option(0.7, help="With --teacher: target = distill * teachers + (1 - distill) * label."),
    recipe: str = typer.Option("batchemo", help="'notebook' reproduces the original notebook's baseline for "
                               "comparison: pixels in [0, 1], base frozen throughout."),
    votes: Optional[Path] = typer.Option(None, help="Crowd votes CSV (file, one count column per class; FER+'s "
                                         "contempt, unknown and NF handled as README says): train on the files it "
                                         "lists under DATA_DIR towards their vote distributions."),
    val_votes: Optional[Path] = typer.Option(None, help="Crowd votes CSV for --val-dir (select epochs against "
                                             "the crowd's votes)."),
) -> None:
    """Train an emotion model on labelled folders or crowd votes (resumable: re-run the same command after an
    interruption)."""
    from ..training.train import TrainOptions, train_folder

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
        card = train_folder(data_dir, out, opts, val_dir=val_dir, val_split=val_split, group_by=group_by,
                            command=command_line(ctx), votes=votes, val_votes=val_votes)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"saved {out} (val accuracy {100 * card['validation']['accuracy']:.2f} %, "
               f"{card['epochs_run']} epochs); card: {out.with_suffix('.md')}")


@app.command(cls=Command)
def export(model: Path = typer.Argument(..., help="Model file (.keras).")) -> None:
    """Write a model's TFLite twin beside it (the fast CPU path the folder and video jobs prefer)."""
    from ..training.export import export_model

    if not model.is_file():
        fail(f"{model}: model file not found")
    try:
        typer.echo(f"wrote {export_model(model)}")
    except ImportError as e:
        fail(f"{model}: the TFLite converter needs TensorFlow ({e})")
    except (ValueError, RuntimeError) as e:
        fail(f"{model}: {str(e).splitlines()[0]}")


@app.command(cls=Command)
def evaluate(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model file (.keras, card beside it)."),
    data_dir: Path = typer.Argument(..., help="Labelled folder: one sub-folder per class."),
    out: Path = typer.Option(Path("reports/evaluate"), help="Folder for metrics, confusion matrix and plots."),
    batch_size: int = typer.Option(64),
    folds: int = typer.Option(0, help="K > 1: K-fold cross-validation on DATA_DIR, training each fold with the "
                              "train options below (MODEL is then only the name of the recipe's output)."),
    group_by: Optional[str] = typer.Option(None, help="Regex for the group key (CV folds never split a group)."),
    alpha: float = typer.Option(_T.alpha),
    size: int = typer.Option(_T.size),
    epochs: int = typer.Option(_T.epochs),
    head_epochs: int = typer.Option(_T.head_epochs),
    lr: float = typer.Option(_T.lr),
    fine_tune_lr: Optional[float] = typer.Option(None),
    base_weights: str = typer.Option("imagenet"),
    init_model: Optional[Path] = typer.Option(None, help="CV: start each fold from this model's base."),
    patience: int = typer.Option(8),
    seed: int = typer.Option(1),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Average each face with its mirror image "
                                        "(default: as the model card says; CV: on)."),
    record: Optional[str] = typer.Option(None, help="Also write the figures into MODEL's card under "
                                         "evaluation.RECORD (e.g. fer2013_val)."),
    votes: Optional[Path] = typer.Option(None, help="Crowd votes CSV for DATA_DIR's files: also accuracy, ECE "
                                         "and NLL against the crowd majority."),
    temperature: Optional[float] = typer.Option(None, help="Override the card's temperature (1: the network's "
                                                "uncalibrated output)."),
) -> None:
    """Measure a model on labelled data: accuracy, macro F1, per-class P/R/F1, confusion matrix, faces/s, and
    calibration (ECE over 15 bins, NLL, reliability diagram calibration.png)."""
    from ..training.card import record_in_card
    from ..training.evaluate import cross_validate
    from ..training.evaluate import evaluate as run_eval
    from ..training.options import TrainOptions

    if folds == 1 or folds < 0:
        fail(f"--folds must be 0 (score MODEL) or at least 2 (cross-validate), not {folds}")
    if folds and (votes or temperature is not None):
        fail("--votes and --temperature score MODEL itself; with --folds each fold's model is trained, scored on "
             "its folder labels")
    if batch_size < 1:
        fail(f"--batch-size must be at least 1 (got {batch_size})")
    try:
        if folds > 1:
            opts = TrainOptions(alpha=alpha, size=size, epochs=epochs, head_epochs=head_epochs, lr=lr,
                                fine_tune_lr=fine_tune_lr, base_weights=base_weights, batch_size=batch_size,
                                init_model=str(init_model) if init_model else None, patience=patience, seed=seed,
                                flip_average=flip is not False)
            r = cross_validate(data_dir, out, folds, group_by, opts, batch_size=batch_size, command=command_line(ctx))
            typer.echo(f"{folds}-fold CV by {group_by!r}: accuracy {100 * r['accuracy_mean']:.2f} ± "
                       f"{100 * r['accuracy_std']:.2f} %, macro F1 {r['macro_f1_mean']:.3f} -> {out}")
            if record:
                record_in_card(model, record, {k: r[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean",
                                                                 "pooled_accuracy", "folds", "group_by", "command")})
            return
        r = run_eval(model, data_dir, out, batch_size, flip=flip, votes=votes, temperature=temperature)
        if record:
            figures = {k: r[k] for k in ("accuracy", "accuracy_ci", "macro_f1", "images", "faces_per_second")
                       if k in r}
            figures.update({"data": str(data_dir), "flip_average": r["flip_average"]})
            figures.update({k: v for k, v in r.items() if k == "temperature" or k.endswith(("ece", "nll"))
                            or k in ("votes", "crowd_images", "crowd_accuracy", "crowd_accuracy_ci")})
            figures["command"] = command_line(ctx, {"out", "batch_size", "flip", "record", "votes", "temperature"})
            record_in_card(model, record, figures)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    _echo_figures(r, batch_size)
    typer.echo(f"-> {out}")


def _before_temperature(r: dict, prefix: str) -> str:
    """' (before temperature: ECE …, NLL …)' from the figures under `prefix`, where the card has a temperature."""
    if f"{prefix}ece" not in r:
        return ""
    return f" (before temperature: ECE {100 * r[f'{prefix}ece']:.2f} %, NLL {r[f'{prefix}nll']:.3f})"


def _echo_figures(r: dict, batch_size: int) -> None:
    """`batchemo evaluate`'s report on stdout: accuracy, speed, calibration, crowd figures, per class."""
    from ..training.card import interval_text

    typer.echo(f"{plural(r['images'], 'image')}, accuracy {100 * r['accuracy']:.2f} %"
               f"{interval_text(r['accuracy_ci'])}, macro F1 {r['macro_f1']:.3f}, "
               f"{r['faces_per_second']:.0f} faces/s (batch {batch_size}"
               f"{', each face averaged with its mirror image' if r['flip_average'] else ''})")
    typer.echo(f"temperature {r['temperature']:.3f}: against the folder labels ECE {100 * r['ece']:.2f} %, "
               f"NLL {r['nll']:.3f}{_before_temperature(r, 'raw_')}")
    if "crowd_accuracy" in r:
        typer.echo(f"crowd majority ({plural(r['crowd_images'], 'image')} with a unique most-voted class): accuracy "
                   f"{100 * r['crowd_accuracy']:.2f} %{interval_text(r['crowd_accuracy_ci'])}, "
                   f"ECE {100 * r['crowd_ece']:.2f} %, NLL {r['crowd_nll']:.3f}"
                   + _before_temperature(r, "crowd_raw_"))
    typer.echo(f"{'class':<10} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}")
    for row in r["per_class"]:
        typer.echo(f"{row['class']:<10} {row['support']:>7} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                   f"{row['f1']:>6.3f}")
    if r["classes_not_in_model"]:
        typer.echo(f"left out (the model has no such class): {r['left_out']}")
    if r["model_classes_not_in_data"]:
        typer.echo(f"model classes absent from the data (predictions into them count as errors): "
                   f"{r['model_classes_not_in_data']}")


@app.command(cls=Command)
def calibrate(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model file (.keras, card beside it): its card gets the temperature."),
    data_dir: Path = typer.Argument(..., help="The training data folder (or, with --val-split 0, a folder kept "
                                    "aside for calibration)."),
    votes: Optional[Path] = typer.Option(None, help="Crowd votes CSV as given to `batchemo train`: fit against "
                                         "the crowd majority."),
    val_split: float = typer.Option(0.1, help="Fit on the share `batchemo train` held out with this --val-split "
                                    "(0: all of DATA_DIR)."),
    seed: Optional[int] = typer.Option(None, help="The split's seed (default: the card's --split-seed, "
                                      "else its training seed)."),
    group_by: Optional[str] = typer.Option(None, help="The --group-by the model was trained with."),
    batch_size: int = typer.Option(64),
) -> None:
    """Fit a temperature on data the model did not train on and store it in the card: afterwards `confidence`
    and `p_<class>` are calibrated probabilities in every job."""
    from ..training.evaluate import calibrate as run_calibrate

    if not model.is_file():
        fail(f"{model}: model file not found")
    if not 0 <= val_split < 1:
        fail(f"--val-split must be at least 0 (0: all of DATA_DIR) and below 1 (got {val_split:g})")
    if batch_size < 1:
        fail(f"--batch-size must be at least 1 (got {batch_size})")
    try:
        info = run_calibrate(model, data_dir, votes, val_split, seed, group_by, batch_size,
                             command=command_line(ctx, {"votes", "val_split", "seed", "group_by"}))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    typer.echo(f"temperature {info['temperature']:.3f} fitted on {plural(info['images'], 'image')} ({info['target']}): "
               f"accuracy {100 * info['accuracy']:.2f} %, NLL {info['nll_before']:.3f} -> {info['nll_after']:.3f}, "
               f"ECE {100 * info['ece_before']:.2f} % -> {100 * info['ece_after']:.2f} %; written to {model.with_suffix('.json')}")
