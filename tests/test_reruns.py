"""A re-run leaves a report folder that shows one analysis: extras asked for later are made, extras of rows since
changed go, crops the user moved stay; and options that cannot work are refused before any work."""
from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app
from batchemo.jobs.options import FolderOptions, VideoOptions
from batchemo.jobs.runtime import OutputConflict
from batchemo.report import html as H
from batchemo.pipeline.detect import DetectOptions
from batchemo.training.options import TrainOptions

from .conftest import SAMPLES

runner = CliRunner()


@pytest.fixture()
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(SAMPLES / "images" / "astronaut.png", d / "a.png")
    shutil.copy(SAMPLES / "images" / "group" / "three_faces.jpg", d / "g.jpg")
    return d


@pytest.mark.parametrize("make", [
    lambda: DetectOptions(scale_factor=math.inf), lambda: FolderOptions(max_megapixels=math.nan),
    lambda: VideoOptions(bin_s=math.nan), lambda: TrainOptions(alpha=math.nan),
])
def test_non_finite_option_values_are_refused(make):
    with pytest.raises(ValueError, match="must be a finite number"):
        make()


@pytest.mark.parametrize("args,message", [
    (["folder", "{photos}", "--scale-factor", "inf"], "--scale-factor must be a finite number"),
    (["folder", "{photos}", "--detect-size", "10"], "--detect-size must be 0 (no cap) or at least 24"),
    (["folder", "{photos}", "--out", "{photos}"], "--out is the folder analysed"),
    (["train", "{classes}", "--out", "{tmp}/m.keras", "--group-by", "("], "--group-by '(' is not a regular expression"),
])
def test_options_that_cannot_work_are_one_line_errors(photos, tmp_path, args, message):
    classes = tmp_path / "classes"
    for c in ("happy", "sad"):
        (classes / c).mkdir(parents=True)
        shutil.copy(photos / "a.png", classes / c / "S1_a.png")
    fill = {"photos": photos, "tmp": tmp_path, "classes": classes}
    r = runner.invoke(app, [a.format(**fill) for a in args] + ["--no-progress"] * (args[0] == "folder"))
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert not (photos / "run.json").exists()


def test_class_names_are_escaped_in_the_timeline_svg():
    cls = ["</title><script>alert(1)</script>", "b"]
    tl = pd.DataFrame({"start_s": [0.0, 1.0], "end_s": [1.0, 2.0], "smooth_" + cls[0]: [0.9, 0.8],
                       "smooth_b": [0.1, 0.2]})
    svg = H.timeline_svg(tl, cls, H.class_colours(cls), 2.0)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_annotated_copies_asked_for_later_are_drawn(photos, tmp_path, model):
    out = tmp_path / "o"
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    assert not (out / "annotated").exists()
    res = batchemo.analyze_folder(photos, out, model, FolderOptions(html=False), progress=False)
    assert sorted(p.name for p in (out / "annotated").iterdir()) == ["a.png", "g.jpg"]
    assert res.skipped_done == 0  # both drawn again, not passed over as done


def test_a_changed_photo_reanalysed_without_redo_drops_extras_this_run_does_not_write(photos, tmp_path, model):
    out = tmp_path / "o"
    batchemo.analyze_folder(photos, out, model, FolderOptions(save_faces=True), progress=False)
    assert (out / "report.html").exists() and (out / "faces" / "index.csv").exists()
    shutil.copy(SAMPLES / "images" / "no face" / "rocket.jpg", photos / "a.png")  # same name, no face now
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    assert not [n for n in ("annotated", "report.html", "thumbs", "faces") if (out / n).exists()]
    assert set(batchemo.read_report(out)["source"]) == {"g.jpg"}


def _extras(out) -> dict[str, tuple[int, bytes]]:
    """Every file of the page and the annotated copies: its modification time and its bytes."""
    files = [out / "report.html", *(p for sub in ("annotated", "thumbs") for p in (out / sub).rglob("*"))]
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.is_file()}


def test_unchanged_rows_keep_the_extras_of_an_earlier_run(photos, tmp_path, model):
    out = tmp_path / "o"
    batchemo.analyze_folder(photos, out, model, FolderOptions(), progress=False)
    before = _extras(out)
    assert {"report.html", "annotated/a.png", "annotated/g.jpg"} <= set(before)
    batchemo.analyze_folder(photos, out, model, FolderOptions(html=False), progress=False)
    # Nothing changed, so the page and the copies are still this report's: the first run's files, untouched
    # (the run without --html neither removes nor rewrites them)
    assert _extras(out) == before


def test_a_crop_moved_to_another_class_folder_stays_there(photos, tmp_path, model):
    out = tmp_path / "o"
    opts = FolderOptions(save_faces=True, annotate=False, html=False)
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    index = pd.read_csv(out / "faces" / "index.csv")
    row = index.iloc[0]
    other = next(c for c in model.classes if c != row["emotion"])
    (out / "faces" / other).mkdir(exist_ok=True)
    moved = f"{other}/{row['file'].split('/', 1)[1]}"
    (out / "faces" / row["file"]).rename(out / "faces" / moved)
    for _ in range(2):  # kept on the run after the move, and on the one after that
        shutil.copy(SAMPLES / "images" / "astronaut.png", photos / f"new{_}.png")  # a change: crops cut again
        batchemo.analyze_folder(photos, out, model, opts, progress=False)
        assert (out / "faces" / moved).exists() and not (out / "faces" / row["file"]).exists()
        again = pd.read_csv(out / "faces" / "index.csv")
        assert moved in set(again["file"]) and row["file"] not in set(again["file"])


def _relabel_then_rename(photos, out, model, opts):
    """A --save-faces run, its first crop moved by hand to another class, then that crop's photo renamed (same
    size and time: the same photo): (where the crop was moved, the photo's new name)."""
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    row = pd.read_csv(out / "faces" / "index.csv").iloc[0]
    other = next(c for c in model.classes if c != row["emotion"])
    moved = f"{other}/{row['file'].split('/', 1)[1]}"
    (out / "faces" / other).mkdir(exist_ok=True)
    (out / "faces" / row["file"]).rename(out / "faces" / moved)
    renamed = f"renamed_{row['source']}"
    (photos / row["source"]).rename(photos / renamed)
    return moved, renamed


def test_a_relabelled_crop_stays_when_its_photo_is_renamed(photos, tmp_path, model):
    out = tmp_path / "o"
    opts = FolderOptions(save_faces=True, annotate=False, html=False)
    moved, renamed = _relabel_then_rename(photos, out, model, opts)
    for _ in range(2):
        batchemo.analyze_folder(photos, out, model, opts, progress=False)
        assert (out / "faces" / moved).exists()  # the user's label, not deleted as a stale crop
        index = pd.read_csv(out / "faces" / "index.csv").set_index("file")
        assert index.loc[moved, "source"] == renamed  # listed with the renamed photo's row
        assert sorted(index.index) == sorted(p.relative_to(out / "faces").as_posix()
                                             for p in (out / "faces").glob("*/*.png"))
        key = ["source", "frame", "face"]  # one crop per face: none cut again under the model's class
        faces = pd.read_csv(out / "faces.csv")
        assert sorted(map(tuple, index[key].values.tolist())) == sorted(map(tuple, faces[key].values.tolist()))
    (photos / renamed).unlink()  # gone: the label stays, listed with the row it had
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    index = pd.read_csv(out / "faces" / "index.csv").set_index("file")
    assert (out / "faces" / moved).exists() and index.loc[moved, "source"] == renamed


def test_crops_copied_by_hand_to_other_class_folders_all_stay(photos, tmp_path, model):
    # the user copies a crop to two other classes (unsure which) instead of moving it: both copies are theirs
    out = tmp_path / "o"
    opts = FolderOptions(save_faces=True, annotate=False, html=False)
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    row = pd.read_csv(out / "faces" / "index.csv").iloc[0]
    name = row["file"].split("/", 1)[1]
    copies = [f"{c}/{name}" for c in model.classes if c != row["emotion"]][:2]
    for c in copies:
        (out / "faces" / c).parent.mkdir(exist_ok=True)
        shutil.copy(out / "faces" / row["file"], out / "faces" / c)
    (out / "faces" / "to_check").mkdir()  # an empty folder of the user's, to sort crops into: stays
    shutil.copy(SAMPLES / "images" / "astronaut.png", photos / "new.png")  # a change: crops cut again
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    index = pd.read_csv(out / "faces" / "index.csv")
    assert all((out / "faces" / c).exists() for c in copies) and (out / "faces" / "to_check").is_dir()
    assert sorted(index.loc[index["file"].str.endswith("/" + name), "file"]) == sorted(copies)
    assert not (out / "faces" / row["file"]).exists()  # relabelled: batchemo's own copy under its class goes
    (photos / "new.png").unlink()  # the rows change again, without --save-faces: the copies stay, listed
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    assert all((out / "faces" / c).exists() for c in copies) and (out / "faces" / "to_check").is_dir()
    assert sorted(pd.read_csv(out / "faces" / "index.csv")["file"]) == sorted(copies)


def test_a_moved_crop_stays_when_a_later_run_without_save_faces_changes_the_rows(photos, tmp_path, model):
    out = tmp_path / "o"
    batchemo.analyze_folder(photos, out, model, FolderOptions(save_faces=True, annotate=False, html=False),
                            progress=False)
    index = pd.read_csv(out / "faces" / "index.csv")
    row = index.iloc[0]
    other = next(c for c in model.classes if c != row["emotion"])
    (out / "faces" / other).mkdir(exist_ok=True)
    moved = out / "faces" / other / row["file"].split("/", 1)[1]
    (out / "faces" / row["file"]).rename(moved)
    shutil.copy(SAMPLES / "images" / "astronaut.png", photos / "new.png")  # the rows change
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    assert moved.exists()  # relabelled by hand: the user's
    left = sorted(p.relative_to(out / "faces").as_posix() for p in (out / "faces").rglob("*") if p.is_file())
    assert left == sorted(["index.csv", moved.relative_to(out / "faces").as_posix()])  # batchemo's own crops gone
    (photos / "new.png").unlink()  # another change, and crops asked for again: still the user's
    batchemo.analyze_folder(photos, out, model, FolderOptions(save_faces=True, annotate=False, html=False),
                            progress=False)
    assert moved.exists() and not (out / "faces" / row["file"]).exists()


def test_a_folder_batchemo_did_not_write_is_not_written_over(photos, tmp_path, model):
    out = tmp_path / "mine"
    (out / "faces" / "happy").mkdir(parents=True)
    (out / "faces" / "happy" / "me.png").write_bytes(b"my own picture")
    (out / "summary.csv").write_text("my,own\n1,2\n")
    with pytest.raises(OutputConflict, match="not a batchemo report.*summary.csv, faces"):
        batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    assert (out / "faces" / "happy" / "me.png").exists() and (out / "summary.csv").read_text() == "my,own\n1,2\n"
    r = runner.invoke(app, ["video", str(SAMPLES / "video" / "two_faces.mp4"), "--out", str(out)])
    assert r.exit_code != 0 and "not a batchemo report" in r.output
    (tmp_path / "empty").mkdir()  # an empty folder, or one with other files, is fine
    (tmp_path / "empty" / "notes.txt").write_text("x")
    batchemo.analyze_folder(photos, tmp_path / "empty", model, FolderOptions(annotate=False, html=False),
                            progress=False)
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False, force=True),
                            progress=False)  # asked for


def test_a_batch_of_videos_does_not_write_its_tables_over_ones_it_did_not_write(tmp_path, model):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(SAMPLES / "video" / "two_faces.mp4", videos / name)
    opts = VideoOptions(annotate=False, html=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.csv").write_text("participant,score\np1,7\n")
    with pytest.raises(OutputConflict, match="not the folder of a batch.*summary.csv"):
        batchemo.analyze_videos([videos], mine, model, opts, progress=False)
    assert (mine / "summary.csv").read_text() == "participant,score\np1,7\n" and sorted(mine.iterdir()) == [
        mine / "summary.csv"]  # refused before any video was analysed
    single = tmp_path / "single"  # one video's report: the batch's summary.csv would replace its own
    batchemo.analyze_video(videos / "a.mp4", single, model, opts, progress=False)
    r = runner.invoke(app, ["video", str(videos), "--out", str(single), "--no-progress"])
    assert r.exit_code == 2 and "not the folder of a batch" in r.output
    out = tmp_path / "batch"  # a batch's own folder is updated by the next batch
    for _ in range(2):
        assert all(r.status in ("complete", "skipped") for r in
                   batchemo.analyze_videos([videos], out, model, opts, progress=False))
    batchemo.analyze_videos([videos], mine, model, VideoOptions(annotate=False, html=False, force=True),
                            progress=False)  # asked for
    assert "participant" not in (mine / "summary.csv").read_text()


def test_a_finished_video_makes_the_extras_asked_for_later(tmp_path, model):
    clip = SAMPLES / "video" / "two_faces.mp4"
    out = tmp_path / "v"
    first = batchemo.analyze_video(clip, out, model, VideoOptions(), progress=False)
    assert first.status == "complete" and not (out / "faces").exists()
    frames = pd.read_csv(out / "frames.csv")
    again = batchemo.analyze_video(clip, out, model, VideoOptions(save_faces=True), progress=False)
    assert again.status == "complete" and (out / "faces" / "index.csv").exists()
    pd.testing.assert_frame_equal(pd.read_csv(out / "frames.csv"), frames)
    assert batchemo.analyze_video(clip, out, model, VideoOptions(save_faces=True), progress=False).status == "skipped"


def test_a_rename_is_told_by_size_and_time_and_only_when_one_to_one(photos, tmp_path, model):
    from batchemo.jobs.folder import _renamed
    from batchemo.pipeline.files import walk

    out = tmp_path / "o"
    batchemo.analyze_folder(photos, out, model, FolderOptions(annotate=False, html=False), progress=False)
    (photos / "a.png").rename(photos / "b.png")
    (photos / "sub").mkdir()
    shutil.copy2(photos / "g.jpg", photos / "sub" / "g.jpg")  # a copy, times kept: g.jpg is still there
    assert _renamed(out, walk(photos, {".png", ".jpg"})[0]) == {"a.png": "b.png"}
    shutil.copy2(photos / "b.png", photos / "c.png")  # two candidates for a.png: neither is taken for it
    assert _renamed(out, walk(photos, {".png", ".jpg"})[0]) == {}


def test_a_rename_seen_by_a_run_without_save_faces_is_kept_for_the_next_one(photos, tmp_path, model):
    out = tmp_path / "o"
    opts = FolderOptions(save_faces=True, annotate=False, html=False)
    moved, renamed = _relabel_then_rename(photos, out, model, opts)
    batchemo.analyze_folder(photos, out, model, replace(opts, save_faces=False), progress=False)
    kept = pd.read_csv(out / "faces" / "index.csv")
    assert kept["file"].tolist() == [moved] and kept["source"].tolist() == [renamed]
    batchemo.analyze_folder(photos, out, model, opts, progress=False)
    index, faces = pd.read_csv(out / "faces" / "index.csv"), pd.read_csv(out / "faces.csv")
    key = ["source", "frame", "face"]
    assert sorted(map(tuple, index[key].values.tolist())) == sorted(map(tuple, faces[key].values.tolist()))
    assert moved in set(index["file"])
