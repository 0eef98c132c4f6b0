"""The report tables: their columns and dtypes in one place (the CSV contract docs/reports.md documents), the rows
the jobs build, and read_report, which reads any of them back typed."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..pipeline.faces import Faces

__all__ = ["FACE_COLUMNS", "QUALITY_COLUMNS", "QUALITY_DTYPES", "FILE_COLUMNS", "FACE_DTYPES", "FILE_DTYPES",
           "PERSON_DTYPES", "UNCERTAIN_DTYPES", "Schema", "FACES", "FILES", "VIDEO_FILES", "TRACK_SUMMARY",
           "GROUP_SUMMARY", "BATCH_SUMMARY", "TIMELINE", "CROP_INDEX", "PEOPLE", "PHOTO_PEOPLE", "EPISODES",
           "RESPONSES", "SCHEMAS", "READS", "prob_columns", "prob_columns_of", "classes_of", "face_columns",
           "face_row", "face_rows", "faces_from_rows", "faces_frame", "files_frame", "read_report", "read_table"]

# Column order is part of the public interface (docs/reports.md): append, never reorder.
FACE_COLUMNS = ["source", "frame", "time_s", "face", "x", "y", "w", "h", "emotion", "confidence"]
# Appended after the p_<class> columns: how the box was found, and the face score (docs/reports.md).
QUALITY_COLUMNS = ["found_by", "face_score"]
QUALITY_DTYPES = {"found_by": "string", "face_score": "float64", "short_track": "boolean"}
# Appended last with --people only: the person number, the same for one person across the run (docs/people.md).
# Nullable: short tracks and faces the identity gate refused have none.
PERSON_DTYPES = {"person": "Int64"}
# Appended last of all (after `person` where --people gives one, so that no older column moves): the row's calibrated
# confidence is below --min-confidence (docs/episodes.md).
UNCERTAIN_DTYPES = {"uncertain": "boolean"}
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


# Every CSV batchemo writes, as read_report types it (docs/reports.md says the same in words).
FACES = Schema("faces.csv / frames.csv", {**FACE_DTYPES, **QUALITY_DTYPES, **PERSON_DTYPES, **UNCERTAIN_DTYPES},
               {"p_": "float64"},
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
# people.csv (--people) of a video report or a batch of videos: one row per person, their tracks summed (first and
# last seen: the first and last video they are in, in input order, and the time in that video).
PEOPLE = Schema("people.csv (videos)",
                {"person": "Int64", "tracks": "int64", "videos": "int64", "first_source": "string",
                 "first_seen_s": "float64", "last_source": "string", "last_seen_s": "float64",
                 "seconds_on_screen": "float64", "faces": "int64", "dominant": "string"},
                {"share_": "float64", "mean_p_": "float64"},
                frozenset({"person", "tracks", "videos", "seconds_on_screen"}))
# people.csv (--people) of a folder of photos: faces and photos counted instead of seconds.
PHOTO_PEOPLE = Schema("people.csv (photos)",
                      {"person": "Int64", "faces": "int64", "photos": "int64", "first_source": "string",
                       "last_source": "string", "dominant": "string"},
                      {"share_": "float64", "mean_p_": "float64"},
                      frozenset({"person", "faces", "photos"}))
# episodes.csv of a video report or a batch of videos: one row per episode per track (report/episodes.py; the
# rule and its defaults in docs/episodes.md). `person` is <NA> without --people.
EPISODES = Schema("episodes.csv",
                  {"source": "string", "face": "int64", "person": "Int64", "emotion": "string", "onset_s": "float64",
                   "peak_s": "float64", "offset_s": "float64", "duration_s": "float64", "peak_p": "float64",
                   "mean_p": "float64", "frames": "int64"},
                  key=frozenset({"face", "emotion", "onset_s", "offset_s", "peak_p"}))
# responses.csv (--events): per event and per track with rows in the window after it, the first episode that starts
# in the window (empty where none does) and the mean probabilities of the track's rows in the window.
RESPONSES = Schema("responses.csv",
                   {"source": "string", "event": "int64", "label": "string", "event_s": "float64", "face": "int64",
                    "person": "Int64", "emotion": "string", "onset_s": "float64", "latency_s": "float64",
                    "peak_s": "float64", "peak_p": "float64", "frames": "int64"},
                   {"mean_p_": "float64"},
                   frozenset({"event", "label", "event_s", "face", "latency_s"}))
SCHEMAS = (FACES, FILES, VIDEO_FILES, TRACK_SUMMARY, GROUP_SUMMARY, BATCH_SUMMARY, TIMELINE, CROP_INDEX, PEOPLE,
           PHOTO_PEOPLE, EPISODES, RESPONSES)
READS = ("faces.csv, frames.csv, files.csv, summary.csv, timeline.csv, people.csv, episodes.csv, responses.csv, "
         "faces/index.csv, or a report folder")


def prob_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def prob_columns_of(df: pd.DataFrame) -> list[str]:
    """A face table's p_<class> columns, in the model's order."""
    return [c for c in df.columns if c.startswith("p_")]


def classes_of(df: pd.DataFrame) -> list[str]:
    """The model's classes, read from a face table's p_<class> columns."""
    return [c[len("p_"):] for c in prob_columns_of(df)]


def face_columns(classes: list[str]) -> list[str]:
    return FACE_COLUMNS + prob_columns(classes) + QUALITY_COLUMNS


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


def face_rows(faces: Faces, classes: list[str]) -> list[dict]:
    """The faces.csv / frames.csv rows of a classified Faces record."""
    probs = faces.probs if faces.probs is not None else []
    return [face_row(faces.source, faces.frame, faces.time_s, i, box, p, classes=classes, found_by=how, score=score)
            for i, box, p, how, score in zip(faces.ids, faces.boxes, probs, faces.found_by, faces.scores)]


def faces_from_rows(rows: pd.DataFrame, classes: list[str]) -> Faces:
    """A Faces record back from report rows (a DataFrame slice of one frame), e.g. to draw rows joined across
    frame ranges."""
    head = (str(rows["source"].iloc[0]), int(rows["frame"].iloc[0]), float(rows["time_s"].iloc[0])) \
        if len(rows) else ("", 0, float("nan"))
    return Faces(*head, rows[["x", "y", "w", "h"]].to_numpy(), rows["face"].to_numpy(np.int64),
                 probs=rows[prob_columns(classes)].to_numpy(np.float32))


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
    """A report table as a DataFrame typed by its declared schema (SCHEMAS; docs/reports.md).

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
