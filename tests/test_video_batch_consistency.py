"""A batch of videos agrees with each video's own report: the batch summary row of a video that a re-run skips is
the one its own summary.csv gives, whatever settings the re-run has."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import batchemo
from batchemo.jobs.options import VideoOptions

QUIET = {"annotate": False, "html": False}


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def test_a_skipped_video_keeps_the_batch_row_of_its_own_summary(two_face_clip, tmp_path, model):
    """day1 is analysed keeping its short tracks (every track is short under --min-track 10); the re-run that adds
    day2 drops short tracks: day1 is skipped, and its batch row must still count what its summary.csv counts."""
    tree, out = tmp_path / "sessions", tmp_path / "out"
    (tree / "day1").mkdir(parents=True)
    shutil.copy(two_face_clip, tree / "day1" / "p01.avi")
    batchemo.analyze_videos([tree], out, model, VideoOptions(min_track_s=10.0, keep_short_tracks=True, **QUIET),
                            progress=False)
    (tree / "day2").mkdir()
    shutil.copy(two_face_clip, tree / "day2" / "p01.avi")
    results = batchemo.analyze_videos([tree], out, model, VideoOptions(min_track_s=10.0, **QUIET), progress=False)
    assert [r.status for r in results] == ["skipped", "complete"]

    batch = batchemo.read_report(out / "summary.csv")
    per_video = batch[batch["scope"] == "video"].set_index("source")
    classes = [c[len("share_"):] for c in batch.columns if c.startswith("share_")]
    kept = []
    for rel in ("day1/p01", "day2/p01"):
        assert batchemo.read_report(out / rel)["short_track"].all()  # both runs flag every track short
        own = batchemo.read_report(out / rel / "summary.csv")
        tracks, own_all = own[own["scope"] == "track"], own[own["scope"] == "all"].iloc[0]
        row = per_video.loc[f"{rel}.avi"]
        assert row["tracks"] == len(tracks)
        assert row["faces"] == tracks["frames"].sum()  # a track has one row per frame it is on
        assert _same(row["dominant"], own_all["dominant"])
        cols = [f"{k}_{c}" for k in ("share", "mean_p") for c in classes]
        np.testing.assert_allclose(row[cols].astype(float), own_all[cols].astype(float), atol=1e-6)
        kept.append(int(row["faces"]))
    assert kept[0] > 0 and kept[1] == 0  # day1 kept its short tracks, day2 left them out
    # files.csv counts every track of frames.csv and says how many are short, so its figures and summary.csv's
    # reconcile: day2's summary counts none of its tracks, all of which files.csv lists as short.
    files = batchemo.read_report(out / "files.csv").set_index("source")
    for rel in ("day1/p01", "day2/p01"):
        frames = batchemo.read_report(out / rel)
        row = files.loc[f"{rel}.avi"]
        assert (row["faces"], row["tracks"]) == (len(frames), frames["face"].nunique())
        assert row["short_tracks"] == row["tracks"] > 0
    assert per_video.loc["day2/p01.avi", "tracks"] == files.loc["day2/p01.avi", "tracks"] - files.loc[
        "day2/p01.avi", "short_tracks"]
    assert batch[batch["scope"] == "all"]["faces"].iloc[0] == sum(kept)


def test_ffmpeg_reads_a_video_once_and_its_length_is_recorded_once(two_face_clip, tmp_path, model, monkeypatch):
    """A video cut short needs both the container's duration (is it whole after all?) and whether it has audio
    (to mux it back into annotated.mp4): one `ffmpeg -i` gives both. The length the timeline and the pages show
    is worked out once, and run.json records it for them."""
    import batchemo.pipeline.ffmpeg as E

    cut = tmp_path / "cut.avi"
    data = two_face_clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    probes, run = [], E.subprocess.run

    def counting(cmd, *a, **k):
        if list(cmd[-2:]) == ["-i", str(cut)]:
            probes.append(cmd)
        return run(cmd, *a, **k)

    monkeypatch.setattr(E.subprocess, "run", counting)
    res = batchemo.analyze_video(cut, tmp_path / "o", model, VideoOptions(html=False), progress=False)
    assert res.status == "partial" and (res.out / "annotated.mp4").exists()  # both questions were asked
    assert len(probes) == 1
    video = json.loads((res.out / "run.json").read_text())["video"]
    assert video["duration_s"] == pytest.approx(res.frames_decoded / video["fps_used"])
