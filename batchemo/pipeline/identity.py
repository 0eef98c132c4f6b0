"""Who is who: face-identity descriptors and the clustering that gives each person one number (`--people`).

The engine under `--people`, in four steps a job runs after its pass:

1. `pick_faces(frames)`: per track (or photo face) the few rows worth describing: found by a cascade (not
   followed or held), big enough, best `face_score`, spread over the track.
2. `embed_faces(image, boxes)`: on the decoded images of those rows, dlib's 5-point alignment on each Haar box
   and dlib's face-recognition ResNet: a 128-d descriptor per face (NaN where the quality gate refuses the face:
   `face_quality`).
3. `same_frame_pairs(frames, groups)`: groups seen together on one frame, which can never be one person.
4. `cluster_people(descriptors_per_group, cannot_link)`: average linkage on each group's mean descriptor at
   `PEOPLE_THRESHOLD`; person numbers 0, 1, 2... in the order the groups are given, None for a group with no
   usable face.

dlib comes from the `people` extra (`pip install "batchemo[people]"`: dlib-bin, Boost Software License 1.0, and
face-recognition-models, CC0 / public domain). It is imported inside the functions that need it, so this module
imports (and `cluster_people`, `pick_faces` and `same_frame_pairs` work) without the extra. Only two model files
are ever loaded: `shape_predictor_5_face_landmarks.dat` (dlib's own 5-point data set) and
`dlib_face_recognition_resnet_model_v1.dat`. The package also ships `shape_predictor_68_face_landmarks.dat`, trained
on iBUG 300-W, whose licence excludes commercial use: never load it.

Figures below are from the measurements for issue 37 (the real clips and photos in ../shared: 30 people in 36
tracks and photo faces, labelled by eye; benchmarks/bench_people.py, benchmarks/results/people.md).
"""
from __future__ import annotations

import importlib.util
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

INSTALL_HINT = 'pip install "batchemo[people]"'
# The only model files batchemo loads (see the module doc for why never the 68-point one).
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_SIZE = 128
# dlib's chip: the aligned face plus 25 % of its size around it (dlib's default; the threshold below was measured
# with it). No jitter: each jitter costs one more full descriptor (~0.2 s here) for a small gain.
PADDING = 0.25
JITTERS = 0

# Euclidean distance between group means at which two groups are one person. Measured on ../shared
# (benchmarks/bench_people.py, 5 faces per track behind the quality gate): the same person's groups are at most 0.446
# apart (the pyfeat man, video vs photo), different people never seen together at least 0.509 (two seen together
# came to 0.475, kept apart by their cannot-link). dlib's usual 0.6 merges 3 pairs of people there, 0.55 also 3;
# the research run without the gate (every face) found 7 and 5.
PEOPLE_THRESHOLD = 0.5

# The quality gate. Where the descriptor fails on ../shared it is on dim, flat or turned faces (the dark Hamilton
# audience: two people 0.43 apart; Obama in dim profile 0.66 from his own photos); every face that passes these
# tests kept its person there (benchmarks/results/people.md).
MIN_EMBED_SIDE = 48  # px: the smallest faces that matched here were 51-58 px wide (the facenet video's woman, across
# two tracks, 0.38 apart); dlib scales the face up to its 150-px chip, and below ~50 px there is nothing measured.
MIN_BRIGHTNESS = 50.0  # mean grey level in the box: clean faces measured >= 70, the failing dim ones 24-40.
MIN_CONTRAST = 25.0  # grey standard deviation in the box: clean faces >= 30, the dim crowd 17-18 (fog, glare, blur
# flatten a face the same way).
MAX_TURN = 0.4  # the nose's offset from the eyes' midpoint along the eye line, in eye distances (5-point landmarks):
# frontal faces that kept their person <= 0.34; every face over 0.4 here (all profile-cascade ones) was nearer
# another person than its own.
CASCADE = ("detected", "profile")  # found_by values of rows a cascade found (not `followed`, not `held`)


class PeopleUnavailable(RuntimeError):
    """The `people` extra (dlib and its face models) is not installed; the message is one line naming the fix."""


def _unavailable(what: str) -> PeopleUnavailable:
    return PeopleUnavailable(f"--people needs dlib and its face models ({what}): {INSTALL_HINT}")


def _dlib():
    try:
        import dlib
    except ImportError as e:  # not installed, or a wheel that does not load on this machine
        raise _unavailable(f"dlib does not import: {e}") from None
    return dlib


def model_dir() -> Path:
    """The folder of face-recognition-models' files, found without importing the package: its __init__ imports
    pkg_resources, which new setuptools no longer ship."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _unavailable("face-recognition-models is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for name in (LANDMARKS_FILE, DESCRIPTOR_FILE):
        if not (folder / name).is_file():
            raise _unavailable(f"{folder / name} is missing")
    return folder


def require_people() -> None:
    """Raises PeopleUnavailable (one line, naming the pip command) unless dlib imports and both model files are
    there. Cheap (an import of dlib, ~0.04 s the first time, and two file checks); loads no model."""
    _dlib()
    model_dir()


class _Models:
    """The 5-point predictor and the ResNet, loaded once per process (~0.6 s, ~30 MB). dlib's network keeps its
    working buffers in the model object, so calls into one model are serialised by a lock; a descriptor takes
    ~0.2 s and the lock is held only for that, so the job's other threads (decoding, the emotion model) go on."""

    _lock = threading.Lock()
    _loaded: tuple | None = None

    @classmethod
    def get(cls) -> tuple:
        if cls._loaded is None:
            with cls._lock:
                if cls._loaded is None:
                    dlib = _dlib()
                    folder = model_dir()
                    cls._loaded = (dlib, dlib.shape_predictor(str(folder / LANDMARKS_FILE)),
                                   dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_FILE)), threading.Lock())
        return cls._loaded


@dataclass(frozen=True)
class FaceQuality:
    """What the gate measured on one face box: `side` (px, the box's shorter side), `brightness` and `contrast`
    (mean and standard deviation of its grey levels), `turn` (nose offset in eye distances; None until landmarks
    were found). `problem` names the first test it fails, None where it is good enough to describe."""

    side: int
    brightness: float
    contrast: float
    turn: float | None = None

    @property
    def problem(self) -> str | None:
        if self.side < MIN_EMBED_SIDE:
            return "small"
        if self.brightness < MIN_BRIGHTNESS:
            return "dark"
        if self.contrast < MIN_CONTRAST:
            return "flat"
        if self.turn is not None and self.turn > MAX_TURN:
            return "turned"
        return None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _box(box) -> tuple[int, int, int, int]:
    x, y, w, h = (int(round(float(v))) for v in box)
    return x, y, w, h


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def _rgb(image: np.ndarray) -> np.ndarray:
    """The contiguous uint8 RGB image dlib wants, from batchemo's BGR (or grey, or BGRA) frames."""
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _stats(grey: np.ndarray, box) -> FaceQuality:
    x, y, w, h = _box(box)
    crop = grey[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
    if crop.size == 0:
        return FaceQuality(min(w, h), 0.0, 0.0)
    mean, std = cv2.meanStdDev(crop)
    return FaceQuality(min(w, h), float(mean[0, 0]), float(std[0, 0]))


def _turn(shape) -> float:
    """|nose offset| from the eyes' midpoint along the eye line, in eye distances (roll does not change it). dlib's
    5 points: 0-1 the corners of one eye, 2-3 the other's, 4 the base of the nose."""
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)
    a, b = p[0:2].mean(0), p[2:4].mean(0)
    axis = b - a
    span = float(np.hypot(*axis))
    if span < 1e-6:
        return float("inf")
    return abs(float(np.dot(p[4] - (a + b) / 2, axis)) / span ** 2)


def _rect(dlib, box):
    x, y, w, h = _box(box)
    return dlib.rectangle(x, y, x + w, y + h)  # as measured (issue 37): right/bottom one past the box


def face_quality(image_bgr: np.ndarray, box, *, landmarks: bool = False) -> FaceQuality:
    """The gate's measures for one Haar box (x, y, w, h in the image's pixels). With `landmarks` (needs the
    extra) the 5-point landmarks are found too (1-3 ms) and `turn` is filled in; `embed_faces` always does."""
    q = _stats(_grey(image_bgr), box)
    if not landmarks or q.side <= 0:
        return q
    dlib, predictor, _, lock = _Models.get()
    with lock:
        shape = predictor(_rgb(image_bgr), _rect(dlib, box))
    return FaceQuality(q.side, q.brightness, q.contrast, _turn(shape))


def embed_faces(image_bgr: np.ndarray, boxes, *, gate: bool = True) -> np.ndarray:
    """dlib's 128-d identity descriptor (float32, Euclidean distances) of each box in `boxes` (N x 4: x, y, w, h)
    on one image, as a [N, 128] array in the boxes' order. With `gate` (the default) a face that fails
    `face_quality` (small, dark, flat, turned) is not described and its row is NaN; without it every box with a
    positive size is. ~0.2 s per described face on one core (dlib-bin has no BLAS); the alignment ~2 ms.
    Raises PeopleUnavailable without the extra."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    out = np.full((len(boxes), DESCRIPTOR_SIZE), np.nan, np.float32)
    if not len(boxes):
        return out
    dlib, predictor, recogniser, lock = _Models.get()
    grey, rgb = _grey(image_bgr), _rgb(image_bgr)
    for i, box in enumerate(boxes):
        q = _stats(grey, box)
        if q.side <= 0 or (gate and not q.ok):
            continue
        rect = _rect(dlib, box)
        with lock:
            shape = predictor(rgb, rect)
        if gate and not FaceQuality(q.side, q.brightness, q.contrast, _turn(shape)).ok:
            continue
        with lock:
            out[i] = np.asarray(recogniser.compute_face_descriptor(rgb, shape, JITTERS, PADDING), np.float32)
    return out


def pick_faces(rows: pd.DataFrame, k: int = 5, *, min_side: int = MIN_EMBED_SIDE) -> pd.DataFrame:
    """Per group of `rows` (a frames.csv or faces.csv table: a group is one `face` of one `source`, i.e. a track of
    a video or a face of a photo) the at most `k` rows worth describing, as a slice of `rows` (its index kept, in
    its order). Only rows a cascade found (`found_by` detected or profile: a followed or held box is where the face
    was guessed to be), at least `min_side` px. Frontal (`detected`) rows first: profile rows only fill up a track
    with fewer than `k` frontal ones (on ../shared 17 of 59 profile-cascade faces were nearer another person than
    their own, 5 of 615 frontal ones). Among those, spread over the track: its frame span cut into `k` equal
    parts, the highest `face_score` of each part (earliest frame on a tie), parts with no row filled with the next
    best rows. A group with no such row has none (its person will be None)."""
    if rows.empty:
        return rows
    ok = rows["found_by"].isin(CASCADE) & (np.minimum(rows["w"], rows["h"]) >= min_side)
    cand = rows.loc[ok, ["source", "face", "frame", "found_by", "face_score"]].copy()
    cand["_pos"] = np.arange(len(rows))[ok.to_numpy()]
    chosen: list[int] = []
    for _, g in cand.groupby(["source", "face"], sort=False):
        g = g.sort_values(["frame", "_pos"], kind="stable")
        frontal, profile = g[g["found_by"] == "detected"], g[g["found_by"] != "detected"]
        if len(frontal) < k:
            fill = profile.sort_values("face_score", ascending=False, kind="stable").head(k - len(frontal))
            pool = pd.concat([frontal, fill]).sort_values(["frame", "_pos"], kind="stable")
        else:
            pool = frontal
        chosen += _spread(pool, k)
    keep = np.zeros(len(rows), bool)
    keep[chosen] = True
    return rows[keep]


def _spread(pool: pd.DataFrame, k: int) -> list[int]:
    """Positions (`_pos`) of at most k rows of `pool` (sorted by frame): the best-scored of each of k equal parts
    of its frame span, then the best of the rest."""
    if len(pool) <= k:
        return pool["_pos"].tolist()
    frames = pool["frame"].to_numpy()
    score = pool["face_score"].fillna(-1.0).to_numpy()
    edges = np.linspace(frames[0], frames[-1] + 1, k + 1)
    part = np.clip(np.searchsorted(edges, frames, side="right") - 1, 0, k - 1)
    # stable order: best score first, then earliest frame (pool is in frame order)
    order = np.argsort(-score, kind="stable")
    taken: list[int] = []
    seen: set[int] = set()
    for i in order:
        if part[i] not in seen:
            seen.add(part[i])
            taken.append(int(i))
    for i in order:
        if len(taken) >= k:
            break
        if int(i) not in taken:
            taken.append(int(i))
    return pool["_pos"].to_numpy()[sorted(taken[:k])].tolist()


def same_frame_pairs(rows: pd.DataFrame, groups: Sequence[tuple[str, int]]) -> set[tuple[int, int]]:
    """Cannot-link pairs for `cluster_people`: (i, j), i < j, for every two groups (`groups[i]` a (source, face)
    key) that a cascade found on one frame of one source (two faces on screen at once are two people; two faces of
    one photo too). Only cascade-found rows count: a held or followed box may be a face that has already gone, or a
    track that has slid onto the other face (the Hamilton clip, frame 211)."""
    index = {(str(s), int(f)): i for i, (s, f) in enumerate(groups)}
    if rows.empty or len(index) < 2:
        return set()
    seen = rows.loc[rows["found_by"].isin(CASCADE), ["source", "frame", "face"]]
    ids = pd.Series([index.get((str(s), int(f)), -1) for s, f in zip(seen["source"], seen["face"])],
                    index=seen.index)
    seen = seen.assign(_g=ids)
    seen = seen[seen["_g"] >= 0]
    pairs: set[tuple[int, int]] = set()
    together = seen.groupby(["source", "frame"], sort=False)["_g"].agg(lambda g: tuple(sorted(set(g))))
    for ids_ in set(together):  # many frames show the same set of faces: each set once
        pairs.update(itertools.combinations(ids_, 2))
    return pairs


def group_descriptor(descriptors: np.ndarray) -> np.ndarray | None:
    """The mean of a group's usable descriptors (rows without NaN), or None where it has none."""
    d = np.asarray(descriptors, dtype=np.float64)
    if d.size == 0:
        return None
    d = d.reshape(-1, d.shape[-1])
    d = d[np.isfinite(d).all(axis=1)]
    return d.mean(axis=0) if len(d) else None


def cluster_people(descriptors_per_group: Sequence[np.ndarray], cannot_link: Iterable[tuple[int, int]] = (), *,
                   threshold: float = PEOPLE_THRESHOLD) -> list[int | None]:
    """A person number per group (a track, or a photo's face), from its descriptors (a [k, 128] array, NaN rows
    ignored; `embed_faces` of its `pick_faces` rows). Groups are clustered on their mean descriptors by average
    linkage (the distance between two clusters is the mean of their members' pairwise Euclidean distances; the
    closest two merge while that is <= `threshold`). Two groups in a `cannot_link` pair (indices into the list,
    e.g. `same_frame_pairs`) never end up in one cluster, nor do clusters holding them. Persons are numbered 0, 1,
    2... in the order of their first group in the list; a group with no usable descriptor gets None. The same
    input always gives the same numbers."""
    means = [group_descriptor(d) for d in descriptors_per_group]
    live = [i for i, m in enumerate(means) if m is not None]
    out: list[int | None] = [None] * len(means)
    if not live:
        return out
    pos = {g: i for i, g in enumerate(live)}
    dist = _distances(np.stack([means[i] for i in live]))
    for a, b in cannot_link:
        if a in pos and b in pos and a != b:
            dist[pos[a], pos[b]] = dist[pos[b], pos[a]] = np.inf
    root = _average_linkage(dist, threshold)
    number: dict[int, int] = {}
    for i, g in enumerate(live):  # numbered in the order of the groups' first appearance
        out[g] = number.setdefault(int(root[i]), len(number))
    return out


def _distances(x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Euclidean distance matrix (float32, inf on the diagonal), computed in float64 in row chunks so that the
    temporaries stay at chunk x n."""
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((n, n), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d2 = sq[s:e, None] + sq[None, :] - 2.0 * (x[s:e] @ x.T)
        out[s:e] = np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(out, np.inf)
    return out


def _average_linkage(dist: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy agglomerative clustering with average linkage on `dist` (n x n, float32, modified in place; inf: may
    never merge), merging the closest pair while it is <= threshold. Returns each item's cluster (the lowest index
    among its members). The distance of a merged cluster to another is the size-weighted mean of its two parts'
    (Lance-Williams), so an inf (cannot-link) in either part stays inf. Each row's nearest neighbour is cached:
    average linkage never brings a cluster nearer to a third one than the nearer of its two parts, so only rows
    whose nearest was one of the merged pair are looked at again. Memory: the one n x n float32 matrix (36 MB for
    3,000 groups)."""
    n = len(dist)
    size = np.ones(n)
    root = np.arange(n)
    nearest = np.argmin(dist, axis=1)
    near_d = dist[np.arange(n), nearest].astype(np.float64)
    while True:
        i = int(np.argmin(near_d))
        if not near_d[i] <= threshold:  # also stops on inf/NaN
            break
        a, b = sorted((i, int(nearest[i])))
        row = (size[a] * dist[a].astype(np.float64) + size[b] * dist[b]) / (size[a] + size[b])
        row[[a, b]] = np.inf
        dist[a], dist[:, a] = row, row
        dist[b], dist[:, b] = np.inf, np.inf
        size[a] += size[b]
        root[root == b] = a
        near_d[b] = np.inf
        stale = np.flatnonzero((nearest == a) | (nearest == b))
        for r in set(stale.tolist()) - {b} | {a}:
            nearest[r] = int(np.argmin(dist[r]))
            near_d[r] = float(dist[r, nearest[r]])
    return root
