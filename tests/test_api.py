"""The Python API as a notebook user meets it: one path is one input, options checked when made and frozen, a
nested options object keeps its job's defaults, wrong types refused at once, knobs given as keywords, results
that hold their tables, help() that explains every field, the public names listed, one rule for photos."""
from __future__ import annotations

import dataclasses
import io
import json
import pydoc
import re
import shutil
import sys
import textwrap
from importlib.metadata import version

import pandas as pd
import pytest
import tqdm.auto
from typer.testing import CliRunner

import batchemo
from batchemo import DetectOptions, FolderOptions, VideoOptions
from batchemo.cli import app
from batchemo.jobs.options import FOLDER_RANGES, VIDEO_RANGES
from batchemo.pipeline.detect import DETECT_RANGES

from .conftest import ROOT, SAMPLES, moving_faces_video

QUIET = dict(annotate=False, html=False)  # the rows are what these tests read: no extra outputs to wait for
CLIP_FRAMES, CLIP_FPS = 20, 10.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_bgr):
    """vids/a.avi and vids/b.avi: two faces sliding past each other, CLIP_FRAMES frames at CLIP_FPS."""
    vids = tmp_path_factory.mktemp("api") / "vids"
    vids.mkdir()
    moving_faces_video(vids / "a.avi", face_bgr, CLIP_FRAMES, CLIP_FPS)
    shutil.copy(vids / "a.avi", vids / "b.avi")
    return vids


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, model):
    out = tmp_path_factory.mktemp("photo") / "report"
    return batchemo.analyze_folder(SAMPLES / "images", out, model, progress=False, min_face=40, **QUIET)


# A single path is one input

def test_one_path_given_as_a_string_is_one_input(clips, monkeypatch):
    from batchemo.jobs.videos import expand_inputs

    monkeypatch.chdir(clips.parent)
    expected = [clips / "a.avi", clips / "b.avi"]
    assert [v.path.resolve() for v in expand_inputs("vids")] == expected  # not the letters v, i, d, s
    assert [v.path for v in expand_inputs(clips)] == expected


def test_analyze_videos_of_one_folder_by_its_name(clips, tmp_path, monkeypatch, model):
    monkeypatch.chdir(clips.parent)
    results = batchemo.analyze_videos("vids", out=tmp_path / "r", model=model, progress=False, **QUIET)
    assert [r.status for r in results] == ["complete", "complete"]
    files = batchemo.read_report(tmp_path / "r" / "files.csv")
    assert list(files["source"]) == ["a.avi", "b.avi"]


# files.csv of a batch: each video's duration and frame rate

def test_batch_files_csv_has_duration_and_fps(clips, tmp_path, model):
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    results = batchemo.analyze_videos([clips / "a.avi", tmp_path / "broken.avi"], out=tmp_path / "r", model=model,
                                      progress=False, **QUIET)
    assert [type(r).__name__ for r in results] == ["VideoResult", "VideoFailure"]
    files = batchemo.read_report(tmp_path / "r" / "files.csv")
    assert list(files.columns[-2:]) == ["duration_s", "fps"]  # appended: earlier columns keep their places
    assert files["duration_s"].dtype == "float64" and files["fps"].dtype == "float64"
    assert files["duration_s"].iloc[0] == pytest.approx(CLIP_FRAMES / CLIP_FPS)
    assert files["fps"].iloc[0] == pytest.approx(CLIP_FPS)
    assert files["duration_s"].isna().iloc[1] and files["fps"].isna().iloc[1]  # the failure: nothing measured
    header = (tmp_path / "r" / "files.csv").read_text().splitlines()[0]
    assert header.endswith(",short_tracks,duration_s,fps")


# Options checked when made, and frozen

@pytest.mark.parametrize("make,error,message", [
    (lambda: VideoOptions(every=2.5), ValueError, "every must be a whole number (got 2.5)"),
    (lambda: VideoOptions(every="2"), TypeError, "every must be a whole number (got '2', str)"),
    (lambda: VideoOptions(every=True), TypeError, "every must be a whole number (got True, bool)"),
    (lambda: VideoOptions(annotate="no"), TypeError, "annotate must be True or False (got 'no', str)"),
    (lambda: VideoOptions(fps="30"), TypeError, "fps must be a number or None (got '30', str)"),
    (lambda: FolderOptions(ray=1), TypeError, "ray must be a string or None (got 1, int)"),
    (lambda: FolderOptions(workers=0), ValueError, "workers must be at least 1 (got 0)"),
    (lambda: DetectOptions(max_side=10), ValueError, "max_side must be 0 (no cap) or at least 24"),
    (lambda: FolderOptions(detect={"max_side": 10}), ValueError, "max_side must be 0 (no cap) or at least 24"),
])
def test_options_refuse_wrong_values_naming_the_field_as_python_spells_it(make, error, message):
    with pytest.raises(error, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        make()


def test_numbers_are_stored_as_plain_int_and_float():
    import numpy as np

    o = VideoOptions(every=np.int64(3), bin_s=2, detect={"min_face": np.int32(40)})
    assert type(o.every) is int and type(o.bin_s) is float and type(o.detect.min_face) is int
    assert VideoOptions(every=4.0).every == 4 and type(VideoOptions(every=4.0).every) is int


def test_options_are_frozen_and_replace_checks_again():
    o = VideoOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.every = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.detect.min_face = 0
    assert dataclasses.replace(o, every=3).every == 3
    with pytest.raises(ValueError, match=r"^every must be at least 1 \(got 0\)"):
        dataclasses.replace(o, every=0)


# A nested options object keeps its job's defaults

@pytest.mark.parametrize("job,side", [(FolderOptions, 640), (VideoOptions, 1280)])  # README's defaults
def test_a_nested_detect_keeps_the_jobs_detection_size(job, side):
    assert job().detect.max_side == side
    for given in (DetectOptions(min_face=20), {"min_face": 20}):
        assert job(detect=given).detect == dataclasses.replace(job().detect, min_face=20)
    assert job(detect=DetectOptions(max_side=800)).detect.max_side == 800  # said, so kept


@pytest.mark.parametrize("job", [FolderOptions, VideoOptions])
def test_changing_one_detect_knob_changes_no_other(job):
    default = dataclasses.asdict(job().detect)
    changed = {"scale_factor": 1.3, "min_neighbors": 7, "min_face": 45, "detect_window": 30, "max_side": 999,
               "pad_small": False}
    assert set(changed) == set(default)  # every knob of DetectOptions is tried
    for name, value in changed.items():
        for made in (job(detect=DetectOptions(**{name: value})), job(detect={name: value})):
            assert dataclasses.asdict(made.detect) == {**default, name: value}, name


# Wrong types refused at once, saying what to pass

def test_wrong_job_options_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"options must be a FolderOptions .*not VideoOptions"):
        batchemo.analyze_folder(SAMPLES / "images", tmp_path / "out", options=VideoOptions())
    with pytest.raises(TypeError, match=r"options must be a VideoOptions .*not FolderOptions"):
        batchemo.analyze_video(SAMPLES / "video" / "two_faces.mp4", tmp_path / "out", options=FolderOptions())
    with pytest.raises(TypeError, match=r"detect must be a DetectOptions or a dict of its fields"):
        FolderOptions(detect=VideoOptions())
    assert not (tmp_path / "out").exists()


def test_unknown_keyword_says_what_it_may_be(tmp_path):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'detect_size' \(did you mean max_side\?\)"):
        batchemo.analyze_folder(SAMPLES / "images", tmp_path / "out", detect_size=800)
    with pytest.raises(TypeError, match=r"'evrey' \(did you mean every\?\)"):
        batchemo.analyze_videos(SAMPLES / "video", tmp_path / "out", evrey=2)
    assert not (tmp_path / "out").exists()


# Knobs as keywords, and results that hold their tables

def test_keywords_reach_the_nested_options(photo_run):
    run = json.loads((photo_run.out / "run.json").read_text())
    assert run["options"]["detect"]["min_face"] == 40
    assert run["options"]["detect"]["max_side"] == 640 and run["options"]["annotate"] is False


def test_folder_result_holds_its_tables(photo_run):
    faces = photo_run.table()
    assert isinstance(faces, pd.DataFrame) and len(faces) == photo_run.faces > 0
    pd.testing.assert_frame_equal(faces, batchemo.read_report(photo_run.out / "faces.csv"))
    assert len(photo_run.table("files")) == photo_run.files


def test_folder_result_repr_is_one_short_line(photo_run):
    text = repr(photo_run)
    assert text.startswith("FolderResult(") and "\n" not in text and len(text) < 200
    assert f"faces={photo_run.faces}" in text and str(photo_run.out) in text


def test_video_result_holds_its_tables(clips, tmp_path, model):
    res = batchemo.analyze_video(clips / "a.avi", tmp_path / "r", model, progress=False, every=2, **QUIET)
    frames = res.table()
    assert len(frames) == res.faces > 0 and set(frames["frame"] % 2) == {0}
    assert res.table("summary")["scope"].iloc[-1] == "all"
    text = repr(res)
    assert text.startswith("VideoResult(") and "\n" not in text and f"tracks={res.tracks}" in text


# A photo is refused as a video, by the library as by the command line

def test_analyze_video_refuses_a_photo_as_the_cli_does(tmp_path):
    photo = SAMPLES / "images" / "astronaut.png"
    with pytest.raises(ValueError, match="a photo, not a video") as e:
        batchemo.analyze_video(photo, tmp_path / "lib")
    assert not (tmp_path / "lib").exists()
    r = CliRunner().invoke(app, ["video", str(photo), "--out", str(tmp_path / "cli"), "--no-progress"])
    assert r.exit_code == 2 and r.output.strip() == f"error: {e.value}"


# help() explains every field; dir() lists the API

@pytest.mark.parametrize("cls,ranges", [(FolderOptions, FOLDER_RANGES), (VideoOptions, VIDEO_RANGES),
                                        (DetectOptions, DETECT_RANGES)])
def test_help_explains_every_option_with_default_and_range(cls, ranges):
    lines = _help_lines(cls)
    for f in dataclasses.fields(cls):
        at = next((i for i, ln in enumerate(lines) if ln.startswith(f"{f.name}: ")), None)
        assert at is not None, f.name
        if f.default is not dataclasses.MISSING:
            assert f"= {f.default!r}" in lines[at], lines[at]
        if f.name in ranges and f.name != "max_side":  # max_side: 0, or at least the cascade's window
            assert f"[{ranges[f.name].text.strip('()')}]" in lines[at], lines[at]
        explained = lines[at + 1]  # the line under it: its meaning, not the next field
        assert len(explained) > 15 and not any(explained.startswith(g.name + ": ") for g in dataclasses.fields(cls))


def _help_lines(obj) -> list[str]:
    """help()'s text of `obj`, each line without its indentation and the class's ' |' margin."""
    return [ln.lstrip(" |").strip() for ln in pydoc.render_doc(obj, renderer=pydoc.plaintext).splitlines()]


@pytest.mark.parametrize("cls", ["FolderResult", "VideoResult", "VideoFailure"])
def test_help_explains_every_result_field(cls):
    klass = getattr(batchemo, cls)
    lines = _help_lines(klass)
    for f in dataclasses.fields(klass):
        at = next((i for i, ln in enumerate(lines) if ln.startswith(f"{f.name}: ")), None)
        assert at is not None and len(lines[at + 1]) > 10, f.name


def test_dir_lists_the_public_api_and_version():
    names = dir(batchemo)
    for name in ("analyze_folder", "analyze_video", "analyze_videos", "read_report", "FolderOptions",
                 "VideoOptions", "DetectOptions", "FolderResult", "VideoResult"):
        assert name in names and name in batchemo.__all__
        assert getattr(batchemo, name) is not None
    assert batchemo.__version__ == version("batchemo")
    assert "analyze_folder" in pydoc.render_doc(batchemo, renderer=pydoc.plaintext)


# Progress bars: a widget in a notebook, few lines in a log

def test_jobs_use_tqdm_auto():
    from batchemo.jobs import folder, video

    assert folder.tqdm is tqdm.auto.tqdm and video.tqdm is tqdm.auto.tqdm


def test_a_redirected_run_updates_its_bar_rarely(monkeypatch, tmp_path, model):
    from batchemo.jobs import folder

    made = []
    real = folder.tqdm
    monkeypatch.setattr(folder, "tqdm", lambda *a, **k: made.append(k) or real(*a, **k))
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file: no terminal
    batchemo.analyze_folder(SAMPLES / "images", tmp_path / "out", model, progress=True, **QUIET)
    assert len(made) == 1 and made[0]["mininterval"] >= 10 and not made[0]["disable"]
    assert sys.stderr.getvalue().count("\r") <= 3  # the first state and the last, not a redraw per photo


def test_a_terminal_bar_redraws_in_place(monkeypatch):
    from batchemo.progress import bar_options

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert bar_options(True).get("mininterval", 0.1) < 1
    assert bar_options(False)["disable"]


# The examples in README and in the package's docstring run as written

@pytest.fixture()
def example_files(tmp_path, monkeypatch, two_face_clip):
    """What the examples name: photos/, interview.mp4, and the folders of videos sessions/ and clips/."""
    (tmp_path / "photos" / "group").mkdir(parents=True)  # two of the sample photos: enough to see faces found
    shutil.copy(SAMPLES / "images" / "astronaut.png", tmp_path / "photos")
    shutil.copy(SAMPLES / "images" / "group" / "three_faces.jpg", tmp_path / "photos" / "group")
    shutil.copy(SAMPLES / "video" / "two_faces.mp4", tmp_path / "interview.mp4")
    for folder in ("sessions", "clips"):
        (tmp_path / folder).mkdir()
        shutil.copy(two_face_clip, tmp_path / folder / "p01.avi")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_docs_api_examples_run_as_written(example_files):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "python.md").read_text(), re.S)
    assert blocks
    ns: dict = {}
    for code in blocks:
        exec(compile(code, "docs/python.md", "exec"), ns)
    assert len(ns["faces"]) == ns["res"].faces > 0 and ns["vids"][0].status == "complete"
    small = json.loads((example_files / "reports" / "photos_small" / "run.json").read_text())["options"]
    assert small["detect"]["min_face"] == 20 and small["detect"]["max_side"] == 640  # the folder's own size
    assert ns["vid5"].frames_analysed < ns["vid"].frames_analysed


def test_readme_examples_run_as_written_and_show_what_they_print(tmp_path, monkeypatch):
    """README's python blocks, after its first set-up command (`batchemo folder samples/images`); the table README
    prints below the first block is what that code gives."""
    shutil.copytree(SAMPLES, tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    batchemo.analyze_folder("samples/images", progress=False)
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    ns: dict = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), ns)
    shown = re.search(r"```python\n.*?```\n```\n(.*?)```", text, re.S)[1]
    first = blocks[0].strip().splitlines()[-1]  # the expression whose value README prints
    assert eval(first, ns).to_string(index=False).strip() == shown.strip()
    assert ns["res"].status == "complete" and len(ns["res"].table("summary")) > 0


def test_package_docstring_example_runs_as_written(example_files):
    doc = batchemo.__doc__
    code = textwrap.dedent(doc[doc.index("::") + 2:].split("\n\n", 2)[1])
    assert "analyze_folder" in code
    exec(compile(code, "batchemo/__init__.py", "exec"), {})
    assert (example_files / "reports" / "clips" / "files.csv").is_file()


def test_a_hint_names_only_a_field_of_the_job_asked():
    """`bin` is the video job's `bin_s` on the command line; a folder run has no timeline, so no such hint."""
    with pytest.raises(TypeError) as e:
        batchemo.analyze_folder(SAMPLES / "images", out="unused", bin=1)
    assert "bin_s" not in str(e.value)
    with pytest.raises(TypeError, match="did you mean bin_s"):
        batchemo.analyze_video(SAMPLES / "video" / "two_faces.mp4", out="unused", bin=1)
