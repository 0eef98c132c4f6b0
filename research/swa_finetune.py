"""Stochastic weight averaging (Izmailov et al., 2018) on the CPU: a trained batchemo model fine-tuned further at
a constant learning rate with its own recipe (targets, augmentation, erasing from its card), one weight snapshot
per epoch, and the mean of the snapshots scored on the held-out slice. Also the cheapest lever of all: the
model's batch-norm statistics measured again on clean crops (training measured them on augmented, erased ones).

    python research/swa_finetune.py MODEL TRAIN_DIR VOTES --work DIR [--epochs 8] [--lr 1e-4]   # train, resumable
    python research/swa_finetune.py MODEL TRAIN_DIR VOTES --work DIR --score [--candidate-only] [--out OUT.keras]

Averaged weights need batch-norm statistics of their own (the mean of each snapshot's moving statistics is not the
statistics of the mean network), so every averaged candidate gets them recomputed: one pass in training mode over
a random fifth of the clean train crops and their mirrors, as a cumulative average. Each candidate is scored like
`batchemo calibrate` scores a model: the held-out 10 % of train (the card's split seed), mirror-averaged, against the
unique crowd majority. A kill loses at most the epoch under way: re-run the same command and it goes on from the last
snapshot (with a fresh optimizer state). --out saves the mean of all the snapshots (the one candidate, named
before any was scored) with the model's card; fit its temperature again with `batchemo calibrate` and write its
TFLite twin with `batchemo export`.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batchemo.pipeline.model import EmotionModel, read_card  # noqa: E402
from averaging import mean_weights, refresh_batchnorm  # noqa: E402
from batchemo.training.card import write_card  # noqa: E402
from batchemo.training.evaluate import load_crops  # noqa: E402
from batchemo.training.options import TrainOptions, hold_out_seed  # noqa: E402
from batchemo.training.train import datasets, split_files, trainer_of, training_targets  # noqa: E402
from batchemo.training.votes import majority  # noqa: E402


def recipe(card: dict) -> TrainOptions:
    known = {f.name for f in fields(TrainOptions)}
    return TrainOptions(**{k: v for k, v in card.get("options", {}).items() if k in known})


def snapshots(work: Path) -> list[Path]:
    return sorted(work.glob("snap_*.weights.h5"), key=lambda p: int(p.name.split("_")[1].split(".")[0]))


def train_snapshots(model, train, held, opts: TrainOptions, work: Path, epochs: int, lr: float) -> None:
    """Fine-tune at constant `lr`, saving the network's weights after each epoch as work/snap_K.weights.h5."""
    import keras

    done = snapshots(work)
    start = len(done)
    if start >= epochs:
        return
    if done:
        model.load_weights(done[-1])
    keras.utils.set_random_seed(opts.seed + start)  # a resumed run shuffles anew rather than repeating epoch 1
    train_y, held_y, loss, accuracy = training_targets(train, held, opts)
    train_ds, _, spe = datasets(train, held, opts, train_y, held_y)
    model.get_layer("base").trainable = True
    trainer = trainer_of(model, opts)
    trainer.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[accuracy(name="accuracy")],
                    steps_per_execution=spe)
    for k in range(start, epochs):
        t = time.time()
        h = trainer.fit(train_ds, epochs=1, verbose=0, shuffle=False)
        tmp = work / f".snap_{k + 1}.weights.h5"
        model.save_weights(tmp)
        tmp.rename(work / f"snap_{k + 1}.weights.h5")
        print(f"epoch {k + 1}/{epochs}: loss {h.history['loss'][-1]:.4f}, {time.time() - t:.0f} s", flush=True)


def main() -> None:
    import keras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("train_dir")
    ap.add_argument("votes")
    ap.add_argument("--work", required=True, help="folder for the snapshots (resume: the same folder)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--score", action="store_true", help="score the snapshots there are; train nothing")
    ap.add_argument("--candidate-only", action="store_true",
                    help="score only the given model and the mean of all snapshots, not each snapshot and running mean")
    ap.add_argument("--out", help="save the SWA model (mean of all snapshots) here (.keras), with the model's card")
    a = ap.parse_args()
    card = read_card(Path(a.model))
    opts = recipe(card)
    train, held, _ = split_files(a.train_dir, TrainOptions(seed=hold_out_seed(card["options"])), None, 0.1, None,
                                 a.votes)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if not a.score:
        train_snapshots(keras.saving.load_model(a.model, compile=False), train, held, opts, work, a.epochs, a.lr)
    y = majority(held.votes, held.classes, card["classes"], a.votes)
    keep = y >= 0
    size = card["input"]["image_size"]
    held_crops, y = load_crops([p for p, k in zip(held.paths, keep) if k], size), y[keep]
    # BN statistics from a random fifth of train (5,140 crops and their mirrors): their average settles long before.
    pick = np.random.default_rng(1).permutation(len(train.paths))[:len(train.paths) // 5]
    bn_crops = load_crops([train.paths[i] for i in pick], size)

    model = keras.saving.load_model(a.model, compile=False)
    # Scored as the jobs classify (mirror-averaged) with the network's own output; the traced call reads the
    # model's variables, so every weight set below is what it scores.
    em = replace(EmotionModel.from_keras(model, card["classes"], size), flip=True, temperature=1.0)
    print(f"held-out {len(y)} images (mirror-averaged, against the unique crowd majority):")

    def report(name: str) -> None:
        acc = float((em.predict(held_crops, 256).argmax(1) == y).mean())
        print(f"  {name}: {100 * acc:.2f} % ({round(acc * len(y))} right)", flush=True)

    report("the model given")
    refresh_batchnorm(model, bn_crops)
    report("the model given, batch-norm statistics from clean crops")
    taken = []
    snaps = snapshots(work)
    for k, snap in enumerate(snaps, 1):
        model.load_weights(snap)
        taken.append(model.get_weights())
        if a.candidate_only and k < len(snaps):
            continue
        report(f"snapshot {k}")
        if k >= 2:
            model.set_weights(mean_weights(taken))
            refresh_batchnorm(model, bn_crops)
            report(f"mean of snapshots 1-{k}")
    if a.out and len(taken) >= 2:
        # The SWA model is the mean of every snapshot, decided before any was scored: picking the best-scoring
        # line above would fit the held-out slice that judges it.
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        # The given model's measurements, temperature and notes are not this network's: left out.
        mine = {k: v for k, v in card.items() if k not in ("evaluation", "calibration", "notes")}
        mine["inference"] = {k: v for k, v in card.get("inference", {}).items() if k != "temperature"}
        write_card(out, dict(mine, model_file=out.name,
                             swa={"from": a.model, "lr": a.lr, "snapshots": len(taken),
                                  "batchnorm": "measured again on a fifth of the clean train crops and mirrors"}))
        print(f"{out}: the mean of {len(taken)} snapshots")


if __name__ == "__main__":
    main()
