"""The Ray runner on a local Ray instance gives the local runner's reports, row for row."""
from __future__ import annotations

import pandas as pd
import pytest

import batchemo
from batchemo.jobs.options import FolderOptions
from batchemo.jobs.options import VideoOptions

from .conftest import moving_faces_video, need, variable_rate_video

try:
    import ray
    RAY_ERROR: ImportError | None = None
except ImportError as e:  # held for local_ray: failing here would stop the whole suite's collection
    ray, RAY_ERROR = None, e


@pytest.fixture(scope="module")
def local_ray():
    # Only Ray itself missing is "the extra is not installed"; an ImportError from inside Ray (or from a package
    # it imports) is a broken install, a failure everywhere.
    missing = isinstance(RAY_ERROR, ModuleNotFoundError) and RAY_ERROR.name == "ray"
    need(not missing, "the Ray extra is not installed (pip install 'batchemo[ray]')")
    if RAY_ERROR is not None:
        pytest.fail(f"Ray is installed but does not import: {RAY_ERROR!r}", pytrace=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def range_tasks(monkeypatch) -> list[int]:
    """A list the driver's frame-range fan-out (`_analyse_ranges`) appends its number of range tasks to, once per
    video it cuts; a video analysed in one task never gets there."""
    from batchemo.jobs import ray_runner

    tasks: list[int] = []
    fan_out = ray_runner._analyse_ranges

    def spy(path, model, opts, plan, total, progress):
        tasks.append(len(plan))
        return fan_out(path, model, opts, plan, total, progress)

    monkeypatch.setattr(ray_runner, "_analyse_ranges", spy)
    return tasks


def test_folder_on_ray_equals_local(sample_tree, tmp_path, model, local_ray):
    local = batchemo.analyze_folder(sample_tree, tmp_path / "local", model, FolderOptions(), progress=False)
    onray = batchemo.analyze_folder(sample_tree, tmp_path / "ray", model, FolderOptions(ray="local"), progress=False)
    for name in ("faces.csv", "files.csv", "summary.csv"):
        a, b = pd.read_csv(local.out / name), pd.read_csv(onray.out / name)
        pd.testing.assert_frame_equal(a.drop(columns=["mtime_ns"], errors="ignore"),
                                      b.drop(columns=["mtime_ns"], errors="ignore"), atol=1e-5)
    local_ann = sorted(p.relative_to(local.out).as_posix() for p in (local.out / "annotated").rglob("*.*"))
    ray_ann = sorted(p.relative_to(onray.out).as_posix() for p in (onray.out / "annotated").rglob("*.*"))
    assert local_ann == ray_ann and len(local_ann) == 6


def test_videos_on_ray_equal_local(face_bgr, tmp_path, model, local_ray):
    from batchemo.jobs.ray_runner import ray_videos

    clips = []
    for name in ("a.avi", "b.avi"):
        moving_faces_video(tmp_path / name, face_bgr, frames=20, fps=10)
        clips.append(tmp_path / name)
    opts = VideoOptions(annotate=False)
    results = ray_videos(clips, [tmp_path / "ray" / c.stem for c in clips], model.path, opts, "local")
    assert [r.status for r in results] == ["complete", "complete"]
    for c in clips:
        local = batchemo.analyze_video(c, tmp_path / "local" / c.stem, model, opts, progress=False)
        for name in ("frames.csv", "timeline.csv", "summary.csv"):
            pd.testing.assert_frame_equal(pd.read_csv(local.out / name), pd.read_csv(tmp_path / "ray" / c.stem / name),
                                          atol=1e-5)


def test_long_video_split_into_ranges_on_ray_equals_local(face_bgr, tmp_path, model, local_ray, monkeypatch):
    import cv2

    from batchemo.jobs.ray_runner import ray_videos

    clip = tmp_path / "long clip.avi"
    moving_faces_video(clip, face_bgr, frames=120, fps=24)
    opts = VideoOptions(split_frames=30)  # 120 frames: ranges of at most 30 (whole detection periods) on two workers
    tasks = range_tasks(monkeypatch)
    [res] = ray_videos([clip], [tmp_path / "ray"], model.path, opts, "local")
    assert len(tasks) == 1 and tasks[0] >= 120 // 30
    assert res.status == "complete" and res.frames_decoded == 120
    local = batchemo.analyze_video(clip, tmp_path / "local", model, opts, progress=False)
    for name in ("frames.csv", "timeline.csv", "summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(local.out / name), pd.read_csv(tmp_path / "ray" / name), atol=1e-5)
    cap = cv2.VideoCapture(str(tmp_path / "ray" / "annotated.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 120
    assert not list((tmp_path / "ray").glob(".*tmp*"))  # segments cleaned up
    # re-run: skipped as complete, like a local run
    [again] = ray_videos([clip], [tmp_path / "ray"], model.path, opts, "local")
    assert again.status == "skipped"


def test_a_video_cut_into_ranges_takes_the_runs_events_log(face_bgr, tmp_path, model, local_ray, monkeypatch):
    """The driver writes a cut video's reports with the events the run read once (analyze_videos hands the log
    down): the file gone since, its responses and run.json's digest are still the run's."""
    import json

    from batchemo.jobs.ray_runner import ray_videos
    from batchemo.report.events import read_log

    clip = tmp_path / "long.avi"
    moving_faces_video(clip, face_bgr, frames=60, fps=24)
    events = tmp_path / "ev.csv"
    events.write_text("time_s,label\n0.5,x\n")
    log = read_log(events)
    events.unlink()
    tasks = range_tasks(monkeypatch)
    opts = VideoOptions(split_frames=30, annotate=False, events=str(events))
    [res] = ray_videos([clip], [tmp_path / "ray"], model.path, opts, "local", events=log)
    assert tasks and res.status == "complete"
    responses = batchemo.read_report(tmp_path / "ray" / "responses.csv")
    assert set(responses["label"]) == {"x"} and len(responses)
    assert json.loads((tmp_path / "ray" / "run.json").read_text())["derived"]["events_sha256"] == log.sha256


def test_variable_rate_video_on_ray_is_one_task_equal_to_local(face_bgr, tmp_path, model, local_ray, monkeypatch):
    """Frame ranges would misnumber its frames (a seek there lands on a later frame than it says)."""
    from batchemo.jobs.ray_runner import ray_videos

    clip = variable_rate_video(tmp_path, face_bgr)
    opts = VideoOptions(split_frames=30, annotate=False)  # 96 frames: ranges, were it evenly timed
    tasks = range_tasks(monkeypatch)
    [res] = ray_videos([clip], [tmp_path / "ray"], model.path, opts, "local")
    assert tasks == []  # never cut into ranges: the whole video went to one task
    assert res.status == "complete" and res.frames_decoded == 96
    local = batchemo.analyze_video(clip, tmp_path / "local", model, opts, progress=False)
    for name in ("frames.csv", "timeline.csv", "summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(local.out / name), pd.read_csv(tmp_path / "ray" / name), atol=1e-5)


def test_ray_keeps_its_info_lines_to_itself(local_ray):
    import logging

    from batchemo.jobs.ray_runner import init

    init("local")
    # ray.data sets its logger up when first imported; the job's level must survive that, or every run prints
    # Ray Data's execution plans between the progress bar's updates.
    assert logging.getLogger("ray.data").getEffectiveLevel() >= logging.WARNING
