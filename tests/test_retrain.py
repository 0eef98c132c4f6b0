"""Retraining on a lab's own folders (issue 42): `batchemo train` starts from the shipped model's network by default
and from any batchemo model's with that model's width and size, says where it starts, refuses in one line what
cannot work (naming what to pass), keeps TensorFlow's log lines off the console unless --verbose, and never writes a
model it was not told to."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from batchemo.cli import app
from batchemo.pipeline.model import default_model_path, read_card
from batchemo.training.options import TrainOptions
from batchemo.training.start import shown

from .conftest import ROOT, SHARED, needs_shared

runner = CliRunner()
SPLIT = ["--batch-size", "16", "--val-split", "0.25", "--group-by", r"^(S\d+)_"]
# From random weights, the smallest network: the runs whose start is not what a test is about.
FRESH = ["--base-weights", "none", "--alpha", "0.25", "--size", "32", "--epochs", "1", "--head-epochs", "0"]
# The base frozen throughout (one head epoch, no fine-tuning): the saved base is the start's, to the bit.
HEAD_ONLY = ["--epochs", "0", "--head-epochs", "1"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """3 classes x 6 subjects x 2 drawn 48 px images, the subject in the file name as in CK+ (S001_...)."""
    root = tmp_path_factory.mktemp("faces") / "data"
    rng = np.random.default_rng(0)
    for k, name in enumerate(["anger", "happy", "surprise"]):
        (root / name).mkdir(parents=True)
        for s in range(6):
            for j in range(2):
                img = np.full((48, 48), int(rng.integers(90, 140)), np.uint8)
                c = 24 + int(rng.integers(-3, 4))
                if k == 0:
                    cv2.line(img, (c - 12, c - 12), (c + 12, c + 12), 255, 4)
                elif k == 1:
                    cv2.circle(img, (c, c), 12, 255, -1)
                else:
                    cv2.rectangle(img, (c - 10, c - 10), (c + 10, c + 10), 0, -1)
                cv2.imwrite(str(root / name / f"S{s:03d}_{j}.png"), img)
    return root


@pytest.fixture(scope="module")
def tiny(faces, tmp_path_factory):
    """A batchemo model of another width and size than the shipped one: alpha 0.25 at 32 px."""
    out = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    r = runner.invoke(app, ["train", str(faces), "--out", str(out), *FRESH, *SPLIT])
    assert r.exit_code == 0, r.output
    return out


def base_weights(model_path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(model_path, compile=False).get_layer("base").get_weights()


def fake_mobilenet_weights(path, alpha: float):
    """An .h5 laid out as Keras's no-top MobileNet files are, as far as its width goes (conv_pw_13: 1024 x alpha)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("conv_pw_13/conv_pw_13/kernel:0", shape=(1, 1, int(512 * alpha), int(1024 * alpha)),
                         dtype="f4")
    return path


def test_train_starts_from_the_shipped_models_network_by_default(faces, tmp_path):
    shipped = default_model_path()
    own = read_card(shipped)
    out = tmp_path / "lab.keras"
    r = runner.invoke(app, ["train", str(faces), "--out", str(out), "--size", "32", *HEAD_ONLY, *SPLIT])
    assert r.exit_code == 0, r.output
    assert (f"start: the network of the shipped model {shown(shipped)} (alpha {own['alpha']:g} at 32 px; alpha from "
            "its card)") in r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["alpha"] == own["alpha"] and card["options"]["init_model"] == str(shipped)
    assert card["base_weights"] == f"base of {shipped.name}"
    for mine, theirs in zip(base_weights(out), base_weights(shipped), strict=True):
        assert np.array_equal(mine, theirs)
    # The recorded command names the start, so it re-runs the same training after the shipped model changes.
    assert f"--alpha {own['alpha']}" in card["command"] and "--init-model " in card["command"]


def test_init_model_takes_its_width_and_size_from_its_card(tiny, faces, tmp_path):
    out = tmp_path / "from_tiny.keras"
    r = runner.invoke(app, ["train", str(faces), "--out", str(out), "--init-model", str(tiny), *HEAD_ONLY, *SPLIT])
    assert r.exit_code == 0, r.output
    assert "(alpha 0.25 at 32 px; alpha and size from its card)" in r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert (card["alpha"], card["size"]) == (0.25, 32)
    for mine, theirs in zip(base_weights(out), base_weights(tiny), strict=True):
        assert np.array_equal(mine, theirs)


@pytest.mark.parametrize("args,says", [
    (["train", "{faces}", "--out", "{out}", "--alpha", "0.25"], "pass --alpha {shipped_alpha} or more"),
    (["train", "{faces}", "--out", "{out}", "--init-model", "{shipped}", "--alpha", "0.25"],
     "pass --alpha {shipped_alpha} or more"),
    (["evaluate", "{out}", "{faces}", "--folds", "2", "--alpha", "0.25", "--out", "{tmp}/cv"],
     "pass --alpha {shipped_alpha} or more"),
    (["train", "{faces}", "--out", "{out}", "--base-weights", "{h5}", "--alpha", "0.5"],
     "holds MobileNet alpha 0.25 weights: pass --alpha 0.25 or leave --alpha out"),
    (["train", "{faces}", "--out", "{out}", "--size", "16"], "--size must be at least 32"),
    (["train", "{faces}", "--out", "{out}", "--init-model", "{tmp}/none.keras"], "--init-model file not found"),
], ids=["narrower-than-shipped", "narrower-than-init", "cv-narrower", "path-of-other-width", "size", "no-model"])
def test_a_start_that_cannot_work_says_what_to_pass_in_one_line(faces, tmp_path, args, says):
    shipped = default_model_path()
    fill = {"faces": str(faces), "out": str(tmp_path / "m.keras"), "tmp": str(tmp_path), "shipped": str(shipped),
            "h5": str(fake_mobilenet_weights(tmp_path / "w.h5", 0.25)),
            "shipped_alpha": f"{read_card(shipped)['alpha']:g}"}
    r = runner.invoke(app, [a.format(**fill) for a in args] + (SPLIT if args[0] == "train" else SPLIT[-2:]))
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and says.format(**fill) in r.output, r.output
    assert not (tmp_path / "m.keras").exists() and not (tmp_path / "cv").exists()


def test_missing_imagenet_weights_are_an_error_not_a_start_from_scratch(faces, tmp_path, monkeypatch):
    import keras

    def offline(fname, origin, **kw):
        raise OSError("no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(keras.utils, "get_file", offline)
    out = tmp_path / "m.keras"
    r = runner.invoke(app, ["train", str(faces), "--out", str(out), "--base-weights", "imagenet", "--size", "32",
                            "--epochs", "1", "--head-epochs", "0", *SPLIT])
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0, r.output
    assert "mobilenet_2_5_224_tf_no_top.h5" in r.output and "--base-weights PATH" in r.output
    assert not out.exists()


def test_base_weights_path_gives_its_own_width(tmp_path):
    from batchemo.training.start import resolve_start

    start = resolve_start(TrainOptions(base_weights=str(fake_mobilenet_weights(tmp_path / "w.h5", 0.5))))
    assert (start.opts.alpha, start.opts.size, start.pretrained) == (0.5, 96, True)


@needs_shared("weights", "mobilenet_2_5_224_tf_no_top.h5")
def test_the_shared_imagenet_file_is_read_as_alpha_025():
    from batchemo.training.start import resolve_start

    path = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
    assert resolve_start(TrainOptions(base_weights=str(path))).opts.alpha == 0.25


def test_train_writes_no_model_it_was_not_told_to(faces, tmp_path, monkeypatch):
    """Without --out, run inside a checkout, it would have replaced the shipped model."""
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["train", str(faces), *FRESH, *SPLIT])
    assert r.exit_code == 2 and "--out" in r.output, r.output
    assert not (tmp_path / "models").exists()


def test_cross_validation_starts_where_train_does(faces, tmp_path, monkeypatch):
    """`evaluate --folds` without model options trains each fold from the shipped model's network, with its width
    and size: its figure is the one `batchemo train` gives with the same options."""
    from batchemo.training import evaluate as E
    from batchemo.training.start import resolve_start

    seen = []

    def stop(train, val, opts, **kw):
        seen.append(opts)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(E, "fit", stop)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "cv.keras"), str(faces), "--folds", "2", "--group-by",
                            r"^(S\d+)_", "--out", str(tmp_path / "cv")])
    assert "stopped by the test" in r.output and len(seen) == 1, r.output
    trained_by_train = resolve_start(TrainOptions()).opts
    for field in ("init_model", "base_weights", "alpha", "size", "epochs", "head_epochs", "lr", "patience"):
        assert getattr(seen[0], field) == getattr(trained_by_train, field), field
    assert seen[0].init_model == str(default_model_path())
    assert "start: the network of the shipped model" in r.output


def _console(*args: str, cwd) -> subprocess.CompletedProcess:
    """batchemo in a fresh process (TensorFlow's import-time lines come once per process), with no log setting of
    the caller's."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "batchemo", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_the_console_shows_batchemos_lines_only(faces, tmp_path):
    out = tmp_path / "m.keras"
    r = _console("train", str(faces), "--out", str(out), *FRESH, *SPLIT, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    ours = ("start: ", "train: ", "val:   ", "[scratch] epoch 1/1 ", f"saved {out} ")
    assert all(line.startswith(ours) for line in lines), "\n".join(lines)
    assert r.stdout.strip().splitlines()[-1].startswith(
        f"saved {out} (card {out.with_suffix('.json')}, {out.with_suffix('.md')}): validation accuracy ")


@pytest.mark.parametrize("verbose", [False, True])
def test_the_converter_log_shows_only_with_verbose(tiny, tmp_path, verbose):
    """The TFLite converter lists the SavedModel it passes through (Keras's "Saved artifact at ..." and a
    TensorSpec per weight) on stdout, with more from C++ on fd 2: kept for --verbose."""
    import shutil

    model = tmp_path / "copy.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(tiny.with_suffix(suffix), model.with_suffix(suffix))
    r = runner.invoke(app, ["export", str(model), *(["--verbose"] if verbose else [])])
    assert r.exit_code == 0, r.output
    assert ("TensorSpec" in r.output) == verbose, r.output
    assert r.output.strip().splitlines()[-1] == f"wrote {model.with_suffix('.tflite')}"


def test_training_without_tensorflow_says_what_to_install(faces, tmp_path, monkeypatch):
    """TensorFlow is the `train` extra (the folder and video jobs run without it)."""
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now fails, as where it is not installed
    r = runner.invoke(app, ["train", str(faces), "--out", str(tmp_path / "m.keras"), *FRESH, *SPLIT])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]  # after the lines on the start and the split, which need no TensorFlow
    assert last.startswith("error: training needs TensorFlow") and 'pip install "batchemo[train]"' in last
    assert "Traceback" not in r.output and not (tmp_path / "m.keras").exists()
