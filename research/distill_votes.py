"""Distillation targets as a votes file: the mean prediction of several batchemo models (the teachers) mixed with
the crowd's vote shares, written in the votes CSV format `batchemo train --votes` reads (README, "Training on
crowd votes"), so a GPU machine trains the student without the teachers beside it.

    python research/distill_votes.py OUT.csv DATA_DIR VOTES.csv TEACHER.keras [...] [--distill 0.7]
        [--val-split 0.1] [--split-seed 1] [--group-by REGEX]

Each training row's class columns are 10 x (distill x teachers + (1 - distill) x vote shares), the targets
`--teacher` would make. The rows `batchemo train` holds out with the same --val-split, --split-seed and --group-by
keep the crowd's own votes, so the held-out slice still chooses the epoch and fits the temperature against the
crowd, never against the teachers; the student must be trained with those three options (printed at the end).
OUT keeps VOTES' images under the same file names, which is what the split is drawn from; the script re-reads OUT
and checks that it holds out the same slice. Under OUT a row's most-voted class is the mixed targets' top class,
not the crowd's: with class weights on (`--class-weight-power` above 0) they would be counted from it, so train
the student with `--class-weight-power 0` to match `--teacher`. It also prints the teachers' mean accuracy on the
held-out slice against the unique crowd majority.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from batchemo.report import write_csv  # noqa: E402
from batchemo.training import data as D  # noqa: E402
from batchemo.training.options import TrainOptions  # noqa: E402
from batchemo.training.train import split_files, teacher_targets  # noqa: E402
from batchemo.training.votes import majority, vote_shares  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("votes", type=Path)
    ap.add_argument("teachers", nargs="+")
    ap.add_argument("--distill", type=float, default=0.7)
    ap.add_argument("--val-split", type=float, default=0.1)
    ap.add_argument("--split-seed", type=int, default=1)
    ap.add_argument("--group-by")
    a = ap.parse_args()

    split = lambda votes: split_files(a.data_dir, TrainOptions(seed=a.split_seed), None, a.val_split, a.group_by, votes)
    train, held, desc = split(a.votes)
    teach = teacher_targets(train, a.teachers)
    held_teach = teacher_targets(held, a.teachers)
    y = majority(held.votes)
    ok = y >= 0
    print(f"teachers' mean on the held-out slice ({desc}): {100 * (held_teach.argmax(1) == y)[ok].mean():.2f} % "
          f"of {int(ok.sum())} against the unique crowd majority")

    mixed = a.distill * teach + (1 - a.distill) * train.targets()
    rows = {p: 10 * m for p, m in zip(train.paths, mixed)}
    rows.update({p: v for p, v in zip(held.paths, held.votes)})
    order = D.labelled_from_votes(a.votes, a.data_dir).paths  # VOTES' rows, kept ones only
    counts = np.stack([rows[p] for p in order])
    table = pd.DataFrame(counts.round(5), columns=train.classes)
    table.insert(0, "file", [os.path.relpath(p, a.data_dir) for p in order])
    write_csv(table, a.out)

    train2, held2, _ = split(a.out)
    if held2.paths != held.paths or not np.allclose(held2.votes, held.votes):
        raise SystemExit(f"error: {a.out} would not hold out the same slice with the crowd's votes")
    if not np.allclose(vote_shares(train2.votes), mixed, atol=1e-4):
        raise SystemExit(f"error: {a.out}'s training rows do not read back as the mixed targets")
    print(f"{a.out}: {len(train2.paths)} training rows distilled from {len(a.teachers)} teachers "
          f"(distill {a.distill}), {len(held2.paths)} held-out rows with the crowd's votes; train the student with "
          f"--votes {shlex.quote(str(a.out))} --val-split {a.val_split:g} --split-seed {a.split_seed} "
          "--class-weight-power 0"
          + (f" --group-by {shlex.quote(a.group_by)}" if a.group_by else ""))


if __name__ == "__main__":
    main()
