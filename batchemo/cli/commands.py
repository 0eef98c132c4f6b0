"""The `batchemo` command line: a thin typer layer over the library API."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from ..training.train import TrainOptions

_T = TrainOptions()  # one set of training defaults for `train` and `evaluate --folds`
app = typer.Typer(help="Find faces in photos and videos, classify their emotion, write annotated media and CSV "
                       "reports.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """batchemo: emotion analysis of faces in photo folders and videos."""


def _command_line(ctx: typer.Context, only: set[str] | None = None) -> str:
    """The running command with every option spelled out: exact and re-runnable, whatever defaults become.
    `only`: the options that matter for this run (the others are left out instead of misleading)."""
    parts = ["batchemo", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.param_type_name == "argument":
            parts += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        elif value is None or (only is not None and param.name not in only):
            continue
        elif isinstance(value, (list, tuple)):
            for v in value:
                parts += [param.opts[0], str(v)]
        elif isinstance(value, bool) and param.is_flag:
            if param.secondary_opts:
                parts.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                parts.append(param.opts[0])
        else:
            parts += [param.opts[0], str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _detect_options(scale_factor: float, min_neighbors: int, min_face: int, accurate: bool, detect_size: int):
    from ..pipeline.detect import DetectOptions

    d = DetectOptions(scale_factor=scale_factor, min_neighbors=min_neighbors, min_face=min_face,
                      max_side=detect_size)
    return d.accurate if accurate else d


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _print_summary(summary, classes: list[str], header: str) -> None:
    typer.echo(header)
    row = summary.iloc[0]
    if row["faces"] == 0:
        typer.echo("  no faces found")
        return
    width = max(len(c) for c in classes)
    for c in sorted(classes, key=lambda c: -row[f"share_{c}"]):
        share = row[f"share_{c}"]
        typer.echo(f"  {c:<{width}}  {int(row[f'n_{c}']):>6}  {100 * share:5.1f} %  {'#' * int(round(40 * share))}")


SCALE_HELP = "Haar scaleFactor: step between detection scales (smaller finds more, slower)."
NEIGH_HELP = "Haar minNeighbors: overlapping hits a face needs (higher = fewer false faces)."
MINFACE_HELP = "Smallest face side, in pixels of the original image."
DETECT_SIZE_HELP = ("Long side, in pixels, of the downscaled copy Haar searches (0: no cap). Faces smaller than "
                    "24 px on that copy are not found.")
ACCURATE_HELP = "Detect at full resolution (slow; the default detects on a downscaled grey image)."
RAY_HELP = ("Run on Ray (extra batchemo[ray]): 'local' starts a Ray instance here; 'auto' or 'ray://HOST:10001' "
            "joins a cluster. Inputs and --out must be on a file system every node sees.")
MODEL_HELP = "Emotion model (.keras with its .json card beside it); default: the shipped models/emotion.keras."


@app.command()
def folder(
    path: Path = typer.Argument(..., help="Folder of photos, walked recursively."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default reports/<name of PATH>)."),
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    batch_size: int = typer.Option(64, help="Faces per model call (crops from many images)."),
    scale_factor: float = typer.Option(1.1, help=SCALE_HELP),
    min_neighbors: int = typer.Option(5, help=NEIGH_HELP),
    min_face: int = typer.Option(30, help=MINFACE_HELP),
    detect_size: int = typer.Option(640, help=DETECT_SIZE_HELP),
    decode_side: int = typer.Option(1920, help="Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their long "
                                    "side stays at least this (faster, less memory; annotated copies are that size; "
                                    "boxes are in full-size pixels). 0: full size."),
    accurate: bool = typer.Option(False, "--accurate", help=ACCURATE_HELP + " Also decodes at full size."),
    annotate: bool = typer.Option(True, help="Write annotated copies under OUT/annotated/."),
    redo: bool = typer.Option(False, "--redo", help="Start over instead of resuming a previous run in OUT."),
    force: bool = typer.Option(False, "--force", help="Write into an OUT that holds another input's report."),
    max_megapixels: float = typer.Option(40.0, help="Refuse images this large or larger (memory guard)."),
    workers: int = typer.Option(2, help="Threads decoding and detecting while the model classifies."),
    ray: Optional[str] = typer.Option(None, help=RAY_HELP),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Analyse every photo under PATH: faces.csv, files.csv, summary.csv, annotated/ and run.json.

    Exit code: 0 all files ok, 1 some files failed (listed in files.csv), 2 usage error.
    """
    from ..jobs.folder import FolderOptions, analyze_folder
    from ..jobs.runtime import OutputConflict

    opts = FolderOptions(detect=_detect_options(scale_factor, min_neighbors, min_face, accurate, detect_size),
                         decode_side=0 if accurate else decode_side, batch_size=batch_size, annotate=annotate,
                         redo=redo, force=force, max_megapixels=max_megapixels, workers=workers, ray=ray)
    try:
        res = analyze_folder(path, out, model, opts, progress=progress)
    except (FileNotFoundError, NotADirectoryError, ValueError, OutputConflict, RuntimeError) as e:
        _fail(str(e))
    classes = [c[len("share_"):] for c in res.summary.columns if c.startswith("share_")]
    _print_summary(res.summary, classes, f"{res.files} files ({res.skipped_done} already done), {res.faces} faces, "
                   f"{res.errors} errors in {res.seconds:.1f}s -> {res.out}")
    if res.errors:
        raise typer.Exit(1)


@app.command()
def video(
    inputs: list[Path] = typer.Argument(..., help="Video files, or folders of videos."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default reports/<video stem>/; with several "
                                       "videos, OUT/<video stem>/)."),
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    every: int = typer.Option(1, help="Analyse every N-th frame."),
    fps: Optional[float] = typer.Option(None, help="Analyse about F frames per second of video (overrides "
                                        "--every)."),
    detect_every: int = typer.Option(30, help="Full-frame Haar on every k-th analysed frame (at least every "
                                     "1 s); in between, each face is re-found near its last box."),
    bin: float = typer.Option(1.0, help="Timeline bin width in seconds."),
    batch_size: int = typer.Option(64, help="Faces per model call (crops span frames)."),
    scale_factor: float = typer.Option(1.1, help=SCALE_HELP),
    min_neighbors: int = typer.Option(5, help=NEIGH_HELP),
    min_face: int = typer.Option(30, help=MINFACE_HELP),
    detect_size: int = typer.Option(1280, help=DETECT_SIZE_HELP),
    accurate: bool = typer.Option(False, "--accurate", help="Full-resolution Haar on every analysed frame "
                                  "(slow; the straightforward pipeline)."),
    annotate: bool = typer.Option(True, help="Write annotated.mp4."),
    ray: Optional[str] = typer.Option(None, help=RAY_HELP + " One Ray task per video; a long video is cut into "
                                      "frame ranges (--split-frames) analysed side by side."),
    split_frames: int = typer.Option(9000, help="With --ray: a video longer than 1.5x this many frames is cut into "
                                     "ranges of about this many frames (0: never)."),
    redo: bool = typer.Option(False, "--redo", help="Analyse again even if a complete report exists."),
    force: bool = typer.Option(False, "--force", help="Write into an OUT that holds another input's report."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Analyse videos frame by frame: frames.csv, timeline.csv/.png, summary.csv, annotated.mp4, run.json.

    Exit code: 0 all videos ok, 1 some failed or were cut short, 2 usage error.
    """
    from ..jobs.runtime import OutputConflict
    from ..pipeline.sources import VIDEO_EXTENSIONS, BadInput, walk
    from ..jobs.video import VideoOptions, analyze_video, default_out

    paths: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = [s.path for s in walk(p, VIDEO_EXTENSIONS)[0]]
            if not found:
                _fail(f"{p}: no videos found ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            paths += found
        else:
            paths.append(p)
    opts = VideoOptions(detect=_detect_options(scale_factor, min_neighbors, min_face, accurate, detect_size), every=every,
                        fps=fps, detect_every=1 if accurate else detect_every, batch_size=batch_size, bin_s=bin,
                        annotate=annotate, redo=redo, force=force, split_frames=split_frames)
    targets = [(out / p.stem if len(paths) > 1 else out) if out else default_out(p) for p in paths]
    if ray is not None:
        from ..jobs.ray_runner import ray_videos
        from ..pipeline.model import default_model_path

        results = iter(ray_videos(paths, targets, model or default_model_path(), opts, ray, progress))
    em = None
    failed = 0
    for p, target in zip(paths, targets):
        try:
            if ray is not None:
                r = next(results)
                if isinstance(r, Exception):  # BadInput, OutputConflict, ... from a worker: reported below
                    raise r
            else:
                if em is None:
                    from ..pipeline.model import EmotionModel

                    em = EmotionModel.load(model)
                r = analyze_video(p, target, em, opts, progress=progress)
        except BadInput as e:
            typer.echo(f"{p}: {e}", err=True)
            failed += 1
            continue
        except (FileNotFoundError, OutputConflict) as e:
            _fail(str(e))
        if r.status == "skipped":
            typer.echo(f"{p}: already complete in {r.out} (--redo to analyse again)")
            continue
        if r.status == "partial":
            failed += 1
            typer.echo(f"{p}: partial: {r.note}", err=True)
        elif r.note:
            typer.echo(f"{p}: note: {r.note}", err=True)
        typer.echo(f"{p}: {r.frames_decoded} frames ({r.frames_analysed} analysed), {r.faces} faces in "
                   f"{r.tracks} tracks, {r.frames_decoded / max(r.seconds, 1e-9):.1f} frames/s -> {r.out}")
    if failed:
        raise typer.Exit(1)


@app.command()
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
) -> None:
    """Train an emotion model on labelled folders (resumable: re-run the same command after an interruption)."""
    from ..training.train import TrainOptions, train_folder

    opts = TrainOptions(alpha=alpha, size=size, image_size=image_size, epochs=epochs, head_epochs=head_epochs,
                        batch_size=batch_size, lr=lr, fine_tune_lr=fine_tune_lr, seed=seed,
                        base_weights=base_weights, init_model=str(init_model) if init_model else None,
                        class_weight_power=class_weight_power, patience=patience, augment=augment, erase=erase,
                        label_smoothing=label_smoothing, flip_average=flip_average,
                        teachers=[str(t) for t in teacher or []], distill=distill,
                        scale="unit" if recipe == "notebook" else "mobilenet", freeze_base=recipe == "notebook")
    try:
        card = train_folder(data_dir, out, opts, val_dir=val_dir, val_split=val_split, group_by=group_by,
                            command=_command_line(ctx))
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"saved {out} (val accuracy {100 * card['validation']['accuracy']:.2f} %, "
               f"{card['epochs_run']} epochs); card: {out.with_suffix('.md')}")


@app.command()
def export(model: Path = typer.Argument(..., help="Model file (.keras).")) -> None:
    """Write a model's TFLite twin beside it (the fast CPU path the folder and video jobs prefer)."""
    from ..training.train import export_model

    if not model.is_file():
        _fail(f"{model}: model file not found")
    try:
        typer.echo(f"wrote {export_model(model)}")
    except ImportError as e:
        _fail(f"{model}: the TFLite converter needs TensorFlow ({e})")
    except (ValueError, RuntimeError) as e:
        _fail(f"{model}: {str(e).splitlines()[0]}")


@app.command()
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
) -> None:
    """Measure a model on labelled data: accuracy, macro F1, per-class P/R/F1, confusion matrix, faces/s."""
    from ..training.evaluate import cross_validate
    from ..training.evaluate import evaluate as run_eval
    from ..training.train import TrainOptions, record_in_card

    try:
        if folds > 1:
            opts = TrainOptions(alpha=alpha, size=size, epochs=epochs, head_epochs=head_epochs, lr=lr,
                                fine_tune_lr=fine_tune_lr, base_weights=base_weights, batch_size=batch_size,
                                init_model=str(init_model) if init_model else None, patience=patience, seed=seed,
                                flip_average=flip is not False)
            r = cross_validate(data_dir, out, folds, group_by, opts, batch_size=batch_size, command=_command_line(ctx))
            typer.echo(f"{folds}-fold CV by {group_by!r}: accuracy {100 * r['accuracy_mean']:.2f} ± "
                       f"{100 * r['accuracy_std']:.2f} %, macro F1 {r['macro_f1_mean']:.3f} -> {out}")
            if record:
                record_in_card(model, record, {k: r[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean",
                                                                 "pooled_accuracy", "folds", "group_by", "command")})
            return
        r = run_eval(model, data_dir, out, batch_size, flip=flip)
        if record:
            record_in_card(model, record, {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "images": r["images"],
                                           "faces_per_second": r["faces_per_second"], "data": str(data_dir),
                                           "flip_average": r["flip_average"],
                                           "command": _command_line(ctx, {"out", "batch_size", "flip", "record"})})
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"{r['images']} images, accuracy {100 * r['accuracy']:.2f} %, macro F1 {r['macro_f1']:.3f}, "
               f"{r['faces_per_second']:.0f} faces/s (batch {batch_size}"
               f"{', each face averaged with its mirror image' if r['flip_average'] else ''})")
    typer.echo(f"{'class':<10} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}")
    for row in r["per_class"]:
        typer.echo(f"{row['class']:<10} {row['support']:>7} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                   f"{row['f1']:>6.3f}")
    if r["classes_not_in_model"]:
        typer.echo(f"left out (the model has no such class): {r['left_out']}")
    if r["model_classes_not_in_data"]:
        typer.echo(f"model classes absent from the data (predictions into them count as errors): "
                   f"{r['model_classes_not_in_data']}")
    typer.echo(f"-> {out}")
