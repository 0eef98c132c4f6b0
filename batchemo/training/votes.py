"""Crowd votes (FER+ style): a CSV of per-image vote counts becomes soft training targets and a crowd majority.

The format (documented in docs/model.md, "Crowd votes and calibrated probabilities"):

    file,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
    train/happy/Training_10019449.jpg,0,10,0,0,0,0,0,0,0,0

- `file`: the image's path relative to the data folder given with it, or to that folder's parent when the path
  begins with the folder's own name (FER+'s `train/happy/...` beside `fer2013/train`). A listed file that does not
  exist is an error.
- One column of vote counts per emotion class, under any alias spelling (`anger`, `happiness`, `sadness` ...);
  the classes are the model's, sorted by canonical name as class folders are.
- `contempt` and `unknown` (an ambiguous expression) are not among our seven classes: their votes are dropped and
  the remaining votes renormalised.
- `NF` (not a face): an image whose NF count is at least every other column's count is not an emotion example and
  is left out; otherwise its NF votes are dropped like contempt's. An image with no vote left among the classes is
  left out too.
- Columns ending in `_row` or `_id` (e.g. FER+'s `fer2013_row`) are identifiers and ignored; any other column is an
  error (a typo must not silently drop a class).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .labels import canonical, match_classes

DROPPED = ("contempt", "unknown")  # votes for categories outside the model's classes: dropped, rest renormalised
NOT_A_FACE = ("nf", "not_a_face", "notface")


@dataclass
class Votes:
    """Vote counts of the kept images, in `classes` order; `excluded` says how many rows were left out, and why."""

    paths: list[str]
    counts: np.ndarray  # [N, C] float32 votes among `classes` (contempt, unknown, NF dropped)
    classes: list[str]
    excluded: dict[str, int] = field(default_factory=dict)
    dropped_votes: dict[str, int] = field(default_factory=dict)

    @property
    def distribution(self) -> np.ndarray:
        """Soft targets: each row's votes over the classes, summing to 1."""
        return vote_shares(self.counts)


def vote_shares(counts: np.ndarray) -> np.ndarray:
    """Each row's votes over the classes, summing to 1 (float32): the soft targets training is given."""
    return (counts / counts.sum(1, keepdims=True)).astype(np.float32)


def _is_identifier(col: str) -> bool:
    c = col.strip().lower()
    return c in ("id", "row") or c.endswith("_row") or c.endswith("_id")


def read_votes(csv: str | Path, data_dir: str | Path) -> Votes:
    """Read a votes CSV whose files lie under `data_dir` (see the module doc for the format and the rules)."""
    csv, root = Path(csv), Path(data_dir)
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: votes file not found")
    try:
        # Blank lines kept, then dropped, so that a row's index + 2 stays its line in the file.
        df = pd.read_csv(csv, dtype={"file": str}, skip_blank_lines=False).dropna(how="all")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{csv}: not a readable votes CSV ({str(e).strip().splitlines()[-1]})") from None
    if "file" not in df.columns:
        raise ValueError(f"{csv}: no `file` column (columns: {', '.join(df.columns)})")
    class_cols: dict[str, str] = {}
    dropped_cols, nf_cols, unknown_cols = [], [], []
    from .labels import ALIASES

    for col in df.columns:
        if col == "file" or _is_identifier(col):
            continue
        key = col.strip().lower()
        if key in NOT_A_FACE:
            nf_cols.append(col)
        elif key in DROPPED:
            dropped_cols.append(col)
        elif key in ALIASES:
            name = canonical(col)
            if name in class_cols:
                raise ValueError(f"{csv}: columns {class_cols[name]!r} and {col!r} both count class {name!r}")
            class_cols[name] = col
        else:
            unknown_cols.append(col)
    if unknown_cols:
        raise ValueError(f"{csv}: unknown columns {unknown_cols}: expected file, one vote column per class "
                         f"(e.g. {', '.join(sorted(set(ALIASES.values()) - set(DROPPED)))}), contempt, unknown, NF "
                         "and identifier columns ending in _row or _id")
    if len(class_cols) < 2:
        raise ValueError(f"{csv}: needs vote columns for at least two classes, found {list(class_cols)}")
    classes = sorted(class_cols)
    count_cols = [class_cols[c] for c in classes] + dropped_cols + nf_cols
    values = df[count_cols].apply(pd.to_numeric, errors="coerce")
    v = values.to_numpy(np.float64)
    bad = ~np.isfinite(v).all(axis=1) | (v < 0).any(axis=1) | df["file"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{csv}: line {_line(df, i)}: vote counts must be finite numbers >= 0 and `file` given "
                         f"({df.iloc[i].to_dict()}); {int(bad.sum())} such rows")
    twice = df["file"].duplicated(keep=False).to_numpy()
    if twice.any():  # two rows for one image: which votes are its own?
        rows = np.flatnonzero(df["file"].to_numpy() == df["file"].to_numpy()[np.flatnonzero(twice)[0]])
        raise ValueError(f"{csv}: {df['file'].iloc[rows[0]]!r} is listed on lines "
                         f"{', '.join(str(_line(df, i)) for i in rows)}; {int(twice.sum())} rows name a file "
                         "listed more than once")
    n_cls = len(classes)
    counts = v[:, :n_cls]
    others = v[:, n_cls:n_cls + len(dropped_cols)]
    nf = v[:, n_cls + len(dropped_cols):].sum(1) if nf_cols else np.zeros(len(df))
    top_other = np.max(np.concatenate([counts, others], axis=1), axis=1)
    not_face = (nf > 0) & (nf >= top_other)
    empty = ~not_face & (counts.sum(1) <= 0)
    keep = ~not_face & ~empty
    if not keep.any():
        raise ValueError(f"{csv}: no image left to learn from or score: of {len(df)} rows, {int(not_face.sum())} "
                         f"are not a face (NF the most votes) and {int(empty.sum())} have no vote for a class")
    paths = [_resolve(f, root) for f in df["file"][keep]]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{csv}: {len(missing)} listed files do not exist under {root} (or its parent), "
                                f"e.g. {missing[0]}")
    excluded = {"not_a_face": int(not_face.sum()), "no_class_votes": int(empty.sum())}
    dropped = {c: int(df[c][keep].sum()) for c in dropped_cols + nf_cols}
    return Votes(paths, counts[keep].astype(np.float32), classes, excluded, dropped)


def _line(df: pd.DataFrame, i: int) -> int:
    """The line in the file of `df`'s i-th row (its index counts rows from 0, below the header line)."""
    return int(df.index[i]) + 2


def _resolve(file: str, root: Path) -> str:
    """`file` under `root`, or under root's parent when it begins with root's own name (FER+'s `train/...`)."""
    p = Path(file)
    if p.is_absolute():
        return str(p)
    direct = root / p
    if not direct.exists() and p.parts and p.parts[0] == root.name:
        return str(root.parent / p)
    return str(direct)


def majority(counts: np.ndarray, classes: list[str] | None = None, model_classes: list[str] | None = None,
             source: str = "votes") -> np.ndarray:
    """The crowd majority: per row the class with the unique most votes, -1 where the top is shared or there is no
    vote. An index into the counts' columns; with their names `classes` and a model's `model_classes`, an index
    into the model's classes (matched through aliases). A voted class the model lacks is an error, named with
    `source`: its images could never be predicted right."""
    top = counts.max(1, keepdims=True)
    unique = (counts == top).sum(1) == 1
    best = np.where(unique & (top[:, 0] > 0), counts.argmax(1), -1)
    if model_classes is None:
        return best
    mapping, lacking, _ = match_classes(model_classes, classes)
    if lacking:
        raise ValueError(f"{source}: the model has no class {lacking}")
    to_model = np.asarray([mapping[j] for j in range(len(classes))] + [-1], np.int64)
    return to_model[best]  # -1 indexes the appended -1: no majority stays none
