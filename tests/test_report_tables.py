"""Every report file read back through its declared schema (issue 18): dtypes, the summaries' all rows, the
`source` column of timeline/summary, the batch tables of a folder of videos, and files read_report refuses."""
from __future__ import annotations

import csv
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import batchemo
from batchemo.jobs.options import FolderOptions, VideoOptions
from batchemo import report as R

from .conftest import SAMPLES, blank_video, video_tree

QUIET_VIDEO = VideoOptions(annotate=False, html=False)
QUIET_FOLDER = FolderOptions(annotate=False, html=False)


def declared(schema: R.Schema, df: pd.DataFrame) -> dict[str, str]:
    return schema.dtypes(df.columns)


def assert_typed(df: pd.DataFrame, schema: R.Schema) -> None:
    """Every column has the dtype its schema declares (and every column is declared)."""
    want = declared(schema, df)
    assert set(want) == set(df.columns), set(df.columns) - set(want)
    got = {c: str(df[c].dtype) for c in df.columns}
    assert got == {c: str(pd.Series(dtype=dt).dtype) for c, dt in want.items()}


INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?")
# The text a cell of each declared dtype may hold in the file: what a reader without the schema (csv, a
# spreadsheet, pd.read_csv unprompted) sees. read_report cannot tell: it casts '120.0' to 120 and '1.0' to True.
WRITTEN = {"int64": INTEGER.fullmatch, "Int64": lambda s: s == "" or INTEGER.fullmatch(s),
           "float64": lambda s: s == "" or NUMBER.fullmatch(s), "boolean": lambda s: s in ("True", "False", ""),
           "string": lambda s: True}


def assert_written_typed(path: Path, schema: R.Schema) -> pd.DataFrame:
    """The file as written holds each column as the text of its declared dtype (read plainly, with csv); read
    back through read_report it is typed, and written again from that it is the same bytes (the round trip loses
    and changes nothing). The table read back."""
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = csv.reader(f)
    want = schema.dtypes(header)
    assert set(want) == set(header), set(header) - set(want)
    for k, column in enumerate(header):
        wrong = [r[k] for r in rows if not WRITTEN[want[column]](r[k])]
        assert not wrong, f"{path.name}: {column} ({want[column]}) written as {wrong[:3]}"
    df = batchemo.read_report(path)
    assert_typed(df, schema)
    with tempfile.TemporaryDirectory() as tmp:
        again = Path(tmp) / path.name
        R.write_csv(df, again)
        assert again.read_bytes() == path.read_bytes(), path.name
        pd.testing.assert_frame_equal(batchemo.read_report(again), df)
    return df


@pytest.fixture(scope="module")
def video_out(two_face_clip, tmp_path_factory, model) -> Path:
    return batchemo.analyze_video(two_face_clip, tmp_path_factory.mktemp("vr") / "r", model, QUIET_VIDEO,
                                  progress=False).out


@pytest.fixture(scope="module")
def blank_out(tmp_path_factory, model) -> Path:
    path = blank_video(tmp_path_factory.mktemp("blank") / "blank.avi")
    return batchemo.analyze_video(path, tmp_path_factory.mktemp("br") / "r", model, QUIET_VIDEO, progress=False).out


@pytest.fixture(scope="module")
def folder_out(tmp_path_factory, model) -> Path:
    """The sample photos plus a sub-folder literally called "all" (its group must not pass for the all row)."""
    src = tmp_path_factory.mktemp("photos") / "photos"
    shutil.copytree(SAMPLES / "images", src)
    (src / "all").mkdir()
    shutil.copy(SAMPLES / "images" / "astronaut.png", src / "all" / "again.png")
    out = tmp_path_factory.mktemp("fr") / "r"
    batchemo.analyze_folder(src, out, model, QUIET_FOLDER, progress=False)
    return out


def test_folder_run_tables_are_typed(folder_out):
    assert_written_typed(folder_out / "faces.csv", R.FACES)
    assert_written_typed(folder_out / "files.csv", R.FILES)
    summary = assert_written_typed(folder_out / "summary.csv", R.GROUP_SUMMARY)
    faces = batchemo.read_report(folder_out)
    allrow = summary[summary["scope"] == "all"]
    assert len(allrow) == 1 and allrow["faces"].iloc[0] == len(faces)
    # the sub-folder called "all" is a group like any other
    named_all = summary[(summary["group"] == "all") & (summary["scope"] == "group")]
    assert named_all["faces"].tolist() == [int(faces["source"].str.startswith("all/").sum())]


def test_video_run_tables_are_typed(video_out):
    assert_written_typed(video_out / "frames.csv", R.FACES)
    assert_written_typed(video_out / "timeline.csv", R.TIMELINE)
    assert_written_typed(video_out / "summary.csv", R.TRACK_SUMMARY)


def test_video_summary_face_is_an_integer_and_the_all_row_has_none(video_out):
    frames = batchemo.read_report(video_out)
    sm = batchemo.read_report(video_out / "summary.csv")
    assert sm["face"].dtype == "Int64"
    track0 = sm[sm.face == 0]
    assert len(track0) == 1 and track0["frames"].iloc[0] == frames.loc[frames["face"] == 0, "frame"].nunique()
    allrow = sm[sm["scope"] == "all"]
    assert len(allrow) == 1 and allrow["face"].isna().all()
    assert set(sm.loc[sm["scope"] == "track", "face"]) == set(frames["face"])


def test_timeline_and_summary_carry_the_source(video_out):
    source = set(batchemo.read_report(video_out)["source"])
    assert len(source) == 1
    for name in ("timeline.csv", "summary.csv"):
        table = batchemo.read_report(video_out / name)
        assert set(table["source"]) == source, name


def test_same_dtypes_across_runs(video_out, blank_out, folder_out, tmp_path, model):
    """A video with faces and one without, a folder with faces and one without: same dtypes file by file."""
    for name, schema in (("frames.csv", R.FACES), ("timeline.csv", R.TIMELINE), ("summary.csv", R.TRACK_SUMMARY)):
        a, b = batchemo.read_report(video_out / name), assert_written_typed(blank_out / name, schema)
        assert b.dtypes.to_dict() == a.dtypes.to_dict(), name
    src = tmp_path / "none"
    shutil.copytree(SAMPLES / "images" / "no face", src)
    empty = batchemo.analyze_folder(src, tmp_path / "o", model, QUIET_FOLDER, progress=False).out
    for name, schema in (("faces.csv", R.FACES), ("files.csv", R.FILES), ("summary.csv", R.GROUP_SUMMARY)):
        a, b = batchemo.read_report(folder_out / name), assert_written_typed(empty / name, schema)
        assert b.dtypes.to_dict() == a.dtypes.to_dict(), name


@pytest.fixture(scope="module")
def sessions(two_face_clip, tmp_path_factory) -> Path:
    """Two sessions with the same participant file name, and a file that is no video."""
    return video_tree(tmp_path_factory.mktemp("tree") / "sessions", two_face_clip)


@pytest.fixture(scope="module")
def batch_out(sessions, tmp_path_factory, model) -> Path:
    out = tmp_path_factory.mktemp("batch") / "out"
    batchemo.analyze_videos([sessions], out, model, QUIET_VIDEO, progress=False)
    return out


def test_video_batch_writes_files_and_summary(batch_out):
    files = assert_written_typed(batch_out / "files.csv", R.VIDEO_FILES)
    assert sorted(files["source"]) == ["day1/p01.avi", "day2/broken.avi", "day2/p01.avi"]
    failed = files[files["status"] == "failed"]
    assert failed["source"].tolist() == ["day2/broken.avi"] and failed["error"].str.len().gt(0).all()
    summary = assert_written_typed(batch_out / "summary.csv", R.BATCH_SUMMARY)
    assert summary["scope"].tolist() == ["all", "video", "video"]
    assert summary["source"].isna().tolist() == [True, False, False]
    per_video = summary[summary["scope"] == "video"].set_index("source")
    for rel, row in files[files["status"] != "failed"].set_index("source").iterrows():
        own = batchemo.read_report(batch_out / row["report"] / "summary.csv")
        own_all = own[own["scope"] == "all"].iloc[0]
        shares = [c for c in summary.columns if c.startswith("share_")]
        np.testing.assert_allclose(per_video.loc[rel, shares].astype(float), own_all[shares].astype(float), atol=1e-6)
        assert per_video.loc[rel, "faces"] == len(batchemo.read_report(batch_out / row["report"]))
    assert summary["faces"].iloc[0] == per_video["faces"].sum()


def test_read_report_on_a_batch_folder_gives_every_video(batch_out):
    frames = batchemo.read_report(batch_out)
    assert_typed(frames, R.FACES)
    assert set(frames["source"]) == {"day1/p01.avi", "day2/p01.avi"}
    for rel in ("day1/p01", "day2/p01"):
        own = batchemo.read_report(batch_out / rel)
        part = frames[frames["source"] == rel + ".avi"].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, own)


def test_rerun_that_skips_every_video_keeps_the_batch_tables(sessions, batch_out, model):
    before = {n: (batch_out / n).read_text() for n in ("files.csv", "summary.csv")}
    for n in before:
        (batch_out / n).unlink()
    results = batchemo.analyze_videos([sessions], batch_out, model, QUIET_VIDEO, progress=False)
    assert [getattr(r, "status", "failed") for r in results].count("skipped") == 2
    assert {n: (batch_out / n).read_text() for n in before} == before


def test_read_report_refuses_files_it_does_not_know(video_out, tmp_path):
    foreign = tmp_path / "people.csv"
    pd.DataFrame({"name": ["a", "b"], "age": [3, 4]}).to_csv(foreign, index=False)
    binary = tmp_path / "image.csv"
    binary.write_bytes((video_out / "timeline.png").read_bytes())
    for path in (video_out / "run.json", video_out / "timeline.png", foreign, binary):
        with pytest.raises(ValueError, match="read_report reads faces.csv") as e:
            batchemo.read_report(path)
        assert str(path) in str(e.value)
