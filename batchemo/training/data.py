"""Labelled image folders (one sub-folder per class): listing, group-aware splits and the batches that feed
training (a tf.data pipeline on TensorFlow, in-memory arrays on the other Keras backends)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline.files import IMAGE_EXTENSIONS


@dataclass
class Labelled:
    """Files of a labelled folder with integer labels into `classes`; with crowd votes (`votes`, [N, C] counts in
    `classes` order) the label is the most-voted class (first on ties) and the targets are the vote shares."""

    paths: list[str]
    labels: np.ndarray
    classes: list[str]
    votes: np.ndarray | None = None

    def subset(self, index: np.ndarray) -> "Labelled":
        return Labelled([self.paths[i] for i in index], self.labels[index], self.classes,
                        None if self.votes is None else self.votes[index])

    def targets(self) -> np.ndarray:
        """Training targets [N, C]: the vote distribution with votes, else one-hot labels."""
        if self.votes is not None:
            from .votes import vote_shares  # here, as in labelled_from_votes: votes needs pandas, folders do not

            return vote_shares(self.votes)
        return np.eye(len(self.classes), dtype=np.float32)[self.labels]

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def list_labelled(data_dir: str | Path, classes: list[str] | None = None) -> Labelled:
    """List DATA_DIR/<class>/* images; classes are the sorted sub-folder names unless given."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of class sub-folders")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = list(classes) if classes is not None else found
    if not classes:
        raise ValueError(f"{root}: no class sub-folders found")
    paths: list[str] = []
    labels: list[int] = []
    for i, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            # Hidden files and folders are not examples: macOS's `._x.jpg` twins, `.ipynb_checkpoints/` copies.
            hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
            if not hidden and p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(str(p))
                labels.append(i)
    if not paths:
        raise ValueError(f"{root}: no images in its class sub-folders")
    return Labelled(paths, np.asarray(labels, dtype=np.int64), classes)


def labelled_from_votes(votes_csv: str | Path, data_dir: str | Path, classes: list[str] | None = None,
                        verbose: bool = False) -> Labelled:
    """The files of a votes CSV (see `votes.read_votes`) with their counts; `classes` (canonical names) fixes the
    order, e.g. the training side's for a validation votes file."""
    from .votes import read_votes

    v = read_votes(votes_csv, data_dir)
    counts = v.counts
    if classes is not None and list(classes) != v.classes:
        missing = [c for c in classes if c not in v.classes]
        extra = [c for c in v.classes if c not in classes]
        if missing or extra:
            raise ValueError(f"{votes_csv}: its classes {v.classes} differ from {list(classes)}")
        counts = counts[:, [v.classes.index(c) for c in classes]]
    else:
        classes = v.classes
    if verbose:
        print(f"{votes_csv}: {len(v.paths)} images kept; left out {v.excluded}; votes dropped {v.dropped_votes}",
              flush=True)
    return Labelled(v.paths, counts.argmax(1).astype(np.int64), list(classes), counts)


def group_keys(paths: list[str], pattern: str | None) -> np.ndarray:
    """The group of each file: what `pattern`'s first group (or whole match) extracts from its file name.

    Without a pattern every file is its own group. A file name the pattern does not match is an error:
    silently making it its own group would let one subject leak across a split.
    """
    if not pattern:
        return np.asarray(paths)
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"--group-by {pattern!r} is not a regular expression ({e})") from None
    keys = []
    for p in paths:
        m = rx.search(Path(p).name)
        if m is None:
            raise ValueError(f"{p}: file name does not match --group-by {pattern!r}")
        keys.append(m.group(1) if m.groups() else m.group(0))
    return np.asarray(keys)


def group_split(groups: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) such that no group is on both sides; about `val_fraction` of files in val."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(unique)
    target = val_fraction * len(groups)
    val_groups: set = set()
    taken = 0
    for g in unique:
        if taken >= target:
            break
        val_groups.add(g)
        taken += int((groups == g).sum())
    is_val = np.isin(groups, list(val_groups))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def group_folds(groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K lists of test indices, whole groups each, balanced in file count (largest groups first)."""
    unique, sizes = np.unique(groups, return_counts=True)
    if len(unique) < k:
        raise ValueError(f"{k} folds need at least {k} groups, found {len(unique)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of = {}
    load = np.zeros(k)
    for i in order:
        f = int(np.argmin(load))
        fold_of[unique[i]] = f
        load[f] += sizes[i]
    assign = np.asarray([fold_of[g] for g in groups])
    return [np.flatnonzero(assign == f) for f in range(k)]


def class_weights(labels: np.ndarray, n_classes: int, power: float = 0.5) -> dict[int, float]:
    """Inverse-frequency weights raised to `power` (1 = fully balanced, 0.5 = softened), mean 1 over files."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / n_classes) ** power, 0.0)
    w = w / (w[labels].mean() if len(labels) else 1.0)
    return {i: float(w[i]) for i in range(n_classes)}


def image_dataset(files: Labelled, image_size: int, batch_size: int, shuffle: bool, seed: int,
                  cache: bool = True, targets: np.ndarray | None = None):
    """A tf.data pipeline of (uint8-valued float32 grey images [N, S, S, 1], int labels), cached and prefetched.
    `targets` [N, C] (class probabilities, e.g. a teacher's) replace the int labels."""
    import tensorflow as tf

    def load(path, label):
        raw = tf.io.read_file(path)
        img = tf.io.decode_image(raw, channels=1, expand_animations=False)
        # As the jobs' crop_faces: area to shrink, bilinear to enlarge (area enlarges as nearest-neighbour, so
        # a model trained on small crops, e.g. --save-faces ones, would learn blocks the jobs never show it).
        small = tf.reduce_min(tf.shape(img)[:2]) < image_size
        img = tf.cond(small, lambda: tf.image.resize(img, (image_size, image_size), method="bilinear"),
                      lambda: tf.image.resize(img, (image_size, image_size), method="area"))
        return tf.cast(tf.round(img), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices((files.paths, files.labels if targets is None else targets))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(files.paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def read_grey(path: str, image_size: int) -> np.ndarray:
    """One image as a grey uint8 [S, S] array, resized as the jobs resize a face crop (`crop_faces`)."""
    import cv2

    from ..pipeline.model import crop_faces

    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    if img.shape != (image_size, image_size):
        img = crop_faces(img, np.array([[0, 0, img.shape[1], img.shape[0]]]), image_size)[0]
    return img


def array_batches(files: Labelled, image_size: int, batch_size: int, shuffle: bool, seed: int,
                  targets: np.ndarray | None = None):
    """The batches of `image_dataset`, held in memory as a Keras PyDataset, for backends without tf.data (JAX on
    a GPU)."""
    import keras

    x = np.stack([read_grey(p, image_size) for p in files.paths])[..., None]
    y = files.labels if targets is None else targets

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(y)) if shuffle else np.arange(len(y))

        def __len__(self):
            return int(np.ceil(len(y) / batch_size))

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            return x[idx].astype(np.float32), y[idx]

        def on_epoch_end(self):
            if shuffle:
                self.order = self.rng.permutation(len(y))

    return Batches()
