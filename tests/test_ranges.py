"""A video cut into frame ranges (how Ray shares one long video) gives the reports of one pass over it."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import batchemo
from batchemo.jobs import ranges as RG
from batchemo.jobs.options import VideoOptions
from batchemo.jobs.video_pass import Schedule

from .conftest import moving_faces_video

FRAMES, FPS = 150, 24


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, face_bgr):
    path = tmp_path_factory.mktemp("rg") / "clip.avi"
    moving_faces_video(path, face_bgr, frames=FRAMES, fps=FPS)
    return path


@pytest.fixture(scope="module")
def one_pass(long_clip, tmp_path_factory, model):
    return batchemo.analyze_video(long_clip, tmp_path_factory.mktemp("one") / "r", model, VideoOptions(),
                                  progress=False)


def test_plan_covers_every_frame_once_and_warms_up_on_detection_frames():
    opts = VideoOptions()
    sched = Schedule.of(24.0, opts)
    plan = RG.plan(1000, sched, opts, 100)
    assert plan[0].start == 0 and plan[-1].stop is None
    assert all(a.stop == b.start for a, b in zip(plan, plan[1:]))
    period = sched.every * sched.detect_every
    for r in plan:
        assert r.start % period == 0 and r.warm % period == 0 and r.warm <= r.start
    assert all(r.start - r.warm >= opts.max_gap_s * 24 for r in plan[1:])  # warm-up longer than a track gap
    tiny = RG.plan(1000, sched, opts, 0)  # never a range shorter than one detection period
    assert all(r.stop - r.start == period for r in tiny[:-1]) and tiny[-1].start < 1000


def test_ranges_joined_equal_one_pass(long_clip, one_pass, model):
    opts = VideoOptions()
    sched = Schedule.of(FPS, opts)
    plan = RG.plan(FRAMES, sched, opts, 30)
    assert len(plan) >= 4 and any(r.warm < r.start for r in plan)
    parts = [RG.analyse_range(long_clip, model, opts, r) for r in plan]
    assert sum(p.decoded for p in parts) == FRAMES
    assert sum(p.analysed for p in parts) == FRAMES
    joined = RG.join_ranges([(r, p.frames) for r, p in zip(plan, parts)])
    # short_track and uncertain are derived by write_reports, after the join (the Ray runner calls it too)
    expected = pd.read_csv(one_pass.out / "frames.csv").drop(columns=["short_track", "uncertain"])
    got = pd.read_csv(pd.io.common.StringIO(joined.to_csv(index=False)))
    pd.testing.assert_frame_equal(got, expected, atol=1e-5)
    assert sorted(got["face"].unique()) == [0, 1]


def test_join_gives_new_faces_new_ids_and_keeps_matched_ones():
    def rows(frame, face, x):
        return {"frame": frame, "face": face, "x": x, "y": 10, "w": 50, "h": 50}

    r0, r1 = RG.FrameRange(0, 10, 0), RG.FrameRange(10, None, 5)
    a = pd.DataFrame([rows(f, 0, 100) for f in range(10)])
    # the new range calls the same face 1 and sees a second face appear after the overlap
    b = pd.DataFrame([rows(f, 1, 100) for f in range(5, 20)] + [rows(f, 0, 300) for f in range(15, 20)])
    joined = RG.join_ranges([(r0, a), (r1, b)])
    assert len(joined) == 10 + 10 + 5
    assert set(joined[joined["x"] == 100]["face"]) == {0}
    assert set(joined[joined["x"] == 300]["face"]) == {1}


def test_join_numbers_faces_as_the_tracker_did_not_left_to_right():
    """A weak face on the right (born at frame 0, reported once found again) and a trusted face entering on
    the left are first reported on the same frame: one pass numbers the older track first, and a join of ranges
    must give the same ids, not renumber them by position."""
    from batchemo.pipeline.track import Tracker

    t = Tracker(confirm_hits=2)
    rows = []
    for frame, boxes, trusted in [(0, [[500, 10, 50, 50]], [False]),
                                  (1, [[100, 10, 50, 50], [502, 10, 50, 50]], [True, False]),
                                  (2, [[102, 10, 50, 50], [504, 10, 50, 50]], [True, True])]:
        t.update(np.array(boxes), frame, trusted=np.array(trusted))
        ids, live = t.live(frame)
        rows += [{"frame": frame, "face": int(i), "x": int(b[0]), "y": 10, "w": 50, "h": 50} for i, b in zip(ids, live)]
    one_pass = pd.DataFrame(rows)
    assert one_pass.loc[one_pass["x"] >= 500, "face"].unique().tolist() == [0]  # the older track: number 0
    joined = RG.join_ranges([(RG.FrameRange(0, None, 0), one_pass)])
    pd.testing.assert_frame_equal(joined, one_pass.sort_values(["frame", "face"]).reset_index(drop=True))


def test_annotated_segments_join_into_the_whole_video(long_clip, one_pass, tmp_path, model):
    opts = VideoOptions()
    sched = Schedule.of(FPS, opts)
    plan = RG.plan(FRAMES, sched, opts, 30)
    frames = pd.read_csv(one_pass.out / "frames.csv")
    segments = [RG.annotate_range(long_clip, frames, model.classes, opts, r, tmp_path / f"seg{k}.mp4").path
                for k, r in enumerate(plan)]
    assert RG.concat_segments(segments, tmp_path / "joined.mp4") == ""
    a, b = cv2.VideoCapture(str(one_pass.out / "annotated.mp4")), cv2.VideoCapture(str(tmp_path / "joined.mp4"))
    n = 0
    while True:
        ok_a, fa = a.read()
        ok_b, fb = b.read()
        assert ok_a == ok_b
        if not ok_a:
            break
        # the same boxes and labels drawn: only H.264 noise apart
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 2.0, n
        n += 1
    assert n == FRAMES


def test_h264_with_b_frames_seeks_exactly_and_joins_equal(long_clip, tmp_path, model):
    """Phone and camera videos are H.264 with B-frames: seeking must land on the exact frame there too."""
    import subprocess

    from batchemo.pipeline.ffmpeg import ffmpeg_exe

    mp4 = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(long_clip), "-c:v", "libx264",
                    "-preset", "veryfast", "-bf", "3", "-g", "48", "-pix_fmt", "yuv420p", str(mp4)], check=True)
    opts = VideoOptions(annotate=False)
    sched = Schedule.of(FPS, opts)
    plan = RG.plan(FRAMES, sched, opts, 30)
    RG.check_seekable(mp4, plan, FPS)  # raises NotSeekable if OpenCV cannot land on the frame
    one = batchemo.analyze_video(mp4, tmp_path / "one", model, opts, progress=False)
    joined = RG.join_ranges([(r, RG.analyse_range(mp4, model, opts, r).frames) for r in plan])
    got = pd.read_csv(pd.io.common.StringIO(joined.to_csv(index=False)))
    pd.testing.assert_frame_equal(got, pd.read_csv(one.out / "frames.csv").drop(columns=["short_track", "uncertain"]),
                                  atol=1e-5)
