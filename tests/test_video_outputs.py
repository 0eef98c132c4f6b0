"""A video's report folder says what is in it: one video per folder, no old record over new rows, no old extras
after a re-analysis; variable-rate video timed by its own clock and never cut into misnumbered frame ranges."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

import batchemo
from batchemo.jobs import ranges as RG
from batchemo.jobs import video as V
from batchemo.jobs.options import VideoOptions
from batchemo.jobs.video_pass import Schedule
from batchemo.jobs.videos import analyze_videos, expand_inputs, output_dirs
from batchemo.pipeline.encode import ffmpeg_exe

from .conftest import VFR_FPS as FPS, VFR_GAP_AFTER as GAP_AFTER, VFR_GAP_S as GAP_S, moving_faces_video, \
    variable_rate_video

QUIET = {"annotate": False, "html": False}


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory, face_bgr):
    return variable_rate_video(tmp_path_factory.mktemp("vfr"), face_bgr)


def test_variable_rate_video_is_timed_by_its_own_clock(vfr_clip, tmp_path, model):
    res = batchemo.analyze_video(vfr_clip, tmp_path / "r", model, VideoOptions(**QUIET), progress=False)
    df = batchemo.read_report(res.out)
    t = df.groupby("frame")["time_s"].first()
    np.testing.assert_allclose(t[t.index <= GAP_AFTER], t.index[t.index <= GAP_AFTER] / FPS, atol=1e-3)
    late = t[t.index > GAP_AFTER]
    np.testing.assert_allclose(late, late.index / FPS + GAP_S, atol=1e-3)  # frame index / fps would be 0.5 s early
    run = json.loads((res.out / "run.json").read_text())
    assert run["video"]["duration_s"] == pytest.approx(96 / FPS + GAP_S, abs=1 / FPS)  # the last frame's length: a guess


def test_variable_rate_video_is_not_cut_into_frame_ranges(vfr_clip, tmp_path):
    cap = cv2.VideoCapture(str(vfr_clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    opts = VideoOptions()
    plan = RG.plan(96, Schedule.of(fps, opts), opts, 30)
    assert len(plan) >= 2
    with pytest.raises(RG.NotSeekable, match="variable frame rate"):
        RG.check_seekable(vfr_clip, plan, fps)
    cfr = tmp_path / "cfr.mp4"  # the same frames re-timed evenly: ranges allowed
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(vfr_clip), "-vf",
                    f"setpts=N/{FPS}/TB", "-r", str(FPS), "-c:v", "libx264", "-preset", "ultrafast", str(cfr)],
                   check=True)
    RG.check_seekable(cfr, RG.plan(96, Schedule.of(FPS, opts), opts, 30), FPS)


def test_an_interrupted_redo_leaves_no_record_vouching_for_the_files(two_face_clip, tmp_path, model, monkeypatch):
    out = tmp_path / "v"
    assert batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**QUIET), progress=False).status == "complete"

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(V, "analyse_pass", killed)
        with pytest.raises(KeyboardInterrupt):
            batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**QUIET, redo=True), progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "unfinished"
    again = batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**QUIET), progress=False)
    assert again.status == "complete"  # analysed again, not skipped as "already complete"
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_a_changed_input_reanalysed_without_redo_drops_the_old_extras(two_face_clip, tmp_path, model):
    clip = tmp_path / "clip.avi"
    shutil.copy(two_face_clip, clip)
    out = tmp_path / "v"
    batchemo.analyze_video(clip, out, model, VideoOptions(), progress=False)
    assert (out / "annotated.mp4").exists() and (out / "report.html").exists()
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the recording replaced
    res = batchemo.analyze_video(clip, out, model, VideoOptions(**QUIET), progress=False)
    assert res.status == "complete"
    assert not [n for n in ("annotated.mp4", "report.html", "thumbs") if (out / n).exists()]


def test_videos_that_differ_only_by_extension_get_a_report_each(two_face_clip, face_bgr, tmp_path, model):
    d = tmp_path / "session"
    d.mkdir()
    shutil.copy(two_face_clip, d / "p01.avi")
    moving_faces_video(d / "p01.mkv", face_bgr, frames=12, fps=10.0)
    results = analyze_videos([d], tmp_path / "o", model, VideoOptions(**QUIET), progress=False)
    assert [r.status for r in results] == ["complete", "complete"]
    for name, frames in (("p01_avi", 20), ("p01_mkv", 12)):
        run = json.loads((tmp_path / "o" / name / "run.json").read_text())
        assert run["input"] == str((d / name.replace("_", ".")).resolve())
        assert run["counts"]["frames_decoded"] == frames


def test_videos_that_would_share_a_report_folder_are_refused(two_face_clip, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(two_face_clip, tmp_path / sub / "clip.avi")
    files = [tmp_path / "a" / "clip.avi", tmp_path / "b" / "clip.avi"]
    with pytest.raises(ValueError, match="would share the report folder"):
        output_dirs(expand_inputs(files), tmp_path / "o")
    with pytest.raises(ValueError, match="given twice"):
        output_dirs(expand_inputs([files[0], files[0]]), None)
    assert output_dirs(expand_inputs([tmp_path]), tmp_path / "o") == [tmp_path / "o" / "a" / "clip",
                                                                       tmp_path / "o" / "b" / "clip"]


def test_crops_of_a_variable_rate_video_come_from_the_frame_named(vfr_clip, monkeypatch):
    """A seek there reports the frame asked for and shows a later one: crops are read forward instead."""
    from batchemo.pipeline import crops as C

    monkeypatch.setattr(C, "SEEK_GAP", 5)  # seek over short gaps too, as over long ones in a long video
    cap = cv2.VideoCapture(str(vfr_clip))
    every = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        every.append(img)
    cap.release()
    wanted = [3, 40, 70, 90]
    got = dict(C.video_images(vfr_clip, wanted))
    assert sorted(got) == wanted
    for f in wanted:
        np.testing.assert_array_equal(got[f], every[f])


def test_the_packet_timestamps_are_read_once_per_video(vfr_clip, tmp_path, model, monkeypatch):
    """The pass, its crops and its thumbnails all ask whether the video is variable-rate: one ffmpeg scan."""
    from batchemo.pipeline import encode as E

    calls = []
    read = E._read_frame_times
    monkeypatch.setattr(E, "_read_frame_times", lambda p: calls.append(p) or read(p))
    monkeypatch.setattr(E, "_LAST_TIMES", [None, None])
    res = batchemo.analyze_video(vfr_clip, tmp_path / "r", model, VideoOptions(annotate=False, save_faces=True),
                                 progress=False)
    assert res.status == "complete" and (tmp_path / "r" / "faces" / "index.csv").exists()
    assert len(calls) == 1
