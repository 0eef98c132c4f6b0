"""The report files: column lists in one place, atomic writers, the resume journal, summaries, read_report."""
from __future__ import annotations

import json
import os
import uuid
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


def prob_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def face_columns(classes: list[str]) -> list[str]:
    return FACE_COLUMNS + prob_columns(classes) + QUALITY_COLUMNS


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


def write_csv(df: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6g"))


def write_json(obj: dict, path: Path) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def face_row(source: str, frame: int, time_s: float, face: int, box, probs: np.ndarray, classes: list[str],
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
    df = pd.DataFrame(rows, columns=face_columns(classes))
    return _typed(df, {**FACE_DTYPES, **{c: "float64" for c in prob_columns(classes)}, **QUALITY_DTYPES})


def files_frame(rows: list[dict]) -> pd.DataFrame:
    return _typed(pd.DataFrame(rows, columns=FILE_COLUMNS), FILE_DTYPES)


def _typed(df: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    for col, dt in dtypes.items():
        if col in df.columns:
            df[col] = df[col].astype(dt)
    return df


def read_report(path: str | Path) -> pd.DataFrame:
    """A report table as a typed DataFrame.

    `path` may be a report folder (its faces.csv, or frames.csv for a video report) or any of the CSV files.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("faces.csv", "frames.csv"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"{path}: no faces.csv or frames.csv in this folder")
    df = pd.read_csv(path, keep_default_na=True)
    probs = {c: "float64" for c in df.columns if c.startswith("p_")}
    if "emotion" in df.columns and "x" in df.columns:
        return _typed(df, {**FACE_DTYPES, **probs, **QUALITY_DTYPES})
    if "status" in df.columns:
        df["error"] = df["error"].astype("string").fillna("")
        return _typed(df, FILE_DTYPES)
    return _typed(df, {"source": "string", **probs})


def emotion_summary(faces: pd.DataFrame, classes: list[str], by: pd.Series | None = None) -> pd.DataFrame:
    """Count and share of each top emotion, over all faces (`group` = 'all') and per group of `by`."""
    rows = []
    groups = [("all", faces)]
    if by is not None:
        groups += [(g, faces[by == g]) for g in sorted(by.dropna().unique())]
    for name, part in groups:
        counts = part["emotion"].value_counts()
        n = len(part)
        row = {"group": name, "faces": n}
        for c in classes:
            row[f"n_{c}"] = int(counts.get(c, 0))
        for c in classes:
            row[f"share_{c}"] = round(counts.get(c, 0) / n, 6) if n else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


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

    def load(self, out: Path, files_name: str, faces_name: str, classes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(files, faces) of everything recorded so far, newest record per source winning."""
        parts_files, parts_faces = [], []
        final_files, final_faces = Path(out) / files_name, Path(out) / faces_name
        pairs = []
        if final_files.exists() and final_faces.exists():
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
        for p in self.dir.glob("*"):
            p.unlink()
        self.dir.rmdir()


SMOOTH_BINS = 3  # centred rolling mean over this many time bins: the timeline's smoothed view (README)


def timeline_table(frames: pd.DataFrame, classes: list[str], bin_s: float) -> pd.DataFrame:
    """Per track and time bin: mean probability of each class, the dominant emotion, frames seen, and a
    smoothed view (centred rolling mean of the bin means over SMOOTH_BINS bins, per track)."""
    probs = prob_columns(classes)
    cols = ["face", "bin", "start_s", "end_s", "frames"] + probs + ["dominant"] + \
        [f"smooth_{c}" for c in classes] + ["dominant_smooth"]
    if frames.empty:
        return pd.DataFrame(columns=cols)
    df = frames.assign(bin=np.floor(frames["time_s"] / bin_s).astype("int64"))
    g = df.groupby(["face", "bin"], sort=True)
    tl = g[probs].mean()
    tl.insert(0, "frames", g.size())
    tl = tl.reset_index()
    tl.insert(2, "start_s", tl["bin"] * bin_s)
    tl.insert(3, "end_s", (tl["bin"] + 1) * bin_s)
    tl["dominant"] = np.asarray(classes)[tl[probs].to_numpy().argmax(1)]
    smooth = tl.groupby("face")[probs].transform(lambda s: s.rolling(SMOOTH_BINS, center=True, min_periods=1).mean())
    smooth = smooth.div(smooth.sum(axis=1), axis=0)
    for c in classes:
        tl[f"smooth_{c}"] = smooth[f"p_{c}"]
    tl["dominant_smooth"] = np.asarray(classes)[smooth.to_numpy().argmax(1)]
    return tl[cols]


def track_summary(frames: pd.DataFrame, classes: list[str], frame_interval_s: float) -> pd.DataFrame:
    """Per track (and `all` for the whole video): first/last time seen, seconds on screen, dominant emotion
    (the most frequent top emotion), share of frames with each top emotion, mean probability of each class."""
    cols = ["face", "first_s", "last_s", "seconds_on_screen", "frames", "dominant"] + \
        [f"share_{c}" for c in classes] + [f"mean_p_{c}" for c in classes]
    rows = []
    groups = [(str(f), part) for f, part in frames.groupby("face", sort=True)] if len(frames) else []
    groups.append(("all", frames))
    for name, part in groups:
        n = len(part)
        counts = part["emotion"].value_counts() if n else pd.Series(dtype=int)
        frames_seen = part["frame"].nunique() if n else 0
        row = {"face": name, "first_s": part["time_s"].min() if n else np.nan,
               "last_s": part["time_s"].max() if n else np.nan,
               "seconds_on_screen": round(frames_seen * frame_interval_s, 3), "frames": frames_seen,
               "dominant": max(classes, key=lambda c: counts.get(c, 0)) if n else ""}
        row.update({f"share_{c}": counts.get(c, 0) / n if n else np.nan for c in classes})
        row.update({f"mean_p_{c}": part[f"p_{c}"].mean() if n else np.nan for c in classes})
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)
