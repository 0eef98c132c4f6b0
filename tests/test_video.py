"""`batchemo video` on short videos the tests make: rows, times, tracks, timeline, annotated video, bad inputs."""
from __future__ import annotations

import json
import struct
import subprocess

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app
from batchemo.pipeline.ffmpeg import ffmpeg_exe, has_audio
from batchemo.report import FACE_COLUMNS
from batchemo.pipeline.files import BadInput
from batchemo.jobs.options import VideoOptions

from .conftest import blank_video, moving_faces_video, video_tree

FRAMES, FPS = 30, 10.0
runner = CliRunner()


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, face_bgr):
    path = tmp_path_factory.mktemp("v") / "two faces ü.avi"
    moving_faces_video(path, face_bgr, FRAMES, FPS)
    return path


@pytest.fixture(scope="module")
def clip_report(clip, tmp_path_factory, model):
    out = tmp_path_factory.mktemp("vr") / "report"
    r = runner.invoke(app, ["video", str(clip), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    return out


def test_frames_csv_rows_times_and_columns(clip_report, model):
    df = batchemo.read_report(clip_report)
    appended = ["found_by", "face_score", "short_track", "uncertain"]  # new columns only ever go at the end
    assert list(df.columns) == FACE_COLUMNS + [f"p_{c}" for c in model.classes] + appended
    assert set(df["found_by"]) <= {"detected", "profile", "followed", "held"} and df["short_track"].dtype == "boolean"
    assert len(df) == 2 * FRAMES
    assert sorted(df["frame"].unique()) == list(range(FRAMES))
    np.testing.assert_allclose(df["time_s"], df["frame"] / FPS, atol=1e-6)
    probs = df[[f"p_{c}" for c in model.classes]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert (df["source"] == "two faces ü.avi").all()


def test_track_ids_are_stable(clip_report):
    df = batchemo.read_report(clip_report)
    assert sorted(df["face"].unique()) == [0, 1]
    for _, part in df.groupby("face"):
        assert len(part) == FRAMES
    # face 0 starts top-left and moves right, face 1 bottom-right and moves left: ids never swap
    f0, f1 = df[df["face"] == 0].sort_values("frame"), df[df["face"] == 1].sort_values("frame")
    assert (f0["y"] < 100).all() and (f1["y"] > 150).all()
    assert f0["x"].iloc[-1] > f0["x"].iloc[0] and f1["x"].iloc[-1] < f1["x"].iloc[0]


def test_timeline_and_summary_agree_with_frames(clip_report, model):
    df = batchemo.read_report(clip_report)
    tl = pd.read_csv(clip_report / "timeline.csv")
    assert set(tl["face"]) == {0, 1}
    assert list(tl[tl["face"] == 0]["bin"]) == [0, 1, 2]  # 3 s of video in 1 s bins
    assert tl.groupby("face")["frames"].sum().to_dict() == {0: FRAMES, 1: FRAMES}
    for _, row in tl.iterrows():
        part = df[(df["face"] == row["face"]) & (np.floor(df["time_s"]) == row["bin"])]
        for c in model.classes:
            assert row[f"p_{c}"] == pytest.approx(part[f"p_{c}"].mean(), abs=1e-5)
        assert abs(sum(row[f"smooth_{c}"] for c in model.classes) - 1) < 1e-5
    s = batchemo.read_report(clip_report / "summary.csv")
    assert list(s["scope"]) == ["track", "track", "all"] and s["face"].iloc[:2].tolist() == [0, 1]
    s = s[s["scope"] == "track"].set_index("face")
    for face in (0, 1):
        row = s.loc[face]
        part = df[df["face"] == face]
        assert row["frames"] == FRAMES and row["first_s"] == 0 and row["last_s"] == pytest.approx((FRAMES - 1) / FPS)
        assert row["seconds_on_screen"] == pytest.approx(FRAMES / FPS)
        assert row["dominant"] == part["emotion"].mode().iloc[0] or \
            part["emotion"].value_counts()[row["dominant"]] == part["emotion"].value_counts().max()
    assert (clip_report / "timeline.png").stat().st_size > 10_000


def test_annotated_video_matches_the_input(clip_report, clip):
    cap = cv2.VideoCapture(str(clip_report / "annotated.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == FRAMES
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 320)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    run = json.loads((clip_report / "run.json").read_text())
    assert run["status"] == "complete" and run["counts"]["frames_decoded"] == FRAMES
    assert run["video"]["codec"] == "h264"


def test_rerun_is_skipped_and_every_and_fps_options(clip, clip_report, tmp_path, model):
    r = runner.invoke(app, ["video", str(clip), "--out", str(clip_report), "--no-progress"])
    assert r.exit_code == 0 and "already complete" in r.output
    res = batchemo.analyze_video(clip, tmp_path / "e3", model, VideoOptions(every=3, annotate=False), progress=False)
    df = batchemo.read_report(res.out)
    assert sorted(df["frame"].unique()) == list(range(0, FRAMES, 3)) and res.frames_analysed == 10
    res = batchemo.analyze_video(clip, tmp_path / "f5", model, VideoOptions(fps=5, annotate=False), progress=False)
    assert sorted(batchemo.read_report(res.out)["frame"].unique()) == list(range(0, FRAMES, 2))


def test_audio_is_kept(clip, tmp_path, model):
    with_audio = tmp_path / "with audio.mkv"
    ffmpeg("-i", str(clip), "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "copy", "-c:a",
           "aac", "-shortest", str(with_audio))
    assert has_audio(with_audio)
    res = batchemo.analyze_video(with_audio, tmp_path / "a", model, progress=False)
    assert has_audio(res.out / "annotated.mp4")
    assert not has_audio(tmp_path / "a" / "frames.csv")


def test_no_faces_gives_empty_valid_reports(tmp_path, model):
    path = blank_video(tmp_path / "blank.avi", 12)
    res = batchemo.analyze_video(path, tmp_path / "o", model, progress=False)
    assert res.faces == 0 and res.status == "complete"
    assert batchemo.read_report(res.out).empty
    assert list(pd.read_csv(res.out / "timeline.csv").columns)[:3] == ["face", "bin", "start_s"]
    s = batchemo.read_report(res.out / "summary.csv")
    assert list(s["scope"]) == ["all"] and s["face"].isna().all() and s["frames"].iloc[0] == 0
    assert (res.out / "timeline.png").exists() and (res.out / "annotated.mp4").exists()


def _truncate(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _fps_zero(src, dst):
    data = bytearray(src.read_bytes())
    i = data.find(b"strh")
    struct.pack_into("<I", data, i + 8 + 24, 0)  # dwRate 0: no frame rate in the stream header
    struct.pack_into("<I", data, data.find(b"avih") + 8, 0)
    dst.write_bytes(bytes(data))


BAD = {
    "zero byte.mp4": (lambda src, dst: dst.write_bytes(b""), "error", "empty file"),
    "text.mp4": (lambda src, dst: dst.write_text("not a video at all\n" * 20), "error", "not a readable video"),
    "audio only.mp4": (lambda src, dst: ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(dst)),
                       "error", "video"),
}
ODD = {
    "truncated.avi": (_truncate, "partial", None),
    "fps zero.avi": (_fps_zero, "complete", None),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_video_is_one_line_and_the_batch_goes_on(name, clip, tmp_path, model):
    make, _, reason = BAD[name]
    bad = tmp_path / name
    make(clip, bad)
    r = runner.invoke(app, ["video", str(bad), str(clip), "--out", str(tmp_path / "o"), "--no-progress",
                            "--no-annotate"])
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 1 and reason in lines[0]
    assert len(batchemo.read_report(tmp_path / "o" / clip.stem)) == 2 * FRAMES
    with pytest.raises(BadInput):
        batchemo.analyze_video(bad, tmp_path / "lib", model, progress=False)


@pytest.mark.parametrize("name", list(ODD))
def test_damaged_or_odd_metadata_video(name, clip, tmp_path, model):
    make, status, _ = ODD[name]
    bad = tmp_path / name
    make(clip, bad)
    res = batchemo.analyze_video(bad, tmp_path / "o", model, progress=False)
    assert res.status == status, res.note
    df = batchemo.read_report(res.out)
    assert res.frames_decoded > 0 and len(df) > 0
    assert df["time_s"].is_monotonic_increasing and df.groupby("frame")["time_s"].nunique().max() == 1
    if status == "partial":
        assert res.frames_decoded < FRAMES and "truncated" in res.note
        assert json.loads((res.out / "run.json").read_text())["status"] == "partial"
        # a re-run skips it, and still says (and exits as) partial: the video is still cut short
        again = runner.invoke(app, ["video", str(bad), "--out", str(res.out), "--no-progress"])
        assert again.exit_code == 1 and "partial, as analysed before" in again.output
        assert "truncated" in again.output


def test_one_frame_odd_size_and_rotated(face_bgr, tmp_path, model):
    one = tmp_path / "one frame.avi"
    moving_faces_video(one, face_bgr, frames=1, fps=5)
    res = batchemo.analyze_video(one, tmp_path / "one", model, progress=False)
    assert res.frames_decoded == 1 and res.faces == 2

    odd = tmp_path / "odd.mkv"
    moving_faces_video(tmp_path / "even.avi", face_bgr, frames=6, fps=5)
    ffmpeg("-i", str(tmp_path / "even.avi"), "-vf", "format=bgr24,pad=481:321", "-c:v", "ffv1", str(odd))
    res = batchemo.analyze_video(odd, tmp_path / "odd", model, progress=False)
    assert res.faces == 12 and "padded" in res.note
    cap = cv2.VideoCapture(str(res.out / "annotated.mp4"))
    assert cap.read()[0]

    src = tmp_path / "upright.mp4"
    rotated = tmp_path / "phone rotated.mp4"
    moving_faces_video(tmp_path / "u.avi", face_bgr, frames=6, fps=5)
    ffmpeg("-i", str(tmp_path / "u.avi"), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src))
    # The stored pixels stay landscape; the display matrix says "turn 90 degrees", as phones write it.
    ffmpeg("-display_rotation:v:0", "90", "-i", str(src), "-c", "copy", str(rotated))
    res = batchemo.analyze_video(rotated, tmp_path / "rot", model, progress=False)
    cap = cv2.VideoCapture(str(res.out / "annotated.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == (480, 320)  # written upright, as the viewer shows it
    assert res.frames_decoded == 6


def test_folder_of_videos(clip, tmp_path, model):
    d = tmp_path / "vids"
    d.mkdir()
    for name in ("a.avi", "b.avi"):
        (d / name).write_bytes(clip.read_bytes())
    r = runner.invoke(app, ["video", str(d), "--out", str(tmp_path / "o"), "--no-progress", "--no-annotate"])
    assert r.exit_code == 0, r.output
    assert len(batchemo.read_report(tmp_path / "o" / "a")) == len(batchemo.read_report(tmp_path / "o" / "b")) == 60


def test_rows_packed_along_the_way_give_the_same_report(clip, clip_report, tmp_path, model, monkeypatch):
    """Long videos pack face rows into DataFrames as they go (flat memory); the report must not change."""
    import batchemo.jobs.video_pass as VP

    monkeypatch.setattr(VP, "PACK_ROWS", 7)  # pack many times over this 60-face clip
    res = batchemo.analyze_video(clip, tmp_path / "packed", model, VideoOptions(annotate=False), progress=False)
    assert res.faces == 2 * FRAMES
    for name in ("frames.csv", "timeline.csv", "summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "packed" / name), pd.read_csv(clip_report / name))


def test_a_video_tree_with_repeated_names_is_mirrored_and_nothing_is_overwritten(clip, tmp_path):
    """Lab recordings: the same participant file name in several session folders, and one broken file."""
    tree = video_tree(tmp_path / "vf", clip, ("day1/p01.avi", "day2/p01.avi", "top.avi"))
    out = tmp_path / "o"
    r = runner.invoke(app, ["video", str(tree), "--out", str(out), "--no-progress", "--no-annotate"])
    assert r.exit_code == 1, r.output  # the broken file, named on its own line; the others all analysed
    assert any("broken.avi" in line and "not a readable video" in line for line in r.output.splitlines())
    for rel in ("day1/p01", "day2/p01", "top"):
        df = batchemo.read_report(out / rel)
        assert len(df) == 2 * FRAMES and set(df["source"]) == {rel + ".avi"}
        assert json.loads((out / rel / "run.json").read_text())["input"] == str((tree / (rel + ".avi")).resolve())


def test_a_video_rerun_with_other_settings_is_refused_not_skipped(two_face_clip, tmp_path, model):
    """A complete report is skipped on a re-run only when it was made with the same model and settings
    (the summary options, which a batch counts by each video's own, may differ)."""
    from batchemo.jobs.runtime import OutputConflict

    out, quiet = tmp_path / "v", {"annotate": False, "html": False}
    first = batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**quiet), progress=False)
    assert first.status == "complete"
    again = batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**quiet, batch_size=8, min_track_s=2.0),
                                   progress=False)
    assert again.status == "skipped"
    with pytest.raises(OutputConflict, match=r"options\.detect_every 30 -> 10.*--redo"):
        batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**quiet, detect_every=10), progress=False)
    r = runner.invoke(app, ["video", str(two_face_clip), "--out", str(out), "--detect-every", "10", "--no-progress",
                            "--no-annotate", "--no-html"])
    assert r.exit_code == 2 and "other settings" in r.output
    redone = batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**quiet, detect_every=10, redo=True),
                                    progress=False)
    assert redone.status == "complete"


def test_a_video_redo_without_the_extras_removes_those_of_the_analysis_it_replaces(two_face_clip, tmp_path, model):
    out = tmp_path / "x"
    batchemo.analyze_video(two_face_clip, out, model, VideoOptions(), progress=False)
    assert (out / "annotated.mp4").exists() and (out / "report.html").exists()
    batchemo.analyze_video(two_face_clip, out, model, VideoOptions(annotate=False, html=False, redo=True),
                           progress=False)
    assert not [n for n in ("annotated.mp4", "report.html", "thumbs", "faces") if (out / n).exists()]
    assert (out / "frames.csv").exists()
