"""`batchemo evaluate`: honest measurement of an emotion model on a labelled folder, and grouped K-fold CV."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import data as D
from .labels import canonical, match_classes
from ..knobs import setting_changes
from ..pipeline.model import EmotionModel, apply_temperature
from ..report import write_atomic, write_csv, write_json
from .calibration import calibration_figures, ece, fit_temperature, nll, plot_reliability
from .card import set_temperature
from .options import comparable_options, hold_out_seed
from .start import Start, resolve_start
from .train import TrainOptions, fit, split_files
from .votes import majority, read_votes


def load_crops(paths: list[str], image_size: int, progress: bool = False) -> np.ndarray:
    """Grey crops [N, S, S] uint8, resized as the folder and video jobs resize detected faces."""
    out = np.empty((len(paths), image_size, image_size), np.uint8)
    for i, p in enumerate(tqdm(paths, desc="loading", unit="img", disable=not progress)):
        out[i] = D.read_grey(p, image_size)
    return out


def accuracy_interval(correct: int, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of an accuracy of `correct` of `n`: where the figure could lie on another
    sample of n images like these (e.g. +-1.2 points at 86 % of 3,439), so a fixed target inside it is neither met
    nor missed by the measurement. (Two models scored on the same images are compared by the images where they
    disagree, a paired test; this interval is too wide for that.)"""
    if n == 0:
        return [float("nan"), float("nan")]
    p, zz = correct / n, z * z / n
    centre = (p + zz / 2) / (1 + zz)
    half = z * math.sqrt(p * (1 - p) / n + zz / (4 * n)) / (1 + zz)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], present: list[int]) -> dict:
    """Accuracy (with its 95 % interval), macro F1 over `present` (the classes with images in the data scored: a
    class without any has no F1, not an F1 of 0), per-class P/R/F1 and the confusion matrix."""
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = pd.DataFrame({"class": classes, "support": cm.sum(1), "predicted": cm.sum(0),
                              "precision": precision, "recall": recall, "f1": f1})
    return {"accuracy": float(tp.sum() / max(cm.sum(), 1)),
            "accuracy_ci": accuracy_interval(int(tp.sum()), int(cm.sum())),
            "macro_f1": float(f1[present].mean()) if present else 0.0, "confusion": cm, "per_class": per_class}


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str, truth: str = "true") -> None:
    from ..report.plots import pyplot

    plt = pyplot()

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.0 * len(classes) + 1.5), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel(truth)
    ax.set_title(title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if rows[i, 0]:
                ax.text(j, i, f"{cm[i, j]}\n{100 * norm[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def faces_per_second(em: EmotionModel, crops: np.ndarray, batch_size: int) -> float:
    em.predict(crops[:batch_size], batch_size)  # trace once; start-up is not throughput
    t = time.perf_counter()
    em.predict(crops, batch_size)
    return len(crops) / (time.perf_counter() - t)


def score(em: EmotionModel, files: D.Labelled, batch_size: int = 64, progress: bool = False) -> dict:
    """Predict every image of `files` and measure; images of classes the model lacks are left out, and said."""
    mapping, lacking, _ = match_classes(em.classes, files.classes)
    keep = np.isin(files.labels, list(mapping))
    if not keep.any():  # a figure of 0 % over no image would read as a measurement
        raise ValueError(f"none of the data's classes {files.classes} is one of the model's {em.classes}: nothing "
                         "to score (is DATA_DIR the folder that holds the class folders?)")
    shown = {canonical(files.classes[j]) for j in np.unique(files.labels)}  # an empty class folder shows none
    unused = [c for c in em.classes if canonical(c) not in shown]
    crops = load_crops([p for p, k in zip(files.paths, keep) if k], em.image_size, progress)
    y_true = np.asarray([mapping[int(k)] for k in files.labels[keep]], dtype=np.int64)
    probs = em.predict(crops, batch_size)
    y_pred = probs.argmax(1)
    # Macro F1 over the classes these images show, not every class folder: a CV fold with no contempt image
    # would otherwise average in a 0 for contempt, capping the fold at 6/7. (Predictions of a class the data
    # lacks are still errors: they lower the recall of the classes shown.)
    m = metrics(y_true, y_pred, em.classes, sorted(set(y_true.tolist())))
    m.update({"images": int(keep.sum()), "left_out": {c: int((files.labels == j).sum())
                                                     for j, c in enumerate(files.classes) if j not in mapping},
              "classes_not_in_model": lacking, "model_classes_not_in_data": unused,
              "faces_per_second": faces_per_second(em, crops, batch_size) if len(crops) else 0.0,
              "y_true": y_true, "y_pred": y_pred, "probs": probs, "paths": [p for p, k in zip(files.paths, keep) if k]})
    return m


def evaluate(model_path: str | Path | None, data_dir: str | Path, out: str | Path, batch_size: int = 64,
             progress: bool = True, flip: bool | None = None, votes: str | Path | None = None,
             temperature: float | None = None) -> dict:
    """Score a saved model on DATA_DIR; write metrics.json, per_class.csv, confusion.csv/.png, predictions.csv and
    the reliability diagram calibration.png. `flip` overrides the card's mirror averaging and `temperature` its
    temperature (None: as the card says). With `votes` (a crowd votes CSV for DATA_DIR's files) the accuracy, ECE
    and NLL against the crowd majority are measured too, on the images with a unique most-voted class."""
    em = EmotionModel.load(model_path)
    if flip is not None:
        em = replace(em, flip=flip)
    if temperature is not None:
        em = replace(em, temperature=temperature)
    out = Path(out)
    if out.exists() and not out.is_dir():  # found before the scoring, not after it
        raise ValueError(f"{out}: --out is a file, not a folder")
    files = D.list_labelled(data_dir)
    # The votes are read before the scoring: a votes file that does not fit DATA_DIR is refused at once.
    scored = [p for p, y in zip(files.paths, files.labels) if y in match_classes(em.classes, files.classes)[0]]
    crowd_of = dict(zip(scored, crowd_majority(scored, votes, data_dir, em.classes))) if votes else None
    m = score(em, files, batch_size, progress)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{Path(em.path).name} on {Path(data_dir).name}" + (" (mirror-averaged)" if em.flip else "")
    crowd = np.asarray([crowd_of[p] for p in m["paths"]], np.int64) if crowd_of is not None else None
    crowd_m = write_outputs(m, em.classes, out, title, crowd)
    cal = calibration_summary(m, em, crowd, votes)
    curves = {"folder labels": (m["probs"], m["y_true"])}
    if crowd is not None:
        c = crowd >= 0
        curves["crowd majority"] = (m["probs"][c], crowd[c])
    plot_reliability(curves, out / "calibration.png", f"{title}, temperature {em.temperature:.3f}")
    result = {**summary_dict(m, str(em.path), str(data_dir)), "flip_average": em.flip, **cal}
    if crowd_m is not None:
        result.update({"crowd_macro_f1": crowd_m["macro_f1"],
                       "crowd_per_class": crowd_m["per_class"].to_dict(orient="records")})
    write_json(result, out / "metrics.json")
    return result


def crowd_metrics(m: dict, crowd: np.ndarray, classes: list[str]) -> dict:
    """The predictions scored against the crowd majority (`crowd`: per image its class index, -1 for none), on the
    images that have one."""
    c = crowd >= 0
    return metrics(crowd[c], m["y_pred"][c], classes, sorted(set(crowd[c].tolist())))


def crowd_majority(paths: list[str], votes_csv: str | Path, data_dir: str | Path, classes: list[str]) -> np.ndarray:
    """Per path: the model-class index of the crowd's unique most-voted class, or -1 (tie, left out as not a face,
    or not in the votes file)."""
    v = read_votes(votes_csv, data_dir)
    top = majority(v.counts, v.classes, classes, str(votes_csv))
    # Matched as real paths: a votes file may name them absolute, relative, or through a link.
    by_path = {os.path.realpath(p): int(t) for p, t in zip(v.paths, top)}
    crowd = np.asarray([by_path.get(os.path.realpath(p), -1) for p in paths], np.int64)
    if len(paths) and not (crowd >= 0).any():
        raise ValueError(f"{votes_csv}: none of the {len(paths)} images scored under {data_dir} has a crowd majority "
                         f"there ({len(v.paths)} files listed, e.g. {v.paths[0]}); are its paths those of this "
                         "folder?")
    return crowd


def calibration_summary(m: dict, em: EmotionModel, crowd: np.ndarray | None = None, votes=None) -> dict:
    """ECE and NLL against the folder labels (and accuracy, ECE, NLL against `crowd`, the crowd majority of each
    image from `votes`, -1 where none), with the model's temperature and, where it is not 1, the same figures
    before it (`*_raw`, temperature 1)."""
    raw = apply_temperature(m["probs"], 1 / em.temperature)  # undoes the temperature: the network's own output
    out = {"temperature": em.temperature, **calibration_figures(m["probs"], m["y_true"])}
    fitted_on = (em.card.get("calibration") or {}).get("target")
    if fitted_on and em.temperature == (em.card.get("inference") or {}).get("temperature"):  # not --temperature
        out["temperature_target"] = fitted_on
    if em.temperature != 1.0:
        out.update(calibration_figures(raw, m["y_true"], "raw_"))
    if crowd is not None:
        c = crowd >= 0
        right = int((m["y_pred"][c] == crowd[c]).sum())
        out.update({"votes": str(votes), "crowd_images": int(c.sum()),
                    "crowd_accuracy": right / int(c.sum()) if c.any() else float("nan"),
                    "crowd_accuracy_ci": accuracy_interval(right, int(c.sum())),
                    **calibration_figures(m["probs"][c], crowd[c], "crowd_")})
        if em.temperature != 1.0:
            out.update(calibration_figures(raw[c], crowd[c], "crowd_raw_"))
    return out


def write_outputs(m: dict, classes: list[str], out: Path, title: str,
                  crowd: np.ndarray | None = None) -> dict | None:
    """per_class.csv, confusion.csv/.png and predictions.csv (each class's probability beside the prediction); with
    `crowd` (the crowd majority per image, -1 for none) also per_class_crowd.csv and confusion_crowd.csv/.png
    against it, and predictions.csv names it. Returns the metrics against the crowd (None without)."""
    write_confusion(m, classes, out, "", f"{title}\naccuracy {100 * m['accuracy']:.2f} %, macro F1 "
                                        f"{m['macro_f1']:.3f}", "folder label")
    probs = m["probs"] if len(m["probs"]) else np.zeros((0, len(classes)))
    pred = pd.DataFrame({"path": m["paths"], "true": [classes[i] for i in m["y_true"]],
                         "predicted": [classes[i] for i in m["y_pred"]],
                         "confidence": probs.max(1) if len(probs) else []})
    if crowd is not None:
        # Empty where the crowd has no unique majority (a tie, not a face, or not in the votes file).
        pred["crowd_majority"] = [classes[i] if i >= 0 else "" for i in crowd]
    cm = crowd_metrics(m, crowd, classes) if crowd is not None else None
    if cm is not None:
        write_confusion(cm, classes, out, "_crowd", f"{title}, against the crowd majority\naccuracy "
                                                    f"{100 * cm['accuracy']:.2f} %, macro F1 {cm['macro_f1']:.3f}",
                        "crowd majority")
    for j, c in enumerate(classes):
        pred[f"p_{c}"] = probs[:, j]
    write_csv(pred, out / "predictions.csv")
    return cm


def write_confusion(m: dict, classes: list[str], out: Path, suffix: str, title: str, truth: str) -> None:
    """per_class{suffix}.csv, confusion{suffix}.csv and confusion{suffix}.png of metrics `m`; `truth` names what the
    rows are (folder label, crowd majority)."""
    cm = pd.DataFrame(m["confusion"], index=pd.Index(classes, name="true"), columns=classes)
    write_atomic(out / f"confusion{suffix}.csv", lambda tmp: cm.to_csv(tmp))
    write_csv(m["per_class"], out / f"per_class{suffix}.csv")
    plot_confusion(m["confusion"], classes, out / f"confusion{suffix}.png", title, truth)


def summary_dict(m: dict, model: str, data: str) -> dict:
    return {"model": model, "data": data, "images": m["images"], "accuracy": m["accuracy"],
            "accuracy_ci": m["accuracy_ci"],
            "macro_f1": m["macro_f1"], "faces_per_second": m["faces_per_second"],
            "classes_not_in_model": m["classes_not_in_model"], "left_out": m["left_out"],
            "model_classes_not_in_data": m["model_classes_not_in_data"],
            "per_class": m["per_class"].to_dict(orient="records")}


def cross_validate(data_dir: str | Path, out: str | Path, folds: int, group_by: str | None, opts: TrainOptions,
                   val_split: float = 0.1, batch_size: int = 64, command: str = "", start: Start | None = None) -> dict:
    """K-fold CV split by group: each fold trains on the other folds (selecting on a group-split part of them)
    with `opts`, and is tested on its own groups, which training never saw. The folds start where `batchemo train`
    with the same options would (by default the shipped model's network), so the figure is the one its users get."""
    start = start or resolve_start(opts)
    opts = start.opts
    print(start.line, flush=True)
    files = D.list_labelled(data_dir)
    classes = [canonical(c) for c in files.classes]
    groups = D.group_keys(files.paths, group_by)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    total_cm = np.zeros((len(classes), len(classes)), np.int64)
    for k, test_idx in enumerate(D.group_folds(groups, folds, opts.seed)):
        done, work = out / f"fold{k}.json", out / f"fold{k}.work"
        fold_opts = replace(opts, seed=opts.seed + k, split_seed=None)  # the fold's seed picks its inner split
        # --folds and --group-by choose the fold's test images: a fold of a 5-fold or ungrouped run is not reused
        setup = json.loads(json.dumps({"options": asdict(fold_opts), "val_split": val_split, "data": str(data_dir),
                                       "folds": folds, "group_by": group_by}))
        if done.exists():  # resumable: a finished fold is not trained again, unless its options were others
            row = json.loads(done.read_text())
            stored = row.get("setup") or {}
            if not setting_changes({**stored, "options": comparable_options(stored.get("options", {}))},
                                   {**setup, "options": comparable_options(setup["options"])}):
                rows.append(row)
                total_cm += np.asarray(row["confusion"])
                continue
            print(f"fold {k + 1}/{folds}: {done} was made with other options; training it again", flush=True)
            shutil.rmtree(work, ignore_errors=True)
        rest = np.setdiff1d(np.arange(len(files.paths)), test_idx)
        inner_tr, inner_va = D.group_split(groups[rest], val_split, opts.seed + k)
        train, val, test = files.subset(rest[inner_tr]), files.subset(rest[inner_va]), files.subset(test_idx)
        assert not set(groups[test_idx]) & set(groups[rest]), "a group on both sides of a fold"
        print(f"fold {k + 1}/{folds}: train {len(train.paths)}, select {len(val.paths)}, test {len(test.paths)} "
              f"images ({len(set(groups[test_idx]))} groups)", flush=True)
        res = fit(train, val, fold_opts, work_dir=work, verbose=False)
        em = EmotionModel.from_keras(res.model, classes, opts.image_size,
                                     {"inference": {"flip_average": opts.flip_average}})
        m = score(em, test, batch_size)
        row = {"fold": k, "test_images": m["images"], "test_groups": int(len(set(groups[test_idx]))),
               "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "epochs_run": res.epochs_run,
               "confusion": m["confusion"].tolist(), "setup": setup}
        print(f"fold {k + 1}/{folds}: accuracy {100 * m['accuracy']:.2f} %, macro F1 {m['macro_f1']:.3f}", flush=True)
        write_json(row, done)
        shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
        total_cm += m["confusion"]
    table = pd.DataFrame([{k: v for k, v in r.items() if k not in ("confusion", "setup")} for r in rows])
    write_csv(table, out / "folds.csv")
    acc = table["accuracy"].to_numpy()
    result = {"data": str(data_dir), "folds": folds, "group_by": group_by, "options": asdict(opts),
              "command": command, "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)),
              "macro_f1_mean": float(table["macro_f1"].mean()),
              "pooled_accuracy": float(np.trace(total_cm) / total_cm.sum())}
    write_json(result, out / "cv.json")
    plot_confusion(total_cm, classes, out / "confusion.png",
                   f"{folds}-fold CV by group on {Path(data_dir).name}: "
                   f"{100 * acc.mean():.1f} ± {100 * acc.std(ddof=1):.1f} %")
    return result


def check_held_out(trained: dict, split: str, images: int, votes) -> None:
    """ValueError unless the split `calibrate` rebuilt is the one training held out, as the card's `data` says
    (the same description and image count): else the temperature would be fitted on images the model trained
    on, and the card would still call them held out. A card without `data.split` has nothing to check against."""
    if not trained.get("split"):
        return
    if trained.get("val_dir"):
        raise ValueError(f"the model trained on all of {trained.get('train_dir')} (it selected on "
                         f"{trained['val_dir']}): calibrate on images it never trained on, with --val-split 0")
    if bool(trained.get("votes")) != bool(votes):
        raise ValueError("the model was trained " + (f"with --votes {trained['votes']}" if trained.get("votes")
                                                      else "without --votes")
                         + ": give calibrate the same, so that its held-out part is the one training left out")
    if split != trained["split"] or images != trained.get("val_images", images):
        raise ValueError(f"this held-out part ({split}, {images} images) is not the one training left out "
                         f"({trained['split']}, {trained.get('val_images')} images): pass the --val-split, "
                         "--group-by and data the model was trained with")


def calibrate(model_path: str | Path, data_dir: str | Path, votes: str | Path | None = None,
              val_split: float = 0.1, seed: int | None = None, group_by: str | None = None, batch_size: int = 64,
              command: str = "", progress: bool = True) -> dict:
    """Fit the model's temperature and store it in its card (`inference.temperature`, `calibration`).

    The data: the part of DATA_DIR (with `votes`: of the files its votes CSV lists) that `batchemo train` held out
    with the same --val-split, --group-by and seed (the card's split seed by default), i.e. images the model did not
    train on; --val-split 0 takes all of DATA_DIR (for a folder set aside for calibration). The target: the crowd
    majority with votes (images with a unique most-voted class), else the folder labels. The network's own output
    (temperature 1, mirror-averaged as the card says) is what the temperature is fitted on."""
    em = EmotionModel.load(model_path)
    seed = hold_out_seed(em.card.get("options", {})) if seed is None else seed
    if val_split > 0:
        _, held, split = split_files(data_dir, TrainOptions(seed=seed), None, val_split, group_by, votes)
        check_held_out(em.card.get("data") or {}, split, len(held.paths), votes)
    else:
        held = D.labelled_from_votes(votes, data_dir) if votes else D.list_labelled(data_dir)
        split = "all of it"
    if held.votes is not None:
        y = majority(held.votes, held.classes, em.classes, str(data_dir))  # matches the classes itself
    else:
        mapping, lacking, _ = match_classes(em.classes, held.classes)
        if lacking:
            raise ValueError(f"{data_dir}: the model has no class {lacking}")
        y = np.asarray([mapping[int(k)] for k in held.labels], np.int64)
    keep = y >= 0
    crops = load_crops([p for p, k in zip(held.paths, keep) if k], em.image_size, progress)
    probs = replace(em, temperature=1.0).predict(crops, batch_size)
    y = y[keep]
    t = fit_temperature(probs, y)
    tempered = apply_temperature(probs, t)
    info = {"temperature": t, "data": f"`{data_dir}`" + (f" with votes `{votes}`" if votes else "")
            + (f", the part held out from training ({split})" if val_split > 0 else ", all of it"),
            "target": "crowd majority (unique most-voted class)" if held.votes is not None else "folder labels",
            "images": int(keep.sum()), "flip_average": em.flip,
            "nll_before": nll(probs, y), "nll_after": nll(tempered, y),
            "ece_before": ece(probs, y), "ece_after": ece(tempered, y),
            "accuracy": float((probs.argmax(1) == y).mean()), "command": command}
    set_temperature(Path(model_path), t, info)
    return info
