"""Kill -9 in the middle of folder and video runs, re-run: the reports equal an uninterrupted run's."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from batchemo.report import read_report

from .conftest import ROOT, SAMPLES, moving_faces_video

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "batchemo", *args, "--no-progress"]


def assert_final_files_whole(out: Path) -> None:
    """Whatever exists under a final name is complete: CSVs parse, images and videos decode. (A kill can land
    in the middle of an atomic write and leave its temp file, `.NAME.XXXXXXXX.tmp`: not a final name.)"""
    for name in ("faces.csv", "files.csv", "summary.csv", "frames.csv", "timeline.csv"):
        if (out / name).exists():
            pd.read_csv(out / name)
    for p in (out / "annotated").rglob("*") if (out / "annotated").exists() else []:
        if p.is_file() and not p.name.endswith(".tmp"):
            assert cv2.imread(str(p)) is not None, p
    if (out / "annotated.mp4").exists():
        assert cv2.VideoCapture(str(out / "annotated.mp4")).read()[0]


def kill_when(args: list[str], ready, timeout: float = 240) -> bool:
    """Start a run and SIGKILL it once ready() is true; False if it finished first."""
    p = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.time()
    while p.poll() is None and time.time() - t < timeout:
        if ready():
            p.send_signal(signal.SIGKILL)
            p.wait()
            return True
        time.sleep(0.02)
    p.wait()
    return False


def same_report(a: pd.DataFrame, b: pd.DataFrame) -> None:
    probs = [c for c in a.columns if c.startswith("p_")] + ["confidence"]
    pd.testing.assert_frame_equal(a.drop(columns=probs), b.drop(columns=probs))
    np.testing.assert_allclose(a[probs].to_numpy(), b[probs].to_numpy(), atol=1e-4)


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill") / "photos"
    imgs = sorted(p for p in (SAMPLES / "images").rglob("*") if p.is_file())
    for i in range(5):
        for p in imgs:
            dst = root / f"set{i}" / p.relative_to(SAMPLES / "images")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst)
    return root


@pytest.fixture(scope="module")
def photo_reference(photo_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    r = subprocess.run(cli("folder", str(photo_tree), "--out", str(out)), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("chunks", [1, 3, 6], ids=["after-1-chunk", "after-3-chunks", "after-6-chunks"])
def test_folder_killed_and_resumed(photo_tree, photo_reference, tmp_path, chunks):
    out = tmp_path / "out"
    args = cli("folder", str(photo_tree), "--out", str(out), "--batch-size", "2", "--workers", "1")
    journal = out / ".journal"
    killed = kill_when(args, lambda: journal.exists() and len(list(journal.glob("*.files.csv"))) >= chunks)
    assert killed, "the run finished before it could be killed"
    assert_final_files_whole(out)
    assert not (out / "faces.csv").exists()
    # The photos the journal's whole chunks hold (a files chunk is written after its faces chunk, and each
    # photo's annotated copy before both) are done: the resumed run takes them as they are.
    chunk_files = list(journal.glob("*.files.csv"))
    assert len(chunk_files) >= chunks
    journalled = pd.concat([read_report(p) for p in chunk_files])
    assert (journalled["status"] == "ok").all()  # copies of the sample photos: each one readable
    r = subprocess.run(args, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    reused = journalled["source"].nunique()
    assert f"({reused} already done)" in r.stdout, r.stdout
    assert json.loads((out / "run.json").read_text())["counts"]["resumed_from_previous"] == reused
    same_report(read_report(photo_reference), read_report(out))
    pd.testing.assert_frame_equal(read_report(photo_reference / "files.csv").drop(columns="mtime_ns"),
                                  read_report(out / "files.csv").drop(columns="mtime_ns"))
    faces = read_report(out)
    assert not faces.duplicated(["source", "face"]).any()
    assert not list(out.rglob("*.tmp"))  # the resumed run removed what the kill cut short
    assert sorted(p.relative_to(out / "annotated").as_posix() for p in (out / "annotated").rglob("*.*")) == \
        sorted(p.relative_to(photo_reference / "annotated").as_posix()
               for p in (photo_reference / "annotated").rglob("*.*"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, face_bgr):
    path = tmp_path_factory.mktemp("kv") / "clip.avi"
    moving_faces_video(path, face_bgr, frames=240, fps=24)
    return path


# `python -c KILL_AT NAME WHEN ARGS...`: batchemo ARGS, SIGKILLed by itself at a known point of its writes: once the
# first file called NAME is in place (WHEN "after"), or with that file's temp half written (WHEN "during"). A
# SIGKILL runs no clean-up, as a kill from outside.
KILL_AT = """
import os, signal, sys
from pathlib import Path
from batchemo.report import atomic as A  # where write_csv and write_json look write_atomic up

name, when, args = sys.argv[1], sys.argv[2], sys.argv[3:]
write_atomic = A.write_atomic

def killed(path, write):
    if Path(path).name != name:
        return write_atomic(path, write)
    def half(tmp):
        write(tmp)
        Path(tmp).write_bytes(Path(tmp).read_bytes()[: Path(tmp).stat().st_size // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    write_atomic(path, half if when == "during" else write)
    os.kill(os.getpid(), signal.SIGKILL)

A.write_atomic = killed
from batchemo.cli import app
app(args, prog_name="batchemo")
"""


def kill_at(name: str, when: str, args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-c", KILL_AT, name, when, *args[3:]], env=ENV, capture_output=True,
                       text=True)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-2000:])


@pytest.fixture(scope="module")
def clip_reference(clip, tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("kv") / "ref"
    r = subprocess.run(cli("video", str(clip), "--out", str(ref)), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ref


def record_status(out: Path) -> str:
    return json.loads((out / "run.json").read_text())["status"]


@pytest.mark.parametrize("when", ["while-encoding", "after-record", "summary-half-written"])
def test_video_killed_and_redone(clip, clip_reference, tmp_path, when):
    ref = clip_reference
    out = tmp_path / "out"
    args = cli("video", str(clip), "--out", str(out))
    written = {"frames.csv", "timeline.csv", "summary.csv", "annotated.mp4"}
    if when == "while-encoding":
        assert kill_when(args, lambda: any(p.stat().st_size > 20_000 for p in out.glob(".annotated.*.tmp.mp4")))
    elif when == "after-record":  # the first file a run writes: the record that it has not finished
        kill_at("run.json", "after", args)
        assert [p.name for p in out.iterdir()] == ["run.json"]
    else:  # the pass over, its rows and the timeline on disk, the summary's temp file half written
        kill_at("summary.csv", "during", args)
        written -= {"frames.csv", "timeline.csv"}
        same_report(read_report(ref), read_report(out))  # whole: every row
        pd.testing.assert_frame_equal(read_report(ref / "timeline.csv"), read_report(out / "timeline.csv"),
                                      atol=1e-4)
        [half] = out.glob(".summary.csv.*.tmp")
        assert 0 < half.stat().st_size < (ref / "summary.csv").stat().st_size
        [encoded] = out.glob(".annotated.*.tmp.mp4")  # the annotated video, not yet moved to its name
        assert {p.name for p in out.iterdir()} == {"run.json", "frames.csv", "timeline.csv", half.name, encoded.name}
    for name in written:
        assert not (out / name).exists(), name  # not written yet: nothing half-written under a final name
    # The record is written first, and says the run is not done, so the next run neither skips the video nor
    # takes what is there for files it did not write.
    assert record_status(out) == "unfinished"
    r = subprocess.run(args, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert record_status(out) == "complete"
    assert not list(out.glob(".*tmp*"))
    same_report(read_report(ref), read_report(out))
    pd.testing.assert_frame_equal(pd.read_csv(ref / "summary.csv"), pd.read_csv(out / "summary.csv"), atol=1e-4)
    n = 0
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    while cap.read()[0]:
        n += 1
    assert n == 240


def interrupt_when(args: list[str], ready, timeout: float = 240) -> subprocess.CompletedProcess | None:
    """Start a run and send SIGINT (Ctrl-C) once ready() is true; its result, or None if it finished first."""
    # A shell's background jobs start with SIGINT ignored (and Python then keeps ignoring it): give the child
    # the default disposition, as a terminal would.
    p = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t = time.time()
    while p.poll() is None and time.time() - t < timeout:
        if ready():
            p.send_signal(signal.SIGINT)
            out, err = p.communicate()
            return subprocess.CompletedProcess(args, p.returncode, out, err)
        time.sleep(0.02)
    p.communicate()
    return None


def test_ctrl_c_says_what_was_kept_and_leaves_no_temp_video(clip, tmp_path):
    out = tmp_path / "out"
    args = cli("video", str(clip), "--out", str(out))
    r = interrupt_when(args, lambda: any(p.stat().st_size > 20_000 for p in out.glob(".annotated.*.tmp.mp4")))
    assert r is not None, "the run finished before it could be interrupted"
    assert r.returncode == 130 and "Traceback" not in r.stderr
    assert "interrupted" in r.stderr and "run the same command again to resume" in r.stderr
    assert not list(out.glob(".annotated.*tmp*"))  # the half-encoded video is gone
    assert subprocess.run(args, env=ENV, capture_output=True, text=True).returncode == 0


def test_ctrl_c_of_a_folder_run_keeps_finished_photos(photo_tree, tmp_path):
    out = tmp_path / "out"
    args = cli("folder", str(photo_tree), "--out", str(out), "--batch-size", "1", "--workers", "1")
    r = interrupt_when(args, lambda: len(list((out / ".journal").glob("*.files.csv"))) >= 1
                       if (out / ".journal").exists() else False)
    assert r is not None, "the run finished before it could be interrupted"
    assert r.returncode == 130 and "Traceback" not in r.stderr and "photos finished so far are kept" in r.stderr
    r2 = subprocess.run(args, env=ENV, capture_output=True, text=True)
    import re

    assert r2.returncode == 0 and int(re.search(r"\((\d+) already done\)", r2.stdout)[1]) >= 1
