"""`batchemo evaluate`, `train` and `calibrate` as their users read them (issue 43): the crowd's view beside the
folder labels' with --votes, a word on what the temperature was fitted to without it, options that read the same in
every command's --help with their ranges, and training options refused where nothing trains."""
from __future__ import annotations

import shutil
from typing import get_args, get_type_hints

import cv2
import numpy as np
import pandas as pd
import pytest
import typer.main
from typer.testing import CliRunner

from batchemo.cli import app
from batchemo.cli import model as model_commands
from batchemo.pipeline.model import default_model_path
from batchemo.training.card import set_temperature
from batchemo.training.options import TRAIN_RANGES

runner = CliRunner()
COMMANDS = ("train", "evaluate", "calibrate")


@pytest.fixture()
def shipped(tmp_path):
    """The shipped model, its card and TFLite twin, copied (cards to change)."""
    src = default_model_path()
    for suffix in (".keras", ".json", ".md", ".tflite"):
        shutil.copy2(src.with_suffix(suffix), tmp_path / ("m" + suffix))
    return tmp_path / "m.keras"


@pytest.fixture()
def faces(tmp_path, face_bgr):
    """happy/0-3.png and sad/0-2.png: the sample face, shifted."""
    grey = cv2.resize(cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    data = tmp_path / "data"
    for name, n in (("happy", 4), ("sad", 3)):
        (data / name).mkdir(parents=True)
        for k in range(n):
            cv2.imwrite(str(data / name / f"{k}.png"), np.roll(grey, 2 * k, axis=1))
    return data


def test_votes_give_the_crowd_view_beside_the_folder_labels(shipped, faces, tmp_path):
    votes = tmp_path / "votes.csv"
    # happy/0: the crowd says sad; happy/1: a tie (no majority); sad/2: not in the file; the rest agree.
    votes.write_text("file,happiness,sadness,neutral\nhappy/0.png,2,7,1\nhappy/1.png,4,4,2\nhappy/2.png,8,1,1\n"
                     "happy/3.png,6,0,4\nsad/0.png,0,9,1\nsad/1.png,1,5,4\n")
    crowd = {"happy/0.png": "sad", "happy/1.png": "", "happy/2.png": "happy", "happy/3.png": "happy",
             "sad/0.png": "sad", "sad/1.png": "sad", "sad/2.png": ""}
    out = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(shipped), str(faces), "--votes", str(votes), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "(against the crowd majority, macro F1 " in r.output

    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    p = pred[[f"p_{c}" for c in classes]].to_numpy()
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert list(pred["predicted"]) == [classes[i] for i in p.argmax(1)]
    assert np.allclose(pred["confidence"], p.max(1))
    rel = pred["path"].map(lambda s: "/".join(s.split("/")[-2:]))
    assert list(pred["crowd_majority"]) == [crowd[f] for f in rel]

    voted = pred[pred["crowd_majority"] != ""]
    cm = pd.read_csv(out / "confusion_crowd.csv", index_col=0)
    expected = pd.crosstab(voted["crowd_majority"], voted["predicted"])
    for truth in expected.index:
        for guess in expected.columns:
            assert cm.loc[truth, guess] == expected.loc[truth, guess]
    assert cm.to_numpy().sum() == len(voted) == 5
    per = pd.read_csv(out / "per_class_crowd.csv").set_index("class")
    assert per.loc["sad", "support"] == 3 and per.loc["happy", "support"] == 2
    right = voted[voted["crowd_majority"] == "sad"]["predicted"].eq("sad").sum()
    assert per.loc["sad", "recall"] == pytest.approx(right / 3)
    assert (out / "confusion_crowd.png").stat().st_size > 5000
    # The folder labels' view is still there, over all 7 images.
    assert pd.read_csv(out / "confusion.csv", index_col=0).to_numpy().sum() == 7


def test_without_votes_the_summary_says_the_temperature_was_fitted_to_crowd_votes(shipped, faces, tmp_path):
    fitted = {"nll_before": 1.0, "nll_after": 0.9, "ece_before": 0.2, "ece_after": 0.1}
    set_temperature(shipped, 0.6, {**fitted, "target": "crowd majority (unique most-voted class)"})
    r = runner.invoke(app, ["evaluate", str(shipped), str(faces), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "the temperature was fitted to crowd votes" in r.output and "ECE is expected to be higher" in r.output
    # Not where it was fitted to folder labels, nor where --temperature replaces it.
    r = runner.invoke(app, ["evaluate", str(shipped), str(faces), "--out", str(tmp_path / "b"), "--temperature", "1"])
    assert r.exit_code == 0 and "fitted to crowd votes" not in r.output, r.output
    set_temperature(shipped, 0.6, {**fitted, "target": "folder labels"})
    r = runner.invoke(app, ["evaluate", str(shipped), str(faces), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0 and "fitted to crowd votes" not in r.output, r.output


def _options(command: str) -> dict:
    return {p.name: p for p in typer.main.get_command(app).commands[command].params
            if p.param_type_name == "option" and p.name != "help"}


def test_an_option_reads_the_same_in_every_command_that_takes_it():
    helps: dict[str, dict[str, str]] = {}
    for command in COMMANDS:
        for name, p in _options(command).items():
            assert p.help, f"{command} --{name} has no help"
            helps.setdefault(name, {})[command] = p.help
    helps.pop("out")  # a model file to write for train, a report folder for evaluate: two things, two helps
    shared = {name: by for name, by in helps.items() if len(by) > 1}
    assert {"batch_size", "group_by", "votes", "alpha", "size", "epochs", "init_model", "base_weights", "seed",
            "val_split", "split_seed", "verbose"} <= set(shared)
    for name, by in shared.items():
        assert len(set(by.values())) == 1, f"--{name}: {by}"


def _numeric(hint) -> bool:
    return hint in (int, float) or (bool(get_args(hint)) and set(get_args(hint)) - {type(None)} <= {int, float})


@pytest.mark.parametrize("command", COMMANDS)
def test_every_numeric_option_shows_its_range(command):
    hints = get_type_hints(getattr(model_commands, command))
    numeric = [name for name in _options(command) if _numeric(hints[name])]
    assert len(numeric) >= 3
    for name, p in _options(command).items():
        if name in numeric:
            assert "(>" in p.help or "(0 or" in p.help, f"{command} --{name}: {p.help}"
        if name in TRAIN_RANGES:  # the range the options class checks, as it checks it
            assert p.help.endswith(TRAIN_RANGES[name].text), f"{command} --{name}: {p.help}"


def test_training_options_without_folds_are_refused(shipped, faces, tmp_path):
    """Without --folds, evaluate scores MODEL and trains nothing: a training option would be silently ignored."""
    r = runner.invoke(app, ["evaluate", str(shipped), str(faces), "--out", str(tmp_path / "e"), "--epochs", "3"])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0, r.output
    assert "--epochs" in r.output and "--folds" in r.output
    assert not (tmp_path / "e").exists()
