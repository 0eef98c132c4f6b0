"""Face crops cut at the report's boxes: thumbnails for report.html and `--save-faces` (class folders of crops,
the layout `batchemo train` reads).

A saved crop is named after its CSV row: `faces/<emotion>/<source, '/' as '__'>__f<frame>__id<face>.png`
(characters other than letters, digits, '.', '_', '-' become '_'); `faces/index.csv` maps every file to its row
exactly (source, frame, face, emotion, confidence), whatever the sanitising did to the name.

Both uses cut through one function (`Crops` requests served by `cut_photos` / `cut_video`), so with `--save-faces`
and report.html the thumbnails come from the same decoding pass as the saved crops: each photo or video frame is
decoded once for both.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .annotate import write_image
from .atomic import write_csv
from .tables import CROP_INDEX
from ..pipeline.files import BadInput
from ..pipeline.photo import read_photo
from ..pipeline.video import seek_to, variable_rate_clock

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
THUMB_SIDE = 112  # px, the thumbnails' long side
SEEK_GAP = 90  # frames: a longer gap between wanted frames is seeked over, a shorter one read through
# A crop's name is this part, then `__f<frame>__id<face>.png`, inside write_atomic's `.<name>.<8 hex>.tmp`:
# 160 keeps the whole within the 255 bytes a file name may have (the part is ASCII) for any frame and face.
MAX_SAFE = 160
CROP_NAME = re.compile(r".+__f\d+__id\d+\.png")
INDEX_COLUMNS = list(CROP_INDEX.fixed)  # read_report types them


def safe_name(source: str) -> str:
    """A file-name-safe form of a `source` column value ('/' becomes '__'); where anything had to be replaced or
    cut (past MAX_SAFE characters), a short hash of the original follows, so `a b.png` and `a_b.png`, or two
    long paths alike in their first MAX_SAFE characters, never share a crop file."""
    source = str(source)
    safe = _UNSAFE.sub("_", source.replace("/", "__")).strip("._") or "source"
    if safe != source or len(safe) > MAX_SAFE:
        safe = safe[:MAX_SAFE - 9] + "_" + hashlib.sha1(source.encode()).hexdigest()[:8]
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
    """(frame index, image) of the wanted frames, in increasing order, each asked-for frame once; the index counts
    frames as a pass reading from the start does (`video.read_frames`), so a row's frame is the frame it was found
    on. Gaps of up to SEEK_GAP frames are read through; a longer one is seeked over only while the capture reports
    landing on the frame asked for (the position OpenCV's FFmpeg backend reports; on files whose timestamps mislead
    it, only a read from the start is sure). Where it lands elsewhere, the video is read forward from the start
    instead, and not seeked again. A frame that cannot be read is left out (the caller tells it by its missing
    index): a seeked-to frame that does not decode is skipped, and a read that fails while reading on ends the
    stream, as it ends the analysis pass."""
    wanted = sorted({int(f) for f in frames if int(f) >= 0})
    if not wanted:
        return
    cap = cv2.VideoCapture(str(path))
    pos: int | None = 0  # the index of the frame the next read returns; None: not known
    # Seeks have landed where asked so far. Never trusted on variable-rate video: there OpenCV reports landing on
    # the frame asked for while showing a later one.
    exact = variable_rate_clock(Path(path), cap.get(cv2.CAP_PROP_FPS)) is None
    try:
        for f in wanted:
            seeked = False
            if exact and (pos is None or f - pos > SEEK_GAP):
                exact = seeked = seek_to(cap, f)
                pos = f if exact else None
            if pos is None:  # a seek that landed elsewhere: from the start, reading every frame
                cap.release()
                cap = cv2.VideoCapture(str(path))
                pos = 0
            while pos < f and cap.grab():
                pos += 1
            ok, img = cap.read() if pos == f else (False, None)
            if not ok or img is None:
                if not seeked:  # reading on, the stream ends before f or at it
                    return
                pos = None  # the frame seeked to does not decode: skip it, and seek to the next one
                continue
            pos += 1
            yield f, img
    finally:
        cap.release()


@dataclass(eq=False)  # rows is a DataFrame: requests are compared by identity
class Crops:
    """Face crops wanted from a decoding pass (`cut_photos`, `cut_video`): each row of `rows` (a faces.csv or
    frames.csv table; boxes x, y, w, h in full-size pixels) cut with `margin` x its side around the box and handed
    to `write(label, row, crop)`. After the pass `done` holds the row labels written (a photo or frame that no
    longer decodes, or a box that leaves under 2 pixels of its image, writes nothing) and `cut` is True. Several
    requests served by one pass decode each photo or frame once for all of them."""

    rows: pd.DataFrame
    write: Callable[[Hashable, pd.Series, np.ndarray], None]
    margin: float = 0.0
    done: set = field(default_factory=set)
    cut: bool = False


def _serve(wanted: list[Crops], groups: list[dict], key, img: np.ndarray, scale: float) -> None:
    """Cuts and writes every crop the requests want from one decoded image (`key`: its source or frame)."""
    for w, g in zip(wanted, groups):
        for label in g.get(key, ()):
            r = w.rows.loc[label]
            crop = cut(img, (r["x"], r["y"], r["w"], r["h"]), scale, w.margin)
            if crop is not None:
                w.write(label, r, crop)
                w.done.add(label)


def cut_photos(root: Path, wanted: Iterable[Crops], keep_side: int = 0) -> None:
    """Serves the requests in one pass over their photos (under `root`, rows keyed by `source`), each photo decoded
    once (JPEGs reduced as far as `keep_side` allows) for all of them."""
    wanted = list(wanted)
    groups = [w.rows.groupby("source", sort=False).groups for w in wanted]

    def one(source: str) -> None:
        for _, img, scale in photo_images(root, [source], keep_side):
            _serve(wanted, groups, source, img, scale)

    # OpenCV releases the GIL while it decodes and encodes, so a second thread overlaps one photo's read with another's.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, list(dict.fromkeys(s for g in groups for s in g))))
    for w in wanted:
        w.cut = True


def cut_video(video: Path, wanted: Iterable[Crops]) -> None:
    """Serves the requests in one pass over the video's frames (rows keyed by `frame`), each frame decoded once for
    all of them (`video_images`: read on, or seek over long gaps where seeking is exact)."""
    wanted = list(wanted)
    groups = [w.rows.groupby("frame", sort=False).groups for w in wanted]
    for f, img in video_images(video, {int(f) for g in groups for f in g}):
        _serve(wanted, groups, f, img, 1.0)
    for w in wanted:
        w.cut = True


def video_rows_to_save(frames: pd.DataFrame, per_s: float = 1.0) -> pd.DataFrame:
    """For video: per track, the first row of each `per_s` seconds and its highest-confidence row."""
    if frames.empty:
        return frames
    sec = np.floor(frames["time_s"].to_numpy() / per_s).astype(np.int64)
    first = ~pd.DataFrame({"face": frames["face"].to_numpy(), "s": sec}).duplicated().to_numpy()
    best = frames.index.isin(frames.groupby("face")["confidence"].idxmax().to_numpy())
    return frames[first | best]


def _file(r: pd.Series) -> str:
    return f"{r['emotion']}/{crop_name(r['source'], r['frame'], r['face'])}"


def _save(out: Path, rows: pd.DataFrame, cut_all: Callable[[list[Crops]], None], also: Iterable[Crops]) -> pd.DataFrame:
    """Writes a crop per row under OUT/faces/<emotion>/ (cut by `cut_all` in one pass with the `also` requests),
    then faces/index.csv, in the rows' order, of those written."""
    faces = Path(out) / "faces"
    faces.mkdir(parents=True, exist_ok=True)
    # A crop the user moved to another class folder (docs/reports.md: relabel by moving) is theirs: kept where it is,
    # listed there, and not cut again under the model's class (a renamed photo's too, `follow_renames`: one face,
    # one label).
    user = _user_crops(faces)
    moved = _moved_crops(user, rows)
    saved = Crops(rows[~rows.index.isin(list(moved))], lambda label, r, crop: write_image(crop, faces / _file(r)))
    cut_all([saved, *also])
    table = pd.DataFrame([{"file": file, "source": r["source"], "frame": int(r["frame"]),
                           "face": int(r["face"]), "emotion": r["emotion"], "confidence": float(r["confidence"]),
                           "time_s": float(r["time_s"])}
                          for i, r in rows.iterrows() if i in saved.done or i in moved
                          for file in moved.get(i, [_file(r)])], columns=INDEX_COLUMNS)
    # A relabelled crop whose face left the report (its photo removed, or renamed and edited) is still the user's
    # label: kept, and listed with the row it had.
    table = pd.concat([table, user[~user["file"].isin(table["file"])]], ignore_index=True)
    write_csv(table, faces / "index.csv")
    _remove_stale_crops(faces, set(table["file"]))
    return table


def _user_crops(faces: Path) -> pd.DataFrame:
    """faces/index.csv's rows of the crops the user placed by hand, each listed where it now is: a crop found
    elsewhere than where batchemo last put it (under the emotion index.csv gave it), moved or copied there (a copy
    in two class folders: a row for each). Empty without an index: no record of where batchemo put them."""
    index = faces / "index.csv"
    if not index.is_file():
        return pd.DataFrame(columns=INDEX_COLUMNS)
    last = pd.read_csv(index, dtype=str, keep_default_na=False)
    placed = {f for f, e in zip(last["file"], last["emotion"]) if f.split("/", 1)[0] == e}
    places = _crop_places(faces)
    names = last["file"].str.rsplit("/", n=1).str[-1]
    mine = last.assign(file=[[f for f in places.get(n, []) if f not in placed] for n in names]).explode("file")
    return mine.dropna(subset=["file"]).drop_duplicates(subset="file").reset_index(drop=True)[INDEX_COLUMNS]


def _crop_places(faces: Path) -> dict[str, list[str]]:
    """A crop's file name -> every class folder file of that name under `faces` (relative, sorted)."""
    places: dict[str, list[str]] = {}
    for p in sorted(faces.glob("*/*.png")):
        if CROP_NAME.fullmatch(p.name):
            places.setdefault(p.name, []).append(p.relative_to(faces).as_posix())
    return places


def _moved_crops(user: pd.DataFrame, rows: pd.DataFrame) -> dict[Hashable, list[str]]:
    """Row label -> the user's crops of that row (`_user_crops`, matched by the source, frame and face index.csv
    gives them, not by file name: a renamed photo's crops keep their names) outside the row's emotion folder: the
    face relabelled, so batchemo's own copy under the model's class goes, as for a move. A crop batchemo put under
    a class the model no longer gives is its own, and stale."""
    by_face: dict[tuple[str, str, str], list[str]] = {}  # as index.csv's text holds them
    for f, source, frame, face in zip(user["file"], user["source"], user["frame"], user["face"]):
        by_face.setdefault((source, frame, face), []).append(f)
    moved = {}
    for i, r in rows.iterrows():
        mine = [f for f in by_face.get((r["source"], str(int(r["frame"])), str(int(r["face"]))), []) if f != _file(r)]
        if mine:
            moved[i] = mine
    return moved


def _remove_stale_crops(faces: Path, keep: set[str]) -> None:
    """Crops of rows this report no longer has (a --redo that relabelled a face, a photo since removed) go:
    `batchemo train OUT/faces` reads the class folders, so a stale crop would train the face under two labels."""
    _unlink_crops([p for p in faces.glob("*/*.png")
                   if CROP_NAME.fullmatch(p.name) and p.relative_to(faces).as_posix() not in keep])


def _unlink_crops(crops: list[Path]) -> None:
    """Delete these crops, and the class folders they leave empty; an empty folder the user made (a class to move
    crops into) stays."""
    for p in crops:
        p.unlink()
    for d in {p.parent for p in crops}:
        if not any(d.iterdir()):
            d.rmdir()


def follow_renames(faces: Path, renamed: dict[str, str]) -> None:
    """faces/index.csv's rows of photos renamed since the last run (old source -> new) under their new names, so
    that the crops the user relabelled stay matched to their faces."""
    index = faces / "index.csv"
    if not renamed or not index.is_file():
        return
    table = pd.read_csv(index, dtype=str, keep_default_na=False)
    if table["source"].isin(list(renamed)).any():
        write_csv(table.assign(source=[renamed.get(s, s) for s in table["source"]]), index)


def remove_own_crops(faces: Path) -> None:
    """A report's faces/ once its rows change without --save-faces: the crops batchemo put there go; a crop moved
    or copied to another class folder by hand (relabelled, docs/reports.md) is the user's, and stays, listed in
    index.csv so that later runs still know it was moved; files batchemo did not write stay too."""
    user = _user_crops(faces)
    _remove_stale_crops(faces, set(user["file"]))
    if len(user):
        write_csv(user, faces / "index.csv")
    else:
        (faces / "index.csv").unlink(missing_ok=True)
    if not any(faces.iterdir()):
        faces.rmdir()


def save_photo_faces(out: Path, root: Path, faces: pd.DataFrame, keep_side: int = 0,
                     also: Iterable[Crops] = ()) -> pd.DataFrame:
    """One crop per faces.csv row under OUT/faces/<emotion>/; returns faces/index.csv's table. `also`: other crops
    wanted from the same photos (the report's thumbnails), cut in the same pass."""
    return _save(out, faces, lambda wanted: cut_photos(root, wanted, keep_side), also)


def save_video_faces(out: Path, video: Path, frames: pd.DataFrame, per_s: float = 1.0,
                     also: Iterable[Crops] = ()) -> pd.DataFrame:
    """A few crops per track (one per `per_s` seconds and the highest-confidence one) under OUT/faces/<emotion>/;
    returns faces/index.csv's table. `also`: other crops wanted from the video (the report's thumbnails), cut in the
    same pass over its frames."""
    return _save(out, video_rows_to_save(frames, per_s), lambda wanted: cut_video(video, wanted), also)
