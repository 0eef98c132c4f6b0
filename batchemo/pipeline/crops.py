"""Face crops cut at the report's boxes: thumbnails for report.html and `--save-faces` (class folders of crops,
the layout `batchemo train` reads).

A saved crop is named after its CSV row: `faces/<emotion>/<source, '/' as '__'>__f<frame>__id<face>.png`
(characters other than letters, digits, '.', '_', '-' become '_'); `faces/index.csv` maps every file to its row
exactly (source, frame, face, emotion, confidence), whatever the sanitising did to the name.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import pandas as pd

from .annotate import write_image
from .report import write_csv
from .sources import BadInput, read_photo

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
THUMB_SIDE = 112  # px, the thumbnails' long side
INDEX_COLUMNS = ["file", "source", "frame", "face", "emotion", "confidence", "time_s"]


def safe_name(source: str) -> str:
    """A file-name-safe form of a `source` column value ('/' becomes '__'); where anything had to be replaced,
    a short hash of the original follows, so `a b.png` and `a_b.png` never share a crop file."""
    source = str(source)
    safe = _UNSAFE.sub("_", source.replace("/", "__")).strip("._") or "source"
    if safe != source:
        safe += "_" + hashlib.sha1(source.encode()).hexdigest()[:8]
    return safe


def crop_name(source: str, frame: int, face: int) -> str:
    return f"{safe_name(source)}__f{int(frame)}__id{int(face)}.png"


def cut(image: np.ndarray, box, scale: float = 1.0, margin: float = 0.0) -> np.ndarray | None:
    """The box (full-size pixels, times `scale` for a reduced decode) with `margin` x its side around it."""
    x, y, w, h = (float(v) * scale for v in box)
    mx, my = w * margin, h * margin
    x0, y0 = max(0, int(round(x - mx))), max(0, int(round(y - my)))
    x1, y1 = min(image.shape[1], int(round(x + w + mx))), min(image.shape[0], int(round(y + h + my)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return image[y0:y1, x0:x1]


def thumbnail(crop: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    f = side / max(crop.shape[:2])
    if f >= 1:
        return crop
    return cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                      interpolation=cv2.INTER_AREA)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 80) -> None:
    write_image(image, path, [cv2.IMWRITE_JPEG_QUALITY, quality])


def photo_images(root: Path, sources: Iterable[str], keep_side: int = 0) -> Iterator[tuple[str, np.ndarray, float]]:
    """(source, image, scale from full-size pixels to the image's) for each photo that still decodes."""
    for source in sources:
        try:
            img, (w, _) = read_photo(Path(root) / source, max_megapixels=1e9, keep_side=keep_side)
        except (BadInput, OSError):
            continue
        yield source, img, img.shape[1] / w if w else 1.0


def video_images(path: Path, frames: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, image) of the wanted frames, in increasing order: read on, or seek over long gaps."""
    wanted = sorted({int(f) for f in frames})
    if not wanted:
        return
    cap = cv2.VideoCapture(str(path))
    try:
        pos = 0
        for f in wanted:
            if f - pos > 90 or f < pos:
                cap.set(cv2.CAP_PROP_POS_FRAMES, f)
                pos = f
            while pos < f:
                if not cap.grab():
                    return
                pos += 1
            ok, img = cap.read()
            if not ok or img is None:
                return
            pos += 1
            yield f, img
    finally:
        cap.release()


def video_rows_to_save(frames: pd.DataFrame, per_s: float = 1.0) -> pd.DataFrame:
    """For video: per track, the first row of each `per_s` seconds and its highest-confidence row."""
    if frames.empty:
        return frames
    sec = np.floor(frames["time_s"].to_numpy() / per_s).astype(np.int64)
    first = ~pd.DataFrame({"face": frames["face"].to_numpy(), "s": sec}).duplicated().to_numpy()
    best = frames.index.isin(frames.groupby("face")["confidence"].idxmax().to_numpy())
    return frames[first | best]


def _save(out: Path, rows: pd.DataFrame, crops: dict) -> pd.DataFrame:
    index = []
    for i, r in rows.iterrows():
        crop = crops.get(i)
        if crop is None:
            continue
        name = f"{r['emotion']}/{crop_name(r['source'], r['frame'], r['face'])}"
        write_image(crop, out / "faces" / name)
        index.append({"file": name, "source": r["source"], "frame": int(r["frame"]), "face": int(r["face"]),
                      "emotion": r["emotion"], "confidence": float(r["confidence"]), "time_s": float(r["time_s"])})
    table = pd.DataFrame(index, columns=INDEX_COLUMNS)
    write_csv(table, out / "faces" / "index.csv")
    return table


def save_photo_faces(out: Path, root: Path, faces: pd.DataFrame, keep_side: int = 0) -> pd.DataFrame:
    """One crop per faces.csv row under OUT/faces/<emotion>/; returns faces/index.csv's table."""
    (Path(out) / "faces").mkdir(parents=True, exist_ok=True)
    crops = {}
    by_source = faces.groupby("source", sort=False).groups
    for source, img, scale in photo_images(root, by_source, keep_side):
        for i in by_source[source]:
            r = faces.loc[i]
            crops[i] = cut(img, (r["x"], r["y"], r["w"], r["h"]), scale)
    return _save(Path(out), faces, crops)


def save_video_faces(out: Path, video: Path, frames: pd.DataFrame, per_s: float = 1.0) -> pd.DataFrame:
    """A few crops per track (one per `per_s` seconds and the highest-confidence one) under OUT/faces/<emotion>/."""
    (Path(out) / "faces").mkdir(parents=True, exist_ok=True)
    rows = video_rows_to_save(frames, per_s)
    by_frame = rows.groupby("frame").groups
    crops = {}
    for f, img in video_images(video, by_frame):
        for i in by_frame[f]:
            r = rows.loc[i]
            crops[i] = cut(img, (r["x"], r["y"], r["w"], r["h"]))
    return _save(Path(out), rows, crops)
