"""A video's report folder says what is in it: one video per folder, no old record over new rows, no old extras
after a re-analysis; variable-rate video timed by its own clock and never cut into misnumbered frame ranges."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pandas as pd
import pytest

import batchemo
from batchemo.jobs import ranges as RG
from batchemo.jobs import video as V
from batchemo.jobs.options import VideoOptions
from batchemo.jobs.video_pass import Schedule
from batchemo.jobs.videos import analyze_videos, expand_inputs, output_dirs
from batchemo.pipeline.ffmpeg import ffmpeg_exe

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
    # the last frame's length: a guess
    assert run["video"]["duration_s"] == pytest.approx(96 / FPS + GAP_S, abs=1 / FPS)


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


def test_a_first_run_killed_after_its_tables_is_run_again_without_force(two_face_clip, tmp_path, model,
                                                                         monkeypatch):
    # killed while muxing the annotated video: frames.csv and the others written, run.json not yet
    out = tmp_path / "v"

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(V, "_finish_annotated", killed)
        with pytest.raises(KeyboardInterrupt):
            batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**QUIET), progress=False)
    assert (out / "frames.csv").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "unfinished"
    again = batchemo.analyze_video(two_face_clip, out, model, VideoOptions(**QUIET), progress=False)
    assert again.status == "complete"


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


def test_names_that_differ_only_by_case_get_a_report_folder_each(two_face_clip, tmp_path):
    # Clip/ and clip/ are one folder on macOS and Windows disks: two reports would be written into it
    d = tmp_path / "phone"
    d.mkdir()
    shutil.copy(two_face_clip, d / "Clip.avi")
    shutil.copy(two_face_clip, d / "clip.mkv")
    outs = output_dirs(expand_inputs([d]), tmp_path / "o")
    assert sorted(o.name for o in outs) == ["Clip_avi", "clip_mkv"]
    assert len({str(o).casefold() for o in outs}) == 2
    shutil.copy(two_face_clip, d / "CLIP.AVI")  # apart from Clip.avi only by case: a mark from each name
    outs = output_dirs(expand_inputs([d]), tmp_path / "o")
    assert len({str(o).casefold() for o in outs}) == 3
    assert [o.name for o in outs if o.name.startswith("clip_mkv")] == ["clip_mkv"]  # the others keep their names
    assert outs == output_dirs(expand_inputs([d]), tmp_path / "o")  # the same folders on every run
    (tmp_path / "Day1").mkdir()
    shutil.copy(two_face_clip, tmp_path / "Day1" / "clip.avi")
    given = output_dirs(expand_inputs([d / "Clip.avi", tmp_path / "Day1" / "clip.avi"]), tmp_path / "o")
    assert len({str(o).casefold() for o in given}) == 2  # given by name from two folders, apart only by case


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
    from batchemo.report import crops as C

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
    from batchemo.pipeline import ffmpeg as E

    calls = []
    read = E._read_frame_times
    monkeypatch.setattr(E, "_read_frame_times", lambda p: calls.append(p) or read(p))
    monkeypatch.setattr(E, "_LAST_TIMES", [None, None])
    res = batchemo.analyze_video(vfr_clip, tmp_path / "r", model, VideoOptions(annotate=False, save_faces=True),
                                 progress=False)
    assert res.status == "complete" and (tmp_path / "r" / "faces" / "index.csv").exists()
    assert len(calls) == 1


def test_a_clip_cut_without_reencoding_is_whole_and_timed_from_its_first_shown_frame(vfr_clip, tmp_path, model,
                                                                                        monkeypatch):
    # `ffmpeg -ss 1 -c copy` keeps the frames from the keyframe before the cut, timestamped before 0: decoded,
    # never shown, yet counted in the container's frame count.
    cut = tmp_path / "cut.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-ss", "1.3", "-i", str(vfr_clip),
                    "-c", "copy", str(cut)], check=True)
    cap = cv2.VideoCapture(str(cut))
    counted, times = cap.get(cv2.CAP_PROP_FRAME_COUNT), []
    while cap.read()[0]:
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    assert counted > len(times) + 2  # the case: more frames counted than shown
    import batchemo.jobs.video as V

    totals, bar = [], V.tqdm
    monkeypatch.setattr(V, "tqdm", lambda *a, **k: totals.append(k.get("total")) or bar(*a, **k))
    res = batchemo.analyze_video(cut, tmp_path / "r", model, VideoOptions(**QUIET), progress=False)
    assert res.status == "complete", res.note
    assert totals == [res.frames_decoded]  # the progress bar counts the frames shown, not the container's count
    t = batchemo.read_report(res.out).groupby("frame")["time_s"].first()
    assert len(t) > 40
    np.testing.assert_allclose(t, np.asarray(times)[t.index] - times[0], atol=1e-3)


def test_seconds_on_screen_end_with_the_video(tmp_path):
    from batchemo import report as R

    # --every 40 at 15 fps: analysed frames 2.67 s apart in a 6 s clip; the last one stands for 0.67 s.
    frames = pd.DataFrame({"frame": [0, 40, 80, 80], "face": [0, 0, 0, 1],
                           "time_s": [0.0, 40 / 15, 80 / 15, 80 / 15], "emotion": ["happy"] * 4, "p_happy": [1.0] * 4,
                           "p_sad": [0.0] * 4})
    sm = R.track_summary(frames, ["happy", "sad"], 40 / 15, end_s=6.0).set_index("scope")
    assert sm.loc["all", "seconds_on_screen"] == pytest.approx(6.0)
    assert sm[sm.face == 1]["seconds_on_screen"].item() == pytest.approx(6.0 - 80 / 15)
    assert list(V.short_tracks(frames, 40 / 15, 1.0, end_s=6.0)) == [False, False, False, True]
    # --every 200: the clip's one analysed frame is its 6 s, not 13.3 s.
    one = frames.iloc[:1]
    assert R.track_summary(one, ["happy", "sad"], 200 / 15, end_s=6.0)["seconds_on_screen"].max() == pytest.approx(6)


def test_full_frame_detection_is_about_once_a_second():
    # As docs/how-it-works.md says: the first whole count of analysed frames past 1 s (or --detect-every, if fewer).
    for fps in (10, 15, 24, 25, 29.97, 30, 60):
        for every in (1, 2, 3, 7):
            s = Schedule.of(fps, VideoOptions(every=every))
            assert s.detect_every <= 30 and s.detect_every * s.interval <= 1.0 + s.interval + 1e-9, (fps, every)
            assert s.detect_every == 30 or s.detect_every * s.interval > 1.0, (fps, every)


def test_the_timeline_picture_leaves_the_bins_a_face_is_absent_from_blank():
    from batchemo.report.plots import step_areas

    part = pd.DataFrame({"bin": [0, 2, 3, 5], "start_s": [0.0, 2, 3, 5], "end_s": [1.0, 3, 4, 6],
                         "smooth_happy": [1.0, 0.5, 0.2, 0.0], "smooth_sad": [0.0, 0.5, 0.8, 1.0]})
    areas = step_areas(part, ["happy", "sad"])
    assert [list(t) for t, _ in areas] == [[0, 1], [2, 3, 3, 4], [5, 6]]
    assert [list(ys[1]) for _, ys in areas] == [[0, 0], [0.5, 0.5, 0.8, 0.8], [1, 1]]


def test_a_video_whose_name_is_not_text_is_one_failure_and_the_rest_analysed(two_face_clip, tmp_path):
    import sys

    tree = tmp_path / "videos"
    tree.mkdir()
    shutil.copy(two_face_clip, tree / os.fsdecode(b"caf\xe9.avi"))  # OpenCV crashed the process on its name
    shutil.copy(two_face_clip, tree / "ok.avi")
    shutil.copy(two_face_clip, tree / "Screen Recording 10.00\u202fAM.mov")  # macOS's own name: kept as it is
    r = subprocess.run([sys.executable, "-m", "batchemo", "video", str(tree), "--out", str(tmp_path / "r"),
                        "--no-progress", "--no-annotate", "--no-html"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "caf\\xe9.avi: the file name is not valid UTF-8 text" in r.stderr
    files = batchemo.read_report(tmp_path / "r" / "files.csv").set_index("source")
    assert files.loc["ok.avi", "status"] == "complete" and files.loc["caf\\xe9.avi", "status"] == "failed"
    screen = "Screen Recording 10.00\u202fAM.mov"
    assert files.loc[screen, "status"] == "complete" and files.loc[screen, "report"] == screen[:-4]
    assert set(batchemo.read_report(tmp_path / "r")["source"]) == {"ok.avi", screen}
