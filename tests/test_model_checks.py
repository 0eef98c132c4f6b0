"""Training, evaluation and model loading refuse what would give a wrong model or a wrong figure: options out of
range, a votes file that fits no image, a network beside another model's card, a half-replaced model."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from batchemo.cli import app
from batchemo.pipeline.model import EmotionModel, default_model_path
from batchemo.training.evaluate import crowd_majority
from batchemo.training.options import TrainOptions
from batchemo.training.train import split_files

runner = CliRunner()
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """7 class folders x 4 grey 48x48 images."""
    root = tmp_path_factory.mktemp("faces") / "data"
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(root / c / f"{c}{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


def shipped_copy(folder, twin: bool = True):
    """The shipped model, card and (with `twin`) TFLite twin copied into `folder`: cards to spoil."""
    src = default_model_path()
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".keras", ".json", ".md") + ((".tflite",) if twin else ()):
        shutil.copy2(src.with_suffix(suffix), folder / ("m" + suffix))
    return folder / "m.keras"


@pytest.mark.parametrize("kw,message", [
    ({"lr": -1}, "--lr must be more than 0"), ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"epochs": -2}, "--epochs must be at least 0"), ({"erase": 1.5}, "--erase must be at least 0 and at most 1"),
    ({"epochs": 0, "base_weights": "none"}, "--epochs 0 trains nothing"),
    ({"epochs": 0, "head_epochs": 0}, "--epochs 0 trains nothing"),
])
def test_training_options_out_of_range_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainOptions(**kw)


def test_an_empty_side_of_the_split_is_refused(faces):
    with pytest.raises(ValueError, match="--val-split must be more than 0 and less than 1"):
        split_files(faces, TrainOptions(), val_split=0)
    with pytest.raises(ValueError, match="both need some"):
        split_files(faces, TrainOptions(), val_split=0.999)


@pytest.mark.parametrize("args,message", [
    (["train", "{data}", "--out", "{tmp}/m.keras", "--recipe", "foo"], "--recipe must be batchemo or notebook"),
    (["train", "{data}", "--out", "{tmp}/m.keras", "--lr", "-1"], "--lr must be more than 0"),
    (["train", "{data}", "--out", "{tmp}/m.keras", "--val-split", "1"], "--val-split must be more than 0"),
    (["train", "{data}", "--out", "{file}/m.keras"], "a file stands in its path"),
    (["evaluate", "{model}", "{data}", "--folds", "1", "--out", "{tmp}/e"], "--folds must be 0"),
    (["evaluate", "{model}", "{data}", "--folds", "2", "--votes", "{file}", "--out", "{tmp}/e"], "with --folds"),
    (["evaluate", "{model}", "{data}", "--batch-size", "0", "--out", "{tmp}/e"], "--batch-size must be at least 1"),
    (["evaluate", "{model}", "{data}", "--out", "{file}"], "--out is a file"),
    (["calibrate", "{model_copy}", "{data}", "--val-split", "-0.3"], "--val-split must be at least 0"),
])
def test_cli_refuses_nonsense_in_one_line(faces, tmp_path, args, message):
    file = tmp_path / "afile"
    file.write_text("")
    # Every command writes under tmp_path, so that one which is not refused cannot touch the shipped model.
    fill = {"data": str(faces), "model": str(default_model_path()), "file": str(file), "tmp": str(tmp_path),
            "model_copy": str(shipped_copy(tmp_path / "copy"))}
    r = runner.invoke(app, [a.format(**fill) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("error:")]) == 1


def test_crowd_votes_match_absolute_paths_and_refuse_a_file_that_fits_none(faces, tmp_path):
    paths = sorted(str(p) for p in faces.rglob("*.png"))
    header = "file,happiness,sadness"
    absolute = tmp_path / "abs.csv"
    absolute.write_text("\n".join([header, f"{faces / 'happy' / 'happy0.png'},9,1",
                                   f"{faces / 'sad' / 'sad1.png'},2,3"]))
    crowd = crowd_majority(paths, absolute, faces, CLASSES)
    got = {p.split("/")[-1]: int(c) for p, c in zip(paths, crowd) if c >= 0}
    assert got == {"happy0.png": CLASSES.index("happy"), "sad1.png": CLASSES.index("sad")}
    other = tmp_path / "elsewhere"
    other.mkdir()
    cv2.imwrite(str(other / "x.png"), np.zeros((48, 48), np.uint8))
    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("\n".join([header, f"{other / 'x.png'},9,1"]))
    with pytest.raises(ValueError, match="none of the 28 images scored"):
        crowd_majority(paths, unrelated, faces, CLASSES)


@pytest.mark.parametrize("twin", [True, False], ids=["tflite", "keras"])
def test_a_network_beside_another_models_card_is_refused(tmp_path, twin):
    model = shipped_copy(tmp_path / "m", twin)
    card = json.loads(model.with_suffix(".json").read_text())
    card["classes"] = card["classes"][:6]
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="gives 7 classes, its card m.json says 48x48 and 6 classes"):
        EmotionModel.load(model)


@pytest.mark.parametrize("text,message", [('{"classes": ["a", "b"', "not a readable model card"),
                                          ("", "not a readable model card"),
                                          ('{"input": {"image_size": 48}}', r"no 'classes'")])
def test_a_broken_card_is_a_clear_error_naming_it(tmp_path, faces, text, message):
    model = shipped_copy(tmp_path / "m")
    model.with_suffix(".json").write_text(text)
    with pytest.raises(ValueError, match=message):
        EmotionModel.load(model)
    r = runner.invoke(app, ["folder", str(faces / "happy"), "--model", str(model), "--out", str(tmp_path / "o"),
                            "--no-progress"])
    assert r.exit_code == 2 and "m.json: not a readable model card" in r.output and "Traceback" not in r.output


def test_a_failed_save_leaves_the_earlier_model_whole(faces, tmp_path, monkeypatch):
    """The network is renamed over the earlier one only once its twin is made: an export that fails (or a kill
    in its seconds) leaves the earlier network, twin and card together."""
    import batchemo.training.train as T

    model = shipped_copy(tmp_path / "m")
    before = {s: model.with_suffix(s).read_bytes() for s in (".keras", ".tflite", ".json")}

    def failing_export(path):
        raise RuntimeError("export failed")

    monkeypatch.setattr(T, "export_model", failing_export)
    with pytest.raises(RuntimeError, match="export failed"):
        T.train_folder(faces, model, TrainOptions(alpha=0.25, size=32, epochs=1, head_epochs=0, base_weights="none",
                                                  batch_size=16), val_split=0.25, verbose=False)
    assert {s: model.with_suffix(s).read_bytes() for s in before} == before
    assert EmotionModel.load(model).classes == CLASSES
