"""Small things people notice on the command line: --version, no stray runtime log lines, plurals, help that
reads well (flags, usage lines, option ranges), a bare --ray, a single photo for `folder`, a photo refused by
`video`."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import get_args, get_type_hints

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from batchemo.cli import app, media
from batchemo.cli.app import plural
from batchemo.jobs.options import FOLDER_RANGES, VIDEO_RANGES, FolderOptions, VideoOptions
from batchemo.pipeline.detect import DETECT_RANGES, DetectOptions

from .conftest import ROOT, SAMPLES

runner = CliRunner()
COMMANDS = ["folder", "video", "train", "evaluate", "export", "calibrate"]


def _batchemo(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """A fresh process: the TFLite and FFmpeg lines are printed once per process, straight to fd 2."""
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "batchemo", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


# 1. --version

def test_version_prints_the_package_version_and_exits_0():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    assert r.output == f"batchemo {version('batchemo')}\n"


# 2. TFLite's own INFO line

def test_tflite_delegate_line_is_not_printed(tmp_path):
    r = _batchemo("folder", str(SAMPLES / "images"), "--out", str(tmp_path / "out"), "--no-html")
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stderr and "INFO:" not in r.stderr, r.stderr


def test_only_the_first_tflite_interpreter_mutes_stderr(monkeypatch):
    from batchemo.pipeline import model as M

    mutes = []
    real = M._native_stderr_muted
    monkeypatch.setattr(M, "_native_stderr_muted", lambda: mutes.append(1) or real())
    monkeypatch.setattr(M, "_delegate_announced", False)
    lite = M._LitePredictor.from_file(ROOT / "models" / "emotion.tflite")
    for n in (1, 3, 5):  # one interpreter per batch size
        assert lite(np.zeros((n, 48, 48, 1), np.float32)).shape == (n, 7)
    # XNNPACK announces itself once per process: muting fd 2 for later interpreters would only risk losing
    # another thread's messages.
    assert mutes == [1]


# 3. plurals, and 8. skipped non-image files in the folder summary

@pytest.fixture(scope="module")
def one_photo_run(tmp_path_factory, model):
    tree = tmp_path_factory.mktemp("one")
    shutil.copy(SAMPLES / "images" / "astronaut.png", tree / "astronaut.png")
    (tree / "notes.txt").write_text("not a photo")
    return runner.invoke(app, ["folder", str(tree), "--out", str(tree / "report"), "--no-progress", "--no-html"])


def test_folder_summary_says_1_file_and_1_face(one_photo_run):
    assert one_photo_run.exit_code == 0, one_photo_run.output
    assert "1 file (0 already done), 1 face, 0 errors" in one_photo_run.output


def test_folder_summary_counts_skipped_non_image_files(one_photo_run):
    assert "1 non-image file skipped" in one_photo_run.output


def test_video_line_says_1_track_and_1_face(capsys):
    r = SimpleNamespace(source="a.mp4", status="complete", note="", frames_decoded=1, frames_analysed=1, faces=1,
                        tracks=1, seconds=0.5, out="reports/a")
    media._print_video(r)
    assert "a.mp4: 1 frame (1 analysed), 1 face in 1 track, " in capsys.readouterr().out


def test_plural():
    assert [plural(n, "face") for n in (0, 1, 2)] == ["0 faces", "1 face", "2 faces"]


# 4. flags without `<bool>`, 5. usage lines in capitals

@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_type_after_flags_and_capital_arguments(command):
    r = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output and "{" not in r.output, r.output
    usage = next(line.strip() for line in r.output.splitlines() if "Usage:" in line)
    words = usage.split()[4:]  # after "Usage: batchemo COMMAND [OPTIONS]"
    assert words and all(w.rstrip(".").replace("_", "").isupper() for w in words), usage


def test_usage_lines_read_like_the_readme():
    def usage(command: str) -> str:
        out = runner.invoke(app, [command, "--help"], terminal_width=200, prog_name="batchemo").output
        return next(line.strip() for line in out.splitlines() if "Usage:" in line)

    assert usage("train") == "Usage: batchemo train [OPTIONS] DATA_DIR"
    assert usage("video") == "Usage: batchemo video [OPTIONS] INPUTS..."
    assert usage("evaluate") == "Usage: batchemo evaluate [OPTIONS] MODEL DATA_DIR"


def test_top_level_help_shows_no_bool():
    r = runner.invoke(app, ["--help"], terminal_width=200)
    assert "--version" in r.output and "<bool>" not in r.output


# 6. every numeric option of folder and video shows its range, the one the option classes check

def _numeric(annotation) -> bool:
    return annotation in (int, float) or (bool(get_args(annotation))
                                          and set(get_args(annotation)) - {type(None)} <= {int, float})


@pytest.mark.parametrize("command", ["folder", "video"])
def test_every_numeric_option_shows_its_range(command):
    hints = get_type_hints(getattr(media, command))
    params = typer.main.get_command(app).commands[command].params
    numeric = [p for p in params if _numeric(hints[p.name])]
    assert len(numeric) >= 7
    for p in numeric:
        assert p.help and ("(>=" in p.help or "(>" in p.help), f"--{p.name}: {p.help}"


def test_shown_ranges_are_the_checked_ones():
    helps = {p.name: p.help for c in ("folder", "video") for p in typer.main.get_command(app).commands[c].params}
    assert helps["workers"].endswith("(>=1)") and helps["bin"].endswith("(>0)")
    assert helps["scale_factor"].endswith("(>1)") and helps["detect_size"].endswith("(>=0)")


# Each bound written out here, not read from the range tables: a table that drifts from what the options refuse
# (or from what --help shows) fails. (options class, field, the last value accepted, the first refused, message)
EDGES = [
    (FolderOptions, "decode_side", 0, -1, "decode_side must be at least 0 (got -1)"),
    (FolderOptions, "batch_size", 1, 0, "batch_size must be at least 1 (got 0)"),
    (FolderOptions, "max_megapixels", 1e-3, 0, "max_megapixels must be more than 0 (got 0)"),
    (FolderOptions, "workers", 1, 0, "workers must be at least 1 (got 0)"),
    (FolderOptions, "pending_megapixels", 1e-3, 0.0, "pending_megapixels must be more than 0 (got 0)"),
    (VideoOptions, "every", 1, 0, "every must be at least 1 (got 0)"),
    (VideoOptions, "fps", 1e-3, 0.0, "fps must be more than 0 (got 0)"),
    (VideoOptions, "detect_every", 1, 0, "detect_every must be at least 1 (got 0)"),
    (VideoOptions, "max_detect_interval_s", 1e-3, 0, "max_detect_interval_s must be more than 0 (got 0)"),
    (VideoOptions, "follow_s", 0, -0.1, "follow_s must be at least 0 (got -0.1)"),
    (VideoOptions, "follow_min_match", -1, -1.01, "follow_min_match must be at least -1 and at most 1 (got -1.01)"),
    (VideoOptions, "follow_min_match", 1, 1.01, "follow_min_match must be at least -1 and at most 1 (got 1.01)"),
    (VideoOptions, "coast_s", 0, -0.1, "coast_s must be at least 0 (got -0.1)"),
    (VideoOptions, "min_new_score", 0, -0.01, "min_new_score must be at least 0 and at most 1 (got -0.01)"),
    (VideoOptions, "min_new_score", 1, 1.01, "min_new_score must be at least 0 and at most 1 (got 1.01)"),
    (VideoOptions, "confirm_hits", 1, 0, "confirm_hits must be at least 1 (got 0)"),
    (VideoOptions, "min_track_s", 0, -0.5, "min_track_s must be at least 0 (got -0.5)"),
    (VideoOptions, "batch_size", 1, 0, "batch_size must be at least 1 (got 0)"),
    (VideoOptions, "bin_s", 1e-3, 0, "bin_s must be more than 0 (got 0)"),
    (VideoOptions, "max_gap_s", 1e-3, 0, "max_gap_s must be more than 0 (got 0)"),
    (VideoOptions, "iou_threshold", 1e-3, 0, "iou_threshold must be more than 0 and at most 1 (got 0)"),
    (VideoOptions, "iou_threshold", 1, 1.01, "iou_threshold must be more than 0 and at most 1 (got 1.01)"),
    (VideoOptions, "max_tracks_plotted", 1, 0, "max_tracks_plotted must be at least 1 (got 0)"),
    (VideoOptions, "split_frames", 0, -1, "split_frames must be at least 0 (got -1)"),
    (FolderOptions, "min_confidence", 0, -0.01, "min_confidence must be at least 0 and at most 1 (got -0.01)"),
    (FolderOptions, "min_confidence", 1, 1.01, "min_confidence must be at least 0 and at most 1 (got 1.01)"),
    (VideoOptions, "min_confidence", 0, -0.01, "min_confidence must be at least 0 and at most 1 (got -0.01)"),
    (VideoOptions, "min_confidence", 1, 1.01, "min_confidence must be at least 0 and at most 1 (got 1.01)"),
    (VideoOptions, "episode_onset", 0.35, 0, "episode_onset must be more than 0 and at most 1 (got 0)"),
    (VideoOptions, "episode_onset", 1, 1.01, "episode_onset must be more than 0 and at most 1 (got 1.01)"),
    (VideoOptions, "episode_offset", 0, -0.01, "episode_offset must be at least 0 and at most 1 (got -0.01)"),
    (VideoOptions, "episode_offset", 0.5, 1.01, "episode_offset must be at least 0 and at most 1 (got 1.01)"),
    (VideoOptions, "episode_min_s", 0, -0.1, "episode_min_s must be at least 0 (got -0.1)"),
    (VideoOptions, "episode_bridge_s", 0, -0.1, "episode_bridge_s must be at least 0 (got -0.1)"),
    (VideoOptions, "episode_smooth_s", 0, -0.1, "episode_smooth_s must be at least 0 (got -0.1)"),
    (VideoOptions, "response_window_s", 1e-3, 0, "response_window_s must be more than 0 (got 0)"),
    (DetectOptions, "scale_factor", 1.001, 1.0, "scale_factor must be more than 1 (got 1)"),
    (DetectOptions, "min_neighbors", 0, -1, "min_neighbors must be at least 0 (got -1)"),
    (DetectOptions, "min_face", 1, 0, "min_face must be at least 1 (got 0)"),
    (DetectOptions, "detect_window", 0, -1, "detect_window must be at least 0 (got -1)"),
    (DetectOptions, "max_side", 0, -1, "max_side must be at least 0 (got -1)"),
    (DetectOptions, "max_side", 24, 23, "max_side must be 0 (no cap) or at least 24"),
]


@pytest.mark.parametrize("make,name,ok,bad,message", EDGES, ids=[f"{m.__name__}.{n}={b}" for m, n, _, b, _ in EDGES])
def test_option_classes_take_the_edge_and_refuse_past_it(make, name, ok, bad, message):
    assert getattr(make(**{name: ok}), name) == ok
    with pytest.raises(ValueError, match=re.escape(message)):
        make(**{name: bad})


def test_every_range_has_its_edges_tested():
    """A bound added to a table gets a row in EDGES (and an upper bound, a row at that end too)."""
    tested = {(m, n) for m, n, *_ in EDGES}
    for make, table in ((FolderOptions, FOLDER_RANGES), (VideoOptions, VIDEO_RANGES), (DetectOptions, DETECT_RANGES)):
        for name, rng in table.items():
            assert (make, name) in tested, f"{make.__name__}.{name}"
            if rng.high is not None:
                assert any(m is make and n == name and bad > rng.high for m, n, _, bad, _ in EDGES), name


# The command line's options with a range: the edge value reaches the job, the value past it is one line naming
# the option as the command line spells it, exit 2. (command, flag, the options field, accepted, refused, message)
CLI_EDGES = [
    ("folder", "--batch-size", "batch_size", "1", "0", "--batch-size must be at least 1 (got 0)"),
    ("folder", "--scale-factor", "detect.scale_factor", "1.001", "1", "--scale-factor must be more than 1 (got 1)"),
    ("folder", "--min-neighbors", "detect.min_neighbors", "0", "-1", "--min-neighbors must be at least 0 (got -1)"),
    ("folder", "--min-face", "detect.min_face", "1", "0", "--min-face must be at least 1 (got 0)"),
    ("folder", "--detect-size", "detect.max_side", "24", "23", "--detect-size must be 0 (no cap) or at least 24"),
    ("folder", "--detect-size", "detect.max_side", "0", "-1", "--detect-size must be at least 0 (got -1)"),
    ("folder", "--decode-side", "decode_side", "0", "-1", "--decode-side must be at least 0 (got -1)"),
    ("folder", "--max-megapixels", "max_megapixels", "0.001", "0", "--max-megapixels must be more than 0 (got 0)"),
    ("folder", "--workers", "workers", "1", "0", "--workers must be at least 1 (got 0)"),
    ("video", "--every", "every", "1", "0", "--every must be at least 1 (got 0)"),
    ("video", "--fps", "fps", "0.001", "0", "--fps must be more than 0 (got 0)"),
    ("video", "--detect-every", "detect_every", "1", "0", "--detect-every must be at least 1 (got 0)"),
    ("video", "--bin", "bin_s", "0.001", "0", "--bin must be more than 0 (got 0)"),
    ("video", "--min-track", "min_track_s", "0", "-0.5", "--min-track must be at least 0 (got -0.5)"),
    ("video", "--batch-size", "batch_size", "1", "0", "--batch-size must be at least 1 (got 0)"),
    ("video", "--split-frames", "split_frames", "0", "-1", "--split-frames must be at least 0 (got -1)"),
    ("video", "--episode-min", "episode_min_s", "0", "-1", "--episode-min must be at least 0 (got -1)"),
    ("video", "--episode-offset", "episode_offset", "0.5", "0.6",
     "--episode-offset must be at most episode_onset (0.5) (got 0.6)"),
    ("video", "--response-window", "response_window_s", "0.1", "0", "--response-window must be more than 0 (got 0)"),
    ("folder", "--min-confidence", "min_confidence", "1", "1.5",
     "--min-confidence must be at least 0 and at most 1 (got 1.5)"),
    ("video", "--detect-size", "detect.max_side", "24", "23", "--detect-size must be 0 (no cap) or at least 24"),
]


@pytest.mark.parametrize("command,flag,field,ok,bad,message", CLI_EDGES,
                         ids=[f"{c} {f} {b}" for c, f, _, _, b, _ in CLI_EDGES])
def test_cli_takes_the_edge_and_refuses_past_it(command, flag, field, ok, bad, message, monkeypatch, tmp_path):
    import batchemo.jobs.folder as folder_job
    import batchemo.jobs.videos as videos_job

    seen = []
    monkeypatch.setattr(folder_job, "analyze_folder", lambda path, out, model, opts, **kw: seen.append(opts) or _stop())
    monkeypatch.setattr(videos_job, "analyze_videos", lambda inputs, out, model, opts, *a, **kw: seen.append(opts)
                        or _stop())
    target = str(SAMPLES / "images") if command == "folder" else str(SAMPLES / "video" / "two_faces.mp4")
    out = tmp_path / "out"
    r = runner.invoke(app, [command, target, "--out", str(out), "--no-progress", flag, ok])
    assert "stopped by the test" in r.output, r.output
    value = seen[0]
    for part in field.split("."):
        value = getattr(value, part)
    assert value == float(ok)  # the edge value got through to the job
    r = runner.invoke(app, [command, target, "--out", str(out), "--no-progress", flag, bad])
    assert r.exit_code == 2 and r.output.startswith("error: " + message), r.output
    assert r.output.strip().count("\n") == 0 and len(seen) == 1 and not out.exists()


# 7. --ray alone starts a local Ray instance

def _stop(*_, **__):
    raise ValueError("stopped by the test")


@pytest.mark.parametrize("args,ray", [
    (["PATH", "--ray"], "local"), (["--ray", "PATH"], "local"), (["PATH", "--ray", "--redo"], "local"),
    (["PATH", "--ray", "auto"], "auto"), (["PATH", "--ray", "ray://head:10001"], "ray://head:10001"),
    (["PATH", "--ray=10.0.0.5:6379"], "10.0.0.5:6379"), (["PATH"], None),
])
def test_folder_ray_without_address_is_local(args, ray, monkeypatch):
    import batchemo.jobs.folder as folder_job

    seen = {}
    monkeypatch.setattr(folder_job, "analyze_folder",
                        lambda path, out, model, opts, **kw: seen.update(path=path, ray=opts.ray) or _stop())
    photos = str(SAMPLES / "images")
    r = runner.invoke(app, ["folder", *[photos if a == "PATH" else a for a in args], "--no-progress"])
    assert "stopped by the test" in r.output, r.output
    assert seen == {"path": Path(photos), "ray": ray}


def test_video_ray_without_address_keeps_every_input(monkeypatch):
    import batchemo.jobs.videos as videos_job

    seen = {}
    monkeypatch.setattr(videos_job, "analyze_videos",
                        lambda inputs, out, model, opts, progress, command, ray, **kw:
                        seen.update(inputs=inputs, ray=ray) or _stop())
    clip = str(SAMPLES / "video" / "two_faces.mp4")
    r = runner.invoke(app, ["video", "--ray", clip, clip, "--no-progress"])
    assert "stopped by the test" in r.output, r.output
    assert seen == {"inputs": [Path(clip), Path(clip)], "ray": "local"}


@pytest.mark.parametrize("command", ["folder", "video"])
def test_ray_help_shows_the_optional_address_and_the_extra(command):
    out = runner.invoke(app, [command, "--help"], terminal_width=200).output
    assert "--ray [ADDRESS]" in " ".join(out.split()) and "batchemo[ray]" in out


def test_bare_ray_rewrite_leaves_arguments_after_double_dash():
    assert media.bare_ray_is_local(["--ray", "--", "--ray"]) == ["--ray=local", "--", "--ray"]
    assert media.bare_ray_is_local(["--ray", "local"]) == ["--ray", "local"]


# 9. a single photo is a folder of one

def test_folder_of_a_single_photo(tmp_path, monkeypatch, model):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "images" / "astronaut.png", photos / "astronaut.png")
    shutil.copy(SAMPLES / "images" / "group" / "three_faces.jpg", photos / "three_faces.jpg")
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["folder", "photos/astronaut.png", "--no-progress", "--save-faces"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "reports" / "astronaut"
    assert "1 file (0 already done), 1 face" in r.output and str(Path("reports") / "astronaut") in r.output
    files = (out / "files.csv").read_text().splitlines()
    assert len(files) == 2 and files[1].startswith("astronaut.png,")  # only that photo, not its neighbours
    assert json.loads((out / "run.json").read_text())["input"] == str((photos / "astronaut.png").resolve())
    assert (out / "annotated" / "astronaut.png").is_file() and (out / "report.html").is_file()
    assert len(list((out / "faces").rglob("*.png"))) + len(list((out / "faces").rglob("*.jpg"))) == 1


def test_folder_of_a_text_file_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = runner.invoke(app, ["folder", str(tmp_path / "notes.txt"), "--no-progress", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and "notes.txt" in r.output


def test_a_report_that_cannot_be_written_is_one_line_and_exit_1(tmp_path, monkeypatch, model):
    from batchemo.report import crops

    def disk_full(image, path, *a):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(crops, "write_image", disk_full)
    out = tmp_path / "o"
    r = runner.invoke(app, ["folder", str(SAMPLES / "images" / "astronaut.png"), "--out", str(out), "--no-progress",
                            "--save-faces"])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0, r.output
    assert "No space left on device" in r.output and "astronaut.png__f0__id0.png" in r.output
    assert (out / "faces.csv").is_file() and (out / "run.json").is_file()  # what was written before stays


# 10. `batchemo video PHOTO` is refused, pointing to `batchemo folder`

@pytest.mark.parametrize("name", ["astronaut.png", "astronaut"])  # by its extension, or by its first bytes
def test_video_refuses_a_photo(name, tmp_path):
    photo = tmp_path / name
    shutil.copy(SAMPLES / "images" / "astronaut.png", photo)
    out = tmp_path / "out"
    r = runner.invoke(app, ["video", str(photo), "--no-progress", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and str(photo) in r.output and "batchemo folder" in r.output
    assert not out.exists()


# 11. FFmpeg's own log line

def test_truncated_mp4_gives_only_batchemos_line(tmp_path):
    clip = tmp_path / "cut.mp4"
    clip.write_bytes((SAMPLES / "video" / "two_faces.mp4").read_bytes()[:20000])
    r = _batchemo("video", str(clip), "--no-progress", "--out", str(tmp_path / "out"))
    assert r.returncode == 1, r.stderr
    assert "moov" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [f"{clip}: not a readable video (OpenCV/FFmpeg cannot open it)"]



def test_the_commands_defaults_are_the_option_classes_defaults(monkeypatch, tmp_path):
    """One source for each default: `batchemo folder` and `batchemo video` with no options make exactly
    FolderOptions() and VideoOptions()."""
    import batchemo.jobs.folder as F
    import batchemo.jobs.videos as VS
    from batchemo.jobs.options import FolderOptions, VideoOptions

    made = {}

    def capture(name):
        def job(*args, **kw):
            made[name] = next(a for a in (*args, *kw.values()) if isinstance(a, (FolderOptions, VideoOptions)))
            raise KeyboardInterrupt  # stop before any work: exit 130
        return job

    monkeypatch.setattr(F, "analyze_folder", capture("folder"))
    monkeypatch.setattr(VS, "analyze_videos", capture("video"))
    assert runner.invoke(app, ["folder", str(tmp_path)]).exit_code == 130
    assert runner.invoke(app, ["video", str(tmp_path / "x.mp4")]).exit_code == 130
    assert made == {"folder": FolderOptions(), "video": VideoOptions()}
