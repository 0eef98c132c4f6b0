"""Real footage (../shared/media/realclips, present in CI): faces found on a head-turning clip scored against
the reference boxes as benchmarks/bench_faces.py scores them, no phantom on a clip with no face, and a clip whose
container overstates its frame count reported complete."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app

from .conftest import SHARED, benchmark, needs_shared

CLIPS = SHARED / "media" / "realclips"
runner = CliRunner()


def _recall(report: Path, clip: str) -> float:
    """Hits / must-find boxes of a video report, scored by bench_faces itself (its must-find rule, its one-to-one
    IoU matching), over every frame with a must-find box."""
    bench = benchmark("bench_faces")
    must, ignore = bench.split_reference(pd.read_csv(CLIPS / f"{clip}.faces.csv"),
                                         pd.read_csv(CLIPS / f"{clip}.faces_blazeface.csv"), "frame")
    s = bench.score_boxes(bench.read_rows(report / "frames.csv"), sorted(must), must, ignore, "frame")
    return s["hits"] / s["must"]


@needs_shared("media", "realclips", "liveportrait-d9.mp4")
def test_a_turning_head_is_one_track_found_on_nearly_every_frame(tmp_path, model):
    """liveportrait-d9: one person talking and turning; the previous tracker lost the face in a head turn
    (96.4 % of frames), plain full-resolution Haar finds it on 99.3 %."""
    res = batchemo.analyze_video(CLIPS / "liveportrait-d9.mp4", tmp_path / "d9", model, progress=False)
    frames = batchemo.read_report(res.out)
    assert _recall(res.out, "liveportrait-d9.mp4") >= 0.99
    long = frames[~frames["short_track"]]["face"].unique()
    assert len(long) == 1  # one person, one track
    assert {"profile", "detected"} <= set(frames["found_by"])


@needs_shared("media", "realclips", "pyfeat-no_face.mp4")
def test_no_face_no_phantom_and_an_overstated_frame_count_is_complete(tmp_path):
    r = runner.invoke(app, ["video", str(CLIPS / "pyfeat-no_face.mp4"), "--out", str(tmp_path / "nf"),
                            "--no-progress", "--no-annotate"])
    assert r.exit_code == 0, r.output  # says 98 frames, decodes 95, plays to the end: not partial
    run = json.loads((tmp_path / "nf" / "run.json").read_text())
    assert run["status"] == "complete" and run["counts"]["frames_decoded"] == 95
    assert run["counts"]["faces"] == 0
