"""The report files: column lists in one place, atomic writers, the resume journal, summaries, read_report."""
from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Column order is part of the public interface (README, "Report files"): append, never reorder.
FACE_COLUMNS = ["source", "frame", "time_s", "face", "x", "y", "w", "h", "emotion", "confidence"]
# Appended after the p_<class> columns: how the box was found, and the face score (README, "Columns").
QUALITY_COLUMNS = ["found_by", "face_score"]
QUALITY_DTYPES = {"found_by": "string", "face_score": "float64", "short_track": "boolean"}
FILE_COLUMNS = ["source", "width", "height", "faces", "status", "error", "bytes", "mtime_ns"]
FACE_DTYPES = {"source": "string", "frame": "int64", "time_s": "float64", "face": "int64", "x": "int64",
               "y": "int64", "w": "int64", "h": "int64", "emotion": "string", "confidence": "float64"}
FILE_DTYPES = {"source": "string", "width": "Int64", "height": "Int64", "faces": "int64", "status": "string",
               "error": "string", "bytes": "int64", "mtime_ns": "int64"}


@dataclass(frozen=True)
class Schema:
    """One kind of report table: its fixed columns' dtypes, the dtypes of its per-class columns (one per class of
    the model: p_happy, share_happy...) by prefix, and the columns that tell it apart from the others when a file
    is read (its name is no help: journal chunks and user copies have other names)."""

    kind: str
    fixed: dict[str, str]
    per_class: dict[str, str] = field(default_factory=dict)
    key: frozenset[str] = frozenset()
    empty_is_blank: tuple[str, ...] = ()  # string columns where an empty cell means '' rather than missing

    def dtypes(self, columns) -> dict[str, str]:
        out = {}
        for c in columns:
            dt = self.fixed.get(c) or next((d for p, d in self.per_class.items() if c.startswith(p)), None)
            if dt is not None:
                out[c] = dt
        return out

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` with its columns cast to their declared dtypes (columns it lacks are left out, not added)."""
        df = _typed(df, self.dtypes(df.columns))
        for c in self.empty_is_blank:
            if c in df.columns:
                df[c] = df[c].fillna("")
        return df


# Every CSV batchemo writes, as read_report types it (README, "Report files" says the same in words).
FACES = Schema("faces.csv / frames.csv", {**FACE_DTYPES, **QUALITY_DTYPES}, {"p_": "float64"},
               frozenset(FACE_DTYPES) - {"source"})
FILES = Schema("files.csv (photos)", FILE_DTYPES, key=frozenset(FILE_DTYPES) - {"faces"}, empty_is_blank=("error",))
VIDEO_FILES = Schema("files.csv (batch of videos)",
                     {"source": "string", "report": "string", "status": "string", "error": "string",
                      "note": "string", "frames_decoded": "int64", "frames_analysed": "int64", "faces": "int64",
                      "tracks": "int64", "short_tracks": "int64", "duration_s": "float64", "fps": "float64"},
                     key=frozenset({"source", "report", "status", "frames_decoded"}), empty_is_blank=("error", "note"))
# The all-faces row of a video summary has no track id: `face` is <NA> there (nullable Int64, so track ids stay
# integers and `sm[sm.face == 0]` finds track 0) and `scope` says 'all' ('track' on the others).
TRACK_SUMMARY = Schema("summary.csv (video)",
                       {"face": "Int64", "first_s": "float64", "last_s": "float64", "seconds_on_screen": "float64",
                        "frames": "int64", "dominant": "string", "source": "string", "scope": "string"},
                       {"share_": "float64", "mean_p_": "float64"},
                       frozenset({"face", "first_s", "last_s", "seconds_on_screen", "dominant"}))
# The folder summary's key column is a label, so its all row keeps the label 'all'; `scope` ('all' / 'group')
# tells it from a sub-folder that happens to be called "all".
GROUP_SUMMARY = Schema("summary.csv (folder)", {"group": "string", "faces": "int64", "scope": "string"},
                       {"n_": "int64", "share_": "float64"}, frozenset({"group", "faces"}))
# A batch of videos: one row per analysed video, and the all-videos row with `source` <NA> and `scope` 'all'.
BATCH_SUMMARY = Schema("summary.csv (batch of videos)",
                       {"source": "string", "scope": "string", "faces": "int64", "tracks": "int64",
                        "dominant": "string"},
                       {"share_": "float64", "mean_p_": "float64"},
                       frozenset({"source", "scope", "faces", "tracks", "dominant"}))
TIMELINE = Schema("timeline.csv",
                  {"face": "int64", "bin": "int64", "start_s": "float64", "end_s": "float64", "frames": "int64",
                   "dominant": "string", "dominant_smooth": "string", "source": "string"},
                  {"p_": "float64", "smooth_": "float64"},
                  frozenset({"face", "bin", "start_s", "end_s", "dominant_smooth"}))
# OUT/faces/index.csv (--save-faces): one row per face crop, `file` under faces/, and the face row it was cut from.
CROP_INDEX = Schema("faces/index.csv",
                    {"file": "string", "source": "string", "frame": "int64", "face": "int64", "emotion": "string",
                     "confidence": "float64", "time_s": "float64"},
                    key=frozenset({"file", "source", "frame", "face", "emotion"}))
SCHEMAS = (FACES, FILES, VIDEO_FILES, TRACK_SUMMARY, GROUP_SUMMARY, BATCH_SUMMARY, TIMELINE, CROP_INDEX)
READS = "faces.csv, frames.csv, files.csv, summary.csv, timeline.csv, faces/index.csv, or a report folder"


def prob_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def prob_columns_of(df: pd.DataFrame) -> list[str]:
    """A face table's p_<class> columns, in the model's order."""
    return [c for c in df.columns if c.startswith("p_")]


def face_columns(classes: list[str]) -> list[str]:
    return FACE_COLUMNS + prob_columns(classes) + QUALITY_COLUMNS


ATOMIC_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # write_atomic's temp names: .NAME.XXXXXXXX.tmp


def remove_atomic_temps(out: Path, subfolders: tuple[str, ...] = ("annotated", "thumbs", "faces", ".journal")
                        ) -> None:
    """Delete the temp files write_atomic calls left in a report folder when a killed run cut them short: at
    its top and under the folders the jobs write (not elsewhere: --out may hold other files). They are never
    final names, and nothing else is named like them."""
    out = Path(out)
    found = list(out.glob(".*.tmp")) + [p for sub in subfolders for p in (out / sub).rglob(".*.tmp")]
    for p in found:
        if ATOMIC_TEMP.match(p.name) and p.is_file():
            p.unlink()


def write_atomic(path: Path, write) -> None:
    """Call write(tmp_path), then rename onto `path`: a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _seconds_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """The seconds columns (`time_s`, `first_s`, ... `seconds_on_screen`) as fixed-point text to the microsecond:
    '%.6g', right for probabilities, keeps six digits in all, so 10800.0333 s would be written 10800 and, past
    2.8 hours of video, three frames at 30 fps would share one `time_s`."""
    cols = [c for c in df.columns if isinstance(c, str) and (c.endswith("_s") or c.startswith("seconds_"))
            and pd.api.types.is_float_dtype(df[c])]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        v = df[c].to_numpy(dtype=float, na_value=np.nan)
        text = np.char.rstrip(np.char.rstrip(np.char.mod("%.6f", v), "0"), ".")
        df[c] = np.where(np.isnan(v), "", text)
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    out = _seconds_as_text(df)
    write_atomic(path, lambda tmp: out.to_csv(tmp, index=False, float_format="%.6g"))


def write_json(obj: dict, path: Path) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def read_record(path: Path) -> dict | None:
    """A run.json (or a journal's analysis.json) as a dict; None where it is missing or unreadable, as a killed
    or foreign one may be."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_report_folder(folder: Path) -> bool:
    """Does `folder` hold a batchemo report (the run.json of a folder or video job, or the journal of one under
    way)? Its annotated copies, thumbnails and crops are pictures of faces already counted, never inputs."""
    folder = Path(folder)
    return (folder / Journal.MARKER).is_file() or \
        (read_record(folder / "run.json") or {}).get("job") in ("folder", "video")


def face_row(source: str, frame: int, time_s: float, face: int, box, probs: np.ndarray, *, classes: list[str],
             found_by: str = "detected", score: float = float("nan")) -> dict:
    """One faces.csv / frames.csv row: the box, the top class, every class's probability, how the box was
    found and its face score."""
    k = int(np.argmax(probs))
    x, y, w, h = (int(v) for v in box)
    row = {"source": source, "frame": int(frame), "time_s": time_s, "face": int(face), "x": x, "y": y, "w": w,
           "h": h, "emotion": classes[k], "confidence": float(probs[k])}
    row.update({f"p_{c}": float(v) for c, v in zip(classes, probs)})
    row.update({"found_by": found_by, "face_score": round(float(score), 4)})
    return row


def faces_frame(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    return FACES.apply(pd.DataFrame(rows, columns=face_columns(classes)))


def files_frame(rows: list[dict]) -> pd.DataFrame:
    return FILES.apply(pd.DataFrame(rows, columns=FILE_COLUMNS))


def _typed(df: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    for col, dt in dtypes.items():
        if col in df.columns:
            df[col] = df[col].astype(dt)
    return df


def read_report(path: str | Path) -> pd.DataFrame:
    """A report table as a DataFrame typed by its declared schema (SCHEMAS; README, "Report files").

    `path` may be any CSV batchemo writes (faces/index.csv of --save-faces included), or a report folder: a folder
    run's faces.csv, a video's frames.csv, or for a batch of videos every video's frames.csv together (found
    through the batch's files.csv). FileNotFoundError where nothing is at `path`; ValueError for a file that is
    not one of these.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        return _read_folder(path)
    return read_table(path)[1]


def read_table(path: Path) -> tuple[Schema, pd.DataFrame]:
    """The schema a report CSV matches (by its header) and the file read through it."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: not a report table; read_report reads {READS}")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' parse errors are ValueErrors
        raise ValueError(f"{path}: not a readable CSV ({type(e).__name__}); read_report reads {READS}") from None
    schema = _schema_of(header)
    if schema is None:
        raise ValueError(f"{path}: not one of batchemo's report tables (columns {header[:6]}...); "
                         f"read_report reads {READS}")
    dtypes = schema.dtypes(header)
    legacy = schema is TRACK_SUMMARY and "scope" not in header
    if legacy:  # written before `scope`: the all-faces row's face was the text 'all'
        dtypes["face"] = "string"
    # Only empty cells are missing: a sub-folder or file called "NA" or "null" stays a name.
    df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    if legacy:
        df["scope"] = df["face"].eq("all").map({True: "all", False: "track"})
        df["face"] = df["face"].mask(df["scope"] == "all")
    return schema, schema.apply(df)


def _schema_of(header: list[str]) -> Schema | None:
    fits = [s for s in SCHEMAS if s.key <= set(header)]
    return max(fits, key=lambda s: len(s.key)) if fits else None


def _read_folder(folder: Path) -> pd.DataFrame:
    for name in ("faces.csv", "frames.csv"):
        if (folder / name).exists():
            return read_table(folder / name)[1]
    if (folder / "files.csv").exists():
        schema, files = read_table(folder / "files.csv")
        if schema is VIDEO_FILES:
            return _read_video_batch(folder, files)
    raise FileNotFoundError(f"{folder}: no faces.csv, frames.csv or batch files.csv in this folder")


def _read_video_batch(folder: Path, files: pd.DataFrame) -> pd.DataFrame:
    """Every analysed video's frames.csv, in the batch's order; each row's `source` says which video."""
    done = files[files["status"].isin(["complete", "partial"])]
    parts = [read_table(folder / rel / "frames.csv")[1] for rel in done["report"]]
    if not parts:
        return FACES.apply(pd.DataFrame(columns=FACE_COLUMNS + QUALITY_COLUMNS + ["short_track"]))
    return FACES.apply(pd.concat(parts, ignore_index=True))


def emotion_summary(faces: pd.DataFrame, classes: list[str], by: pd.Series | None = None,
                    groups: Iterable[str] = ()) -> pd.DataFrame:
    """Count and share of each top emotion, over all faces (`group` 'all', `scope` 'all') and per group of `by`
    (`scope` 'group'), `groups` included even where no face has them (a row of zero faces)."""
    rows = []
    parts = [("all", faces)]
    if by is not None:
        parts += [(g, faces[by == g]) for g in sorted(set(by.dropna().unique()) | set(groups))]
    for i, (name, part) in enumerate(parts):
        counts = part["emotion"].value_counts()
        n = len(part)
        row = {"group": name, "faces": n}
        for c in classes:
            row[f"n_{c}"] = int(counts.get(c, 0))
        for c in classes:
            row[f"share_{c}"] = round(counts.get(c, 0) / n, 6) if n else np.nan
        row["scope"] = "group" if i else "all"
        rows.append(row)
    cols = ["group", "faces"] + [f"n_{c}" for c in classes] + [f"share_{c}" for c in classes] + ["scope"]
    return GROUP_SUMMARY.apply(pd.DataFrame(rows, columns=cols))


class Journal:
    """Resume bookkeeping: finished files' rows land in small atomic chunk files under OUT/.journal.

    A killed run leaves whole chunks only; the next run reads them (and the last final report) back, keeps the
    newest record of every source, and skips sources already done.
    """

    def __init__(self, out: Path):
        self.dir = Path(out) / ".journal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = uuid.uuid4().hex[:8]
        self.count = 0
        self.fresh = False  # the final report in OUT predates this journal's run (a --redo): not read back

    MARKER = ".journal/analysis.json"  # under OUT: the run's settings (`analysis`) and `fresh`, until it completes

    @property
    def marker(self) -> Path:
        return self.dir.parent / self.MARKER

    def begin(self, settings: dict, fresh: bool) -> None:
        """Record this run's settings; `fresh` for a --redo, and kept when an interrupted --redo is resumed,
        so a report of the run before it never mixes in."""
        if not fresh and self.marker.exists():
            fresh = bool(json.loads(self.marker.read_text()).get("fresh"))
        self.fresh = fresh
        write_json({"analysis": settings, "fresh": fresh}, self.marker)

    def chunks(self) -> list[Path]:
        # Named <time_ns>-<run>-<n>: sorting by name is sorting by when they were written.
        return sorted(self.dir.glob("*.files.csv"))

    def append(self, files: pd.DataFrame, faces: pd.DataFrame) -> None:
        if files.empty:
            return
        self.count += 1
        stem = f"{__import__('time').time_ns():020d}-{self.run}-{self.count:06d}"
        # faces first: a files chunk (which marks sources done) never exists without its faces chunk.
        write_csv(faces, self.dir / f"{stem}.faces.csv")
        write_csv(files, self.dir / f"{stem}.files.csv")

    def load(self, out: Path, files_name: str, faces_name: str,
             classes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(files, faces) of everything recorded so far, newest record per source winning."""
        parts_files, parts_faces = [], []
        final_files, final_faces = Path(out) / files_name, Path(out) / faces_name
        pairs = []
        if final_files.exists() and final_faces.exists() and not self.fresh:
            pairs.append((final_files, final_faces))
        for f in self.chunks():
            faces = f.with_name(f.name.replace(".files.csv", ".faces.csv"))
            if faces.exists():
                pairs.append((f, faces))
        for rank, (fp, ap) in enumerate(pairs):
            fdf = read_report(fp)
            adf = read_report(ap)
            fdf["_rank"] = rank
            adf["_rank"] = rank
            parts_files.append(fdf)
            parts_faces.append(adf)
        if not parts_files:
            return files_frame([]), faces_frame([], classes)
        files = pd.concat(parts_files, ignore_index=True)
        faces = pd.concat(parts_faces, ignore_index=True)
        newest = files.groupby("source")["_rank"].max()
        files = files[files["_rank"].values == newest.reindex(files["source"]).values]
        faces = faces[faces["_rank"].values == newest.reindex(faces["source"]).values]
        return (files.drop(columns="_rank").reset_index(drop=True),
                faces.drop(columns="_rank").reset_index(drop=True))

    def clear(self) -> None:
        # The marker last: a kill in between leaves it with fewer chunks (work redone), never chunks without it.
        for p in sorted(self.dir.glob("*"), key=lambda p: p == self.marker):
            p.unlink()
        self.dir.rmdir()


SMOOTH_BINS = 3  # centred rolling mean over this many time bins: the timeline's smoothed view (README)


def _smooth_over_bins(tl: pd.DataFrame, probs: list[str]) -> pd.DataFrame:
    """Each track's centred mean over SMOOTH_BINS consecutive bins. Bins the track has no frame in are missing,
    not skipped, so a gap in a track, or fewer analysed frames than bins (--fps 0.5 with 1 s bins), never
    stretches the window past SMOOTH_BINS x --bin seconds."""
    half = SMOOTH_BINS // 2  # odd: the window is the bin itself and `half` bins either side
    parts = []
    for _, part in tl.groupby("face", sort=False):
        means = part.set_index("bin")[probs]
        # Neighbours looked up by bin number rather than by filling in every bin of the track's span: an hour's
        # track at --bin 0.0001 spans 36 million bins, which took gigabytes to hold as empty rows.
        near = [means.reindex(means.index + d).set_axis(means.index) for d in range(-half, half + 1)]
        total = sum(n.fillna(0.0) for n in near)
        seen = sum(n.notna().astype(int) for n in near)
        parts.append((total / seen).set_axis(part.index))
    return pd.concat(parts).loc[tl.index]


def timeline_table(frames: pd.DataFrame, classes: list[str], bin_s: float, source: str = "") -> pd.DataFrame:
    """Per track and time bin: mean probability of each class, the dominant emotion, frames seen, and a
    smoothed view (centred rolling mean of the bin means over SMOOTH_BINS bins, per track). `source`: the video's
    `source` column, last (new columns are appended), so the timelines of a batch concatenate."""
    probs = prob_columns(classes)
    cols = ["face", "bin", "start_s", "end_s", "frames"] + probs + ["dominant"] + \
        [f"smooth_{c}" for c in classes] + ["dominant_smooth", "source"]
    if frames.empty:
        return TIMELINE.apply(pd.DataFrame(columns=cols))
    # Rounded before the floor: 0.3 / 0.1 is 2.9999999999999996, and a frame at 0.3 s belongs to the bin from 0.3.
    df = frames.assign(bin=np.floor(np.round(frames["time_s"].to_numpy(float) / bin_s, 9)).astype("int64"))
    g = df.groupby(["face", "bin"], sort=True)
    tl = g[probs].mean()
    tl.insert(0, "frames", g.size())
    tl = tl.reset_index()
    tl.insert(2, "start_s", tl["bin"] * bin_s)
    tl.insert(3, "end_s", (tl["bin"] + 1) * bin_s)
    tl["dominant"] = np.asarray(classes)[tl[probs].to_numpy().argmax(1)]
    smooth = _smooth_over_bins(tl, probs)
    smooth = smooth.div(smooth.sum(axis=1), axis=0)
    for c in classes:
        tl[f"smooth_{c}"] = smooth[f"p_{c}"]
    tl["dominant_smooth"] = np.asarray(classes)[smooth.to_numpy().argmax(1)]
    tl["source"] = source
    return TIMELINE.apply(tl[cols])


def track_summary(frames: pd.DataFrame, classes: list[str], seen: float | pd.Series,
                  source: str = "", end_s: float | None = None) -> pd.DataFrame:
    """Per track (`scope` 'track') and for the whole video (`scope` 'all', `face` <NA>): first/last time seen,
    seconds on screen, dominant emotion (the most frequent top emotion), share of frames with each top emotion,
    mean probability of each class. `source` and `scope` come last (new columns are appended). `seen`: how long
    each row's frame stands for (`row_seconds`); `end_s`: where the video ends (seconds on screen never run past
    it)."""
    cols = ["face", "first_s", "last_s", "seconds_on_screen", "frames", "dominant"] + \
        [f"share_{c}" for c in classes] + [f"mean_p_{c}" for c in classes] + ["source", "scope"]
    seconds = row_seconds(frames, seen, end_s)
    groups = [(int(f), part) for f, part in frames.groupby("face", sort=True)] if len(frames) else []
    groups.append((pd.NA, frames))
    rows = [_track_row(face, part, classes, seconds) for face, part in groups]
    df = pd.DataFrame(rows, columns=cols[:-2])
    df["source"] = source
    df["scope"] = ["track"] * (len(df) - 1) + ["all"]
    return TRACK_SUMMARY.apply(df)


def seen_for(times, interval: float, end_s: float | None = None) -> np.ndarray:
    """How long each analysed frame at `times` stands for when analysed frames are `interval` apart: up to the
    next analysed frame, and for a frame near the end only up to the end of the video (with --every 200 a 6 s
    clip's one analysed frame is not 13 s of face)."""
    t = np.asarray(times, dtype=float)
    return np.full(t.shape, interval) if end_s is None else np.clip(end_s - t, 0.0, interval)


def row_seconds(frames: pd.DataFrame, seen: float | pd.Series, end_s: float | None = None) -> pd.Series:
    """How long each face row's frame stands for: `seen` itself where it is already one figure per row (a
    variable-rate video's, by its frames' own clock), else `seen` is the steady interval between analysed frames
    (`seen_for`)."""
    if isinstance(seen, pd.Series):
        return seen.reindex(frames.index)
    return pd.Series(seen_for(frames["time_s"], seen, end_s), index=frames.index, dtype=float)


def _track_row(face, part: pd.DataFrame, classes: list[str], seconds: pd.Series) -> dict:
    n = len(part)
    seen = part.drop_duplicates("frame").index if n else part.index
    return {"face": face, "first_s": part["time_s"].min() if n else np.nan,
            "last_s": part["time_s"].max() if n else np.nan,
            "seconds_on_screen": float(seconds.loc[seen].sum()), "frames": len(seen),
            **_emotion_columns(part, classes)}


def _emotion_columns(part: pd.DataFrame, classes: list[str]) -> dict:
    """`dominant`, `share_<class>` (share of rows with that top emotion) and `mean_p_<class>` of some face rows:
    the same in a track's row, a video's all-faces row and a video's row of a batch, so those always agree
    (<NA> / NaN without rows)."""
    n = len(part)
    counts = part["emotion"].value_counts() if n else pd.Series(dtype=int)
    return {"dominant": _dominant(counts, classes) if n else pd.NA,
            **{f"share_{c}": counts.get(c, 0) / n if n else np.nan for c in classes},
            **{f"mean_p_{c}": part[f"p_{c}"].mean() if n else np.nan for c in classes}}


def _dominant(counts, classes: list[str]) -> str:
    # Ties go to the class first in the model's order.
    return max(classes, key=lambda c: counts.get(c, 0))


def video_share_row(frames: pd.DataFrame, classes: list[str], source: str) -> dict:
    """One video's row of a batch summary.csv: face rows, tracks, dominant emotion, share of rows with each top
    emotion and mean probability of each class (NaN without faces)."""
    return {"source": source, "scope": "video", "faces": len(frames), "tracks": int(frames["face"].nunique()),
            **_emotion_columns(frames, classes)}


def batch_summary(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    """A batch of videos' summary.csv: the all-videos row first (`source` <NA>, `scope` 'all'), then `rows`
    (video_share_row). The all row weighs each video by its face rows, as if all rows were one table."""
    per = pd.DataFrame(rows, columns=list(BATCH_SUMMARY.fixed) + [f"share_{c}" for c in classes] +
                       [f"mean_p_{c}" for c in classes])
    n = int(per["faces"].sum())
    w = per["faces"].to_numpy(dtype=float)
    # share x rows gives each video's count back (rounded: shares are floats)
    counts = {c: float(np.rint(np.nansum(per[f"share_{c}"].to_numpy(dtype=float) * w))) for c in classes}
    total = {"source": pd.NA, "scope": "all", "faces": n, "tracks": int(per["tracks"].sum()),
             "dominant": _dominant(counts, classes) if n else pd.NA}
    total.update({f"share_{c}": counts[c] / n if n else np.nan for c in classes})
    total.update({f"mean_p_{c}": float(np.nansum(per[f"mean_p_{c}"].to_numpy(dtype=float) * w)) / n if n else np.nan
                  for c in classes})
    return BATCH_SUMMARY.apply(pd.concat([pd.DataFrame([total], columns=per.columns), per], ignore_index=True))
