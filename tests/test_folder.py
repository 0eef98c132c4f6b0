"""`batchemo folder` end to end on the samples, through the CLI and the library API."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app
from batchemo.jobs.options import FolderOptions
from batchemo.report import FACE_COLUMNS, FILE_COLUMNS

from .conftest import SAMPLE_FACES

runner = CliRunner()


@pytest.fixture()
def cli_report(sample_tree, tmp_path, model):
    out = tmp_path / "report"
    r = runner.invoke(app, ["folder", str(sample_tree), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    return sample_tree, out, r.output


def test_cli_writes_every_report_file(cli_report):
    src, out, output = cli_report
    for name in ("faces.csv", "files.csv", "summary.csv", "run.json"):
        assert (out / name).is_file(), name
    assert "6 files" in output and "7 faces" in output and str(out) in output


def test_face_counts_match_the_known_faces(cli_report):
    _, out, _ = cli_report
    files = batchemo.read_report(out / "files.csv")
    assert dict(zip(files["source"], files["faces"])) == SAMPLE_FACES
    assert (files["status"] == "ok").all()
    faces = batchemo.read_report(out)
    assert faces.groupby("source").size().to_dict() == {k: v for k, v in SAMPLE_FACES.items() if v}


def test_faces_csv_columns_dtypes_and_probabilities(cli_report, model):
    _, out, _ = cli_report
    faces = batchemo.read_report(out / "faces.csv")
    probs = [f"p_{c}" for c in model.classes]
    assert list(faces.columns) == FACE_COLUMNS + probs + ["found_by", "face_score", "uncertain"]  # appended, never
    # reordered
    assert set(faces["found_by"]) == {"detected"} and faces["face_score"].between(0, 1).all()
    assert faces["frame"].dtype == np.int64 and (faces["frame"] == 0).all()
    assert faces["time_s"].isna().all()
    assert str(faces["emotion"].dtype) == "string" and faces["emotion"].isin(model.classes).all()
    np.testing.assert_allclose(faces[probs].sum(axis=1), 1.0, atol=1e-4)
    top = faces[probs].to_numpy().argmax(1)
    assert (np.asarray(model.classes)[top] == faces["emotion"].to_numpy()).all()
    np.testing.assert_allclose(faces[probs].max(axis=1), faces["confidence"], atol=1e-5)
    group = faces[faces["source"] == "group/three_faces.jpg"]
    assert list(group["face"]) == [0, 1, 2] and (group["x"].diff().dropna() > 0).all()


def test_files_csv_and_summary(cli_report, model):
    _, out, _ = cli_report
    files = pd.read_csv(out / "files.csv")
    assert list(files.columns) == FILE_COLUMNS
    assert list(files["source"]) == sorted(SAMPLE_FACES)
    summary = pd.read_csv(out / "summary.csv")
    # "no face" holds only a photo without faces: still a group, of zero faces and no shares
    assert list(summary["group"]) == ["all", ".", "group", "no face", "variants"]
    empty = summary[summary["group"] == "no face"].iloc[0]
    assert empty["faces"] == 0 and all(empty[f"n_{c}"] == 0 for c in model.classes)
    assert all(pd.isna(empty[f"share_{c}"]) for c in model.classes)
    allrow = summary.iloc[0]
    assert allrow["faces"] == 7
    assert sum(allrow[f"n_{c}"] for c in model.classes) == 7
    assert abs(sum(allrow[f"share_{c}"] for c in model.classes) - 1) < 1e-6
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["faces"] == 7 and run["model"]["classes"] == model.classes
    assert run["options"]["batch_size"] == 64 and "opencv" in run["versions"]


def test_annotated_copies_mirror_the_tree_and_differ(cli_report):
    src, out, _ = cli_report
    for rel, n in SAMPLE_FACES.items():
        a = out / "annotated" / rel
        assert a.is_file(), rel
        original = cv2.imread(str(src / rel))
        annotated = cv2.imread(str(a))
        assert annotated.shape == original.shape
        # jpg re-encoding alone changes pixels a little; a drawn box changes many a lot
        changed = (np.abs(annotated.astype(int) - original.astype(int)).max(axis=2) > 60).mean()
        assert (changed > 0.002) == (n > 0), (rel, changed)


def test_library_api_and_read_report_round_trip(sample_tree, tmp_path, model):
    out = tmp_path / "api"
    res = batchemo.analyze_folder(sample_tree, out=out, model=model,
                                  options=FolderOptions(annotate=False, batch_size=4), progress=False)
    assert (res.files, res.faces, res.errors) == (6, 7, 0)
    assert not (out / "annotated").exists()
    faces = batchemo.read_report(out)
    again = pd.read_csv(out / "faces.csv")
    assert len(faces) == len(again) == 7
    pd.testing.assert_frame_equal(faces.astype(object), batchemo.read_report(out / "faces.csv").astype(object))
    faces.to_csv(tmp_path / "copy.csv", index=False)
    pd.testing.assert_frame_equal(batchemo.read_report(tmp_path / "copy.csv"), faces)


def test_batch_size_does_not_change_results(sample_tree, tmp_path, model):
    a = batchemo.analyze_folder(sample_tree, out=tmp_path / "a", model=model,
                                options=FolderOptions(annotate=False, batch_size=1), progress=False)
    b = batchemo.analyze_folder(sample_tree, out=tmp_path / "b", model=model,
                                options=FolderOptions(annotate=False, batch_size=64), progress=False)
    fa, fb = batchemo.read_report(a.out), batchemo.read_report(b.out)
    probs = [c for c in fa.columns if c.startswith("p_")]
    np.testing.assert_allclose(fa[probs].to_numpy(), fb[probs].to_numpy(), atol=1e-5)


def test_rerun_skips_done_files_and_redo_starts_over(sample_tree, tmp_path, model):
    out = tmp_path / "r"
    opts = FolderOptions(annotate=False)
    first = batchemo.analyze_folder(sample_tree, out=out, model=model, options=opts, progress=False)
    second = batchemo.analyze_folder(sample_tree, out=out, model=model, options=opts, progress=False)
    assert second.skipped_done == 6 and second.faces == first.faces
    (sample_tree / "variants" / "astronaut_small.jpg").touch()  # changed mtime: analysed again
    third = batchemo.analyze_folder(sample_tree, out=out, model=model, options=opts, progress=False)
    assert third.skipped_done == 5 and third.faces == 7
    redo = batchemo.analyze_folder(sample_tree, out=out, model=model,
                                   options=FolderOptions(annotate=False, redo=True), progress=False)
    assert redo.skipped_done == 0 and redo.faces == 7
    assert len(batchemo.read_report(out)) == 7


def test_a_rerun_removes_the_half_written_files_of_a_killed_run(sample_tree, tmp_path, model):
    out = tmp_path / "k"
    batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False)
    # What a kill in the middle of write_atomic leaves: a temp beside a table, one in the annotated tree.
    stale = [out / ".faces.csv.0badf00d.tmp", out / "annotated" / "variants" / ".astronaut_grey.jpg.deadbeef.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    mine = out / ".notes.tmp"  # a dot file of the user's, not named like write_atomic's temps
    mine.write_bytes(b"keep")
    again = batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False)
    assert again.skipped_done == 6
    assert not [p for p in stale if p.exists()] and mine.read_bytes() == b"keep"


def _interrupt_at(monkeypatch, n: int):
    """Ctrl-C at the n-th photo's detection; returns the function that undoes it."""
    from batchemo.jobs import folder as F

    real, calls = F.detect_photo, {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(F, "detect_photo", flaky)
    return lambda: monkeypatch.setattr(F, "detect_photo", real)


def _without_probabilities(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df if c.startswith("p_") or c == "confidence"])


def test_a_rerun_with_other_settings_is_refused_rather_than_mixed_into_the_report(sample_tree, tmp_path, model):
    import shutil

    from batchemo.jobs.runtime import OutputConflict
    from batchemo.pipeline.detect import DetectOptions
    from batchemo.pipeline.model import EmotionModel
    from batchemo.training.card import set_temperature

    out = tmp_path / "s"
    quiet = FolderOptions(annotate=False, html=False)
    batchemo.analyze_folder(sample_tree, out=out, model=model, options=quiet, progress=False)
    assert json.loads((out / "run.json").read_text())["analysis"]["model"]["sha256"]
    # Speed and extra-file options leave the rows alone: the re-run goes on and skips what is done.
    same = batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False,
                                   options=FolderOptions(annotate=False, batch_size=3, workers=1))
    assert same.skipped_done == 6
    other = FolderOptions(annotate=False, html=False, detect=DetectOptions(min_face=60, max_side=640))
    with pytest.raises(OutputConflict, match=r"made with other settings \(options\.detect\.min_face 30 -> 60\)"):
        batchemo.analyze_folder(sample_tree, out=out, model=model, options=other, progress=False)
    assert not (out / ".journal").exists()  # a refused run leaves nothing behind
    # An option the report predates counts as its default; a setting it has that no longer exists is passed over.
    run = json.loads((out / "run.json").read_text())
    del run["analysis"]["options"]["max_megapixels"]
    run["analysis"]["options"]["retired_option"] = 1
    (out / "run.json").write_text(json.dumps(run))
    assert batchemo.analyze_folder(sample_tree, out=out, model=model, options=quiet, progress=False).skipped_done == 6
    # The same network with another temperature in its card gives other probabilities: another model.
    copy = tmp_path / "m" / "emotion.keras"
    copy.parent.mkdir()
    shutil.copy(model.path, copy)
    shutil.copy(Path(model.path).with_suffix(".json"), copy.with_suffix(".json"))
    set_temperature(copy, 1.0, {"nll_before": 1.0, "nll_after": 1.0, "ece_before": 0.0, "ece_after": 0.0})
    with pytest.raises(OutputConflict, match="model.temperature"):
        batchemo.analyze_folder(sample_tree, out=out, model=EmotionModel.load(copy), options=quiet, progress=False)
    redone = batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False,
                                     options=FolderOptions(annotate=False, html=False, redo=True,
                                                           detect=other.detect))
    assert redone.skipped_done == 0


def test_settings_are_checked_against_an_interrupted_run_and_not_against_a_report_that_predates_them(
        sample_tree, tmp_path, model, monkeypatch):
    from batchemo.jobs.runtime import OutputConflict
    from batchemo.pipeline.detect import DetectOptions

    other = FolderOptions(annotate=False, detect=DetectOptions(min_face=100, max_side=640))
    old = tmp_path / "old"
    batchemo.analyze_folder(sample_tree, out=old, model=model, options=FolderOptions(annotate=False), progress=False)
    run = json.loads((old / "run.json").read_text())
    del run["analysis"]  # a report written before settings were recorded: taken as it is, as before
    (old / "run.json").write_text(json.dumps(run))
    assert batchemo.analyze_folder(sample_tree, out=old, model=model, options=other, progress=False).skipped_done == 6

    restore = _interrupt_at(monkeypatch, 5)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        batchemo.analyze_folder(sample_tree, out=cut, model=model, progress=False,
                                options=FolderOptions(annotate=False, batch_size=1, workers=1))
    restore()
    assert not (cut / "run.json").exists()
    with pytest.raises(OutputConflict, match="an interrupted run in it used other settings"):
        batchemo.analyze_folder(sample_tree, out=cut, model=model, options=other, progress=False)


def test_a_redo_without_the_extras_removes_those_of_the_analysis_it_replaces(sample_tree, tmp_path, model):
    out = tmp_path / "x"
    batchemo.analyze_folder(sample_tree, out=out, model=model, options=FolderOptions(save_faces=True), progress=False)
    assert (out / "annotated").is_dir() and (out / "report.html").exists() and (out / "faces").is_dir()
    batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False,
                            options=FolderOptions(annotate=False, html=False, redo=True))
    assert not [n for n in ("annotated", "report.html", "thumbs", "faces") if (out / n).exists()]
    assert (out / "faces.csv").exists()


def test_an_interrupted_redo_resumes_without_the_report_it_replaces(sample_tree, tmp_path, model, monkeypatch):
    """--redo with other settings, cut short, then resumed: the rows are all the new settings' (the finished
    report of the run before is still on disk until the redo completes, and must not be read back)."""
    from batchemo.pipeline.detect import DetectOptions

    new = dict(annotate=False, html=False, detect=DetectOptions(min_face=100, max_side=640))
    fresh = batchemo.analyze_folder(sample_tree, out=tmp_path / "fresh", model=model,
                                    options=FolderOptions(**new), progress=False)
    out = tmp_path / "o"
    before = batchemo.analyze_folder(sample_tree, out=out, model=model, options=FolderOptions(annotate=False),
                                     progress=False)
    assert before.faces > fresh.faces  # the settings give other rows
    restore = _interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False,
                                options=FolderOptions(**new, redo=True, batch_size=1, workers=1))
    assert list((out / ".journal").glob("*.files.csv")) and (out / "faces.csv").exists()  # the old report too
    restore()
    resumed = batchemo.analyze_folder(sample_tree, out=out, model=model, options=FolderOptions(**new),
                                      progress=False)
    assert resumed.skipped_done >= 1 and resumed.faces == fresh.faces
    pd.testing.assert_frame_equal(_without_probabilities(batchemo.read_report(fresh.out)),
                                  _without_probabilities(batchemo.read_report(out)))


def test_interrupted_run_is_completed_without_losing_or_doubling_faces(sample_tree, tmp_path, model, monkeypatch):
    full = batchemo.analyze_folder(sample_tree, out=tmp_path / "full", model=model,
                                   options=FolderOptions(annotate=False), progress=False)
    restore = _interrupt_at(monkeypatch, 4)  # Ctrl-C in the middle of the walk
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        batchemo.analyze_folder(sample_tree, out=out, model=model,
                                options=FolderOptions(annotate=False, batch_size=1, workers=1), progress=False)
    assert not (out / "faces.csv").exists()  # no final report from a cut run
    assert list((out / ".journal").glob("*.files.csv"))  # but the finished files are kept
    restore()
    resumed = batchemo.analyze_folder(sample_tree, out=out, model=model,
                                      options=FolderOptions(annotate=False), progress=False)
    assert resumed.skipped_done >= 2
    a, b = batchemo.read_report(full.out), batchemo.read_report(out)
    pd.testing.assert_frame_equal(a.drop(columns=[c for c in a if c.startswith("p_") or c == "confidence"]),
                                  b.drop(columns=[c for c in b if c.startswith("p_") or c == "confidence"]))


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path, model):
    r = runner.invoke(app, ["folder", str(tmp_path / "nope"), "--no-progress"])
    assert r.exit_code == 2 and "no such folder" in r.output and "Traceback" not in r.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    r = runner.invoke(app, ["folder", str(tmp_path / "empty"), "--no-progress"])
    assert r.exit_code == 2 and "no images found" in r.output


def test_help_reads_well():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("folder", "video", "train", "evaluate"):
        assert cmd in r.output
    r = runner.invoke(app, ["folder", "--help"])
    assert "--min-face" in r.output and "--batch-size" in r.output and "Exit code" in r.output


def test_a_deleted_photo_leaves_the_report_and_the_annotated_tree_together(sample_tree, tmp_path, model):
    out = tmp_path / "r"
    batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False)
    assert (out / "annotated" / "group" / "three_faces.jpg").exists()
    (sample_tree / "group" / "three_faces.jpg").unlink()
    batchemo.analyze_folder(sample_tree, out=out, model=model, progress=False)
    assert "group/three_faces.jpg" not in set(batchemo.read_report(out / "files.csv")["source"])
    assert not (out / "annotated" / "group" / "three_faces.jpg").exists()
    assert (out / "annotated" / "astronaut.png").exists()


def test_video_of_a_missing_file_is_a_usage_error_like_a_missing_folder(tmp_path, model):
    r = runner.invoke(app, ["video", str(tmp_path / "missing.mp4"), "--no-progress", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output
