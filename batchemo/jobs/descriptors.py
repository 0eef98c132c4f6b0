"""--people's face-identity descriptors as a job step: the few faces of each track or photo face worth describing
(`identity.pick_faces`), their images read back (`report.crops.video_images` / `photo_images`), described by
`identity.embed_faces`, and kept in the report as OUT/people.npz so that a re-run, a resumed folder run or the driver
of a Ray batch reuses them instead of describing them again (~0.2 s a face).

people.npz holds one entry per picked face row: `source`, `frame`, `face`, `box` (x, y, w, h), `stamp` (the input
file's bytes and mtime_ns) and its 128 floats (`descriptor`, NaN where the quality gate refused the face), and
`engine`, what made them. A stored descriptor is used for a row with the same source, frame, face, box and stamp
made by the same engine; anything else is described again. The video job removes the file when it analyses a video
again (`--redo`, a changed file): a new analysis gets new descriptors.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..pipeline import identity as I
from ..report.atomic import write_atomic
from ..report.summaries import shown_rows
from ..report.crops import photo_images, video_images

DESCRIPTORS_FILE = "people.npz"
FACES_PER_GROUP = 5  # k of pick_faces: measured on ../shared (benchmarks/results/people.md); ~1 s a track
SAVE_EVERY = 256  # faces described between saves of people.npz: a killed folder run keeps most of its work
# What makes a descriptor: the network file, the chip's padding and jitters, and the quality gate. A change to any
# of them makes stored descriptors stale.
ENGINE = (f"{I.DESCRIPTOR_FILE};padding={I.PADDING};jitters={I.JITTERS};gate={I.MIN_EMBED_SIDE},"
          f"{I.MIN_BRIGHTNESS:g},{I.MIN_CONTRAST:g},{I.MAX_TURN:g}")
BOX = ["x", "y", "w", "h"]

Key = tuple  # (source, frame, face, x, y, w, h, bytes, mtime_ns)
# Images to describe: for a slice of the picked rows, (rows on one image, the image, scale from the rows' boxes to it).
Images = Callable[[pd.DataFrame], Iterator[tuple[pd.DataFrame, np.ndarray, float]]]


@dataclass
class Described:
    """The picked face rows of a report (a slice of its frames.csv / faces.csv, index kept) and their descriptors
    ([len(rows), 128] float32, NaN rows where the gate refused the face or its image no longer decodes)."""

    rows: pd.DataFrame
    descriptors: np.ndarray

    def usable(self) -> pd.DataFrame:
        """The picked rows that were described (their person's picture is cut from one of them)."""
        return self.rows[np.isfinite(self.descriptors).all(axis=1)] if len(self.rows) else self.rows


def counted_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that get a person: all of a photo folder's, a video's but its short tracks (more often a misfire
    than a face, and left out of the summary too)."""
    return shown_rows(rows, keep_short_tracks="short_track" not in rows.columns)


def describe_video(path: Path, out: Path, frames: pd.DataFrame) -> Described:
    """The descriptors of a video's tracks (`frames`: its frames.csv rows), from OUT/people.npz where it has them,
    else read from the video and described (and people.npz updated)."""
    st = Path(path).stat()
    picks = I.pick_faces(counted_rows(frames), k=FACES_PER_GROUP)
    stamps = np.tile(np.array([st.st_size, st.st_mtime_ns], np.int64), (len(picks), 1))

    def images(todo: pd.DataFrame) -> Iterator[tuple[pd.DataFrame, np.ndarray, float]]:
        at = todo.groupby("frame", sort=True).groups
        for f, img in video_images(Path(path), at):
            yield todo.loc[at[f]], img, 1.0

    return _describe(Path(out) / DESCRIPTORS_FILE, picks, stamps, images)


def describe_photos(root: Path, out: Path, faces: pd.DataFrame, files: pd.DataFrame, keep_side: int) -> Described:
    """The descriptors of a folder's photo faces (`faces`, `files`: its faces.csv and files.csv rows; photos under
    `root`, decoded as the job decodes them, `keep_side`), from OUT/people.npz where it has them (a resumed run
    describes only the faces it lacks), else described."""
    picks = I.pick_faces(faces, k=FACES_PER_GROUP)
    stamp = {s: (int(b), int(m)) for s, b, m in zip(files["source"], files["bytes"], files["mtime_ns"])}
    stamps = np.array([stamp.get(s, (0, 0)) for s in picks["source"]], np.int64).reshape(-1, 2)

    def images(todo: pd.DataFrame) -> Iterator[tuple[pd.DataFrame, np.ndarray, float]]:
        at = todo.groupby("source", sort=False).groups
        for source, img, scale in photo_images(Path(root), list(at), keep_side):
            yield todo.loc[at[source]], img, scale

    return _describe(Path(out) / DESCRIPTORS_FILE, picks, stamps, images)


def _keys(rows: pd.DataFrame, stamps: np.ndarray) -> list[Key]:
    cols = [rows[c].to_numpy() for c in ["frame", "face", *BOX]]
    return [(str(s), *(int(c[i]) for c in cols), int(b), int(m))
            for i, (s, (b, m)) in enumerate(zip(rows["source"], stamps))]


def _describe(cache: Path, picks: pd.DataFrame, stamps: np.ndarray, images: Images) -> Described:
    """`picks` described: stored descriptors reused, the others computed on `images` of them; the cache rewritten
    (with exactly these rows) when anything in it changed."""
    keys = _keys(picks, stamps)
    stored = load_descriptors(cache)
    out = np.full((len(picks), I.DESCRIPTOR_SIZE), np.nan, np.float32)
    done = np.zeros(len(picks), bool)
    for i, k in enumerate(keys):
        if k in stored:
            out[i], done[i] = stored[k], True
    position = pd.Series(np.arange(len(picks)), index=picks.index)
    since_save = 0
    for rows, img, scale in images(picks[~done]):
        at = position.loc[rows.index].to_numpy()
        out[at] = I.embed_faces(img, rows[BOX].to_numpy(float) * scale)
        done[at] = True
        since_save += len(at)
        if since_save >= SAVE_EVERY:
            _save(cache, keys, out, done)
            since_save = 0
    done[:] = True  # a frame or photo that no longer decodes: NaN, as a refused face (stored: it would fail again)
    if set(keys) != set(stored) or since_save:
        _save(cache, keys, out, done)
    return Described(picks, out)


def load_descriptors(path: Path) -> dict[Key, np.ndarray]:
    """people.npz's descriptors by key; empty where there is none, it is unreadable, or another engine made it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["engine"]) != ENGINE:
                return {}
            box, stamp = z["box"], z["stamp"]
            return {(str(s), int(f), int(fc), *(int(v) for v in b), int(st[0]), int(st[1])): d
                    for s, f, fc, b, st, d in zip(z["source"], z["frame"], z["face"], box, stamp, z["descriptor"])}
    except (OSError, ValueError, KeyError):
        return {}


def _save(path: Path, keys: list[Key], descriptors: np.ndarray, done: np.ndarray) -> None:
    keep = [k for k, d in zip(keys, done) if d]
    arrays = {"source": np.array([k[0] for k in keep], dtype=str),
              "frame": np.array([k[1] for k in keep], np.int64).reshape(-1),
              "face": np.array([k[2] for k in keep], np.int64).reshape(-1),
              "box": np.array([k[3:7] for k in keep], np.int64).reshape(-1, 4),
              "stamp": np.array([k[7:9] for k in keep], np.int64).reshape(-1, 2),
              "descriptor": descriptors[done].astype(np.float32), "engine": np.array(ENGINE)}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to the temp file's name
            np.savez(f, **arrays)

    write_atomic(path, write)
