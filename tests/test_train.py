"""`batchemo train` / `evaluate` on a tiny synthetic data set the test makes (seconds, not hours)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from batchemo.training import data as D
from batchemo.cli import app
from batchemo.training.evaluate import metrics
from batchemo.training.options import TrainOptions
from batchemo.training.labels import match_classes
from batchemo.training.labels import canonical

from .conftest import ROOT

runner = CliRunner()
CLASSES = ["anger", "happiness", "surprised"]  # alias spellings on purpose


def _draw(kind: str, rng) -> np.ndarray:
    img = np.full((48, 48), int(rng.integers(90, 140)), np.uint8)
    c = (24 + int(rng.integers(-3, 4)), 24 + int(rng.integers(-3, 4)))
    if kind == "anger":
        cv2.line(img, (c[0] - 12, c[1] - 12), (c[0] + 12, c[1] + 12), 255, 4)
    elif kind == "happiness":
        cv2.circle(img, c, 12, 255, -1)
    else:
        cv2.rectangle(img, (c[0] - 10, c[1] - 10), (c[0] + 10, c[1] + 10), 0, -1)
    return img


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 classes x 8 subjects x 3 images, subject in the file name like CK+ (S001_...)."""
    root = tmp_path_factory.mktemp("ds") / "faces"
    rng = np.random.default_rng(0)
    for k in CLASSES:
        (root / k).mkdir(parents=True)
        for s in range(8):
            for j in range(3):
                cv2.imwrite(str(root / k / f"S{s:03d}_{j}.png"), _draw(k, rng))
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "tiny.keras"
    r = runner.invoke(app, ["train", str(dataset), "--out", str(out), "--alpha", "0.25", "--size", "32",
                            "--epochs", "1", "--head-epochs", "0", "--base-weights", "none", "--batch-size", "16",
                            "--val-split", "0.25", "--group-by", r"^(S\d+)_", "--seed", "3"])
    assert r.exit_code == 0, r.output
    return out


def test_train_saves_model_and_card(trained):
    card = json.loads(trained.with_suffix(".json").read_text())
    for key in ("classes", "input", "size", "alpha", "base_weights", "data", "command", "epochs_run",
                "training_seconds", "validation", "history"):
        assert key in card, key
    assert card["classes"] == ["angry", "happy", "surprise"]  # canonical names through the aliases
    assert card["input"]["image_size"] == 48 and card["size"] == 32 and card["epochs_run"] == 1
    assert 0 <= card["validation"]["accuracy"] <= 1
    assert "--group-by" in card["command"] and "no group on both sides" in card["data"]["split"]
    assert card["data"]["train_images"] + card["data"]["val_images"] == 72
    assert "from scratch" in card["base_weights"]
    md = trained.with_suffix(".md").read_text()
    assert "Validation top-1 accuracy" in md and card["command"] in md
    assert not trained.with_name(trained.name + ".work").exists()  # resume state cleaned up after success


def test_saved_model_takes_plain_uint8_crops(trained, dataset):
    from batchemo.pipeline.model import EmotionModel

    em = EmotionModel.load(trained)
    crop = cv2.imread(str(next((dataset / "anger").iterdir())), cv2.IMREAD_GRAYSCALE)
    p = em.predict(np.stack([crop, crop]))
    assert p.shape == (2, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.allclose(p[0], p[1])
    # scaling lives inside the model: the first layers rescale to [-1, 1]
    import keras

    m = keras.saving.load_model(trained, compile=False)
    assert m.layers[1].name == "mobilenet_preprocess"


def test_mirror_averaging_follows_the_card(trained, dataset):
    from dataclasses import replace

    from batchemo.pipeline.model import EmotionModel

    em = EmotionModel.load(trained)
    assert json.loads(trained.with_suffix(".json").read_text())["inference"]["flip_average"] is True
    assert em.flip is True  # train writes flip_average into the card; loading follows it
    crops = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((dataset / "anger").iterdir())[:5]])
    single = replace(em, flip=False)
    expected = (single.predict(crops) + single.predict(crops[:, :, ::-1])) / 2
    assert np.allclose(em.predict(crops), expected, atol=1e-5)

    def left_half(x):  # a stand-in network that only looks at the left half of the face
        m = x[:, :, :24].mean(axis=(1, 2, 3)) / 255
        return np.stack([m, 1 - m], axis=1)

    toy = EmotionModel(trained, ["a", "b"], 48, {"inference": {"flip_average": True}}, left_half)
    face = np.zeros((1, 48, 48), np.uint8)
    face[:, :, :24] = 255
    assert np.allclose(replace(toy, flip=False).predict(face), [[1, 0]])
    assert np.allclose(toy.predict(face), [[0.5, 0.5]])


def test_export_writes_a_matching_tflite_twin(trained, tmp_path):
    import shutil

    from batchemo.pipeline.model import EmotionModel

    model = tmp_path / "copy.keras"
    shutil.copy(trained, model)
    shutil.copy(trained.with_suffix(".json"), model.with_suffix(".json"))
    r = runner.invoke(app, ["export", str(model)])
    assert r.exit_code == 0, r.output
    assert model.with_suffix(".tflite").stat().st_size > 10_000
    crops = np.random.default_rng(1).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    lite = EmotionModel.load(model)
    assert type(lite._predict).__name__ == "_LitePredictor"
    assert np.allclose(lite.predict(crops), EmotionModel.load(trained).predict(crops), atol=1e-3)
    assert runner.invoke(app, ["export", str(tmp_path / "missing.keras")]).exit_code == 2


def test_tflite_batches_run_in_slices_with_each_crop_in_its_own_row():
    """A batch runs as INVOKE_SLICE-crop invokes plus one for the rest, padded to a power of two: no crop lost,
    doubled or moved between rows, and each row what that crop gives alone."""
    from batchemo.pipeline import model as M

    lite = M._LitePredictor.from_file(ROOT / "models" / "emotion.tflite")
    n = 2 * M.INVOKE_SLICE + 5
    x = np.random.default_rng(3).integers(0, 256, (n, 48, 48, 1)).astype(np.float32)
    out = lite(x)
    assert out.shape == (n, 7)
    cores = os.cpu_count() or 1
    assert sorted(lite.interpreters) == [(8, cores), (M.INVOKE_SLICE, cores)]  # the 5 left over run as 8
    alone = np.concatenate([lite(x[i:i + 1]) for i in range(n)])
    assert np.allclose(out, alone, atol=1e-5)
    assert np.allclose(lite(x[::-1]), out[::-1], atol=1e-5)


def test_saved_file_holds_the_network_alone(trained):
    """The augmentation wraps the network only while it trains; the saved file has neither it nor optimizer
    state (the file would be twice the size)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(trained) as z:
        config = z.read("config.json").decode()
        weights = h5py.File(io.BytesIO(z.read("model.weights.h5")))
        assert "optimizer" not in weights
    assert "FaceAugment" not in config and '"augment"' not in config


def _spy(monkeypatch, name: str) -> list:
    """Calls of batchemo.training.train.<name> during a run: (args, kwargs, result) each."""
    from batchemo.training import train as T

    calls, real = [], getattr(T, name)

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(T, name, spy)
    return calls


def test_train_with_erasing_and_label_smoothing(dataset, tmp_path, monkeypatch):
    """Both options change what the network trains on: crops with erased rectangles, smoothed targets (not only
    the card's record of the flags)."""
    import keras

    trainers = _spy(monkeypatch, "trainer_of")
    out = tmp_path / "smooth.keras"
    r = runner.invoke(app, ["train", str(dataset), "--out", str(out), "--alpha", "0.25", "--size", "32",
                            "--epochs", "1", "--head-epochs", "0", "--base-weights", "none", "--batch-size", "16",
                            "--val-split", "0.25", "--group-by", r"^(S\d+)_", "--erase", "0.5",
                            "--label-smoothing", "0.1"])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert "--erase 0.5" in card["command"] and "--label-smoothing 0.1" in card["command"]
    (trainer,) = [result for _, _, result in trainers]
    # A flat grey crop stays flat through every warp and contrast change; only an erased rectangle (filled with
    # another grey) breaks it. With erasing at 0.5, about half of 64 crops show one.
    flat = np.full((64, 48, 48, 1), 128.0, np.float32)
    seen = keras.ops.convert_to_numpy(trainer.get_layer("augment")(flat, training=True))
    erased = (seen.reshape(64, -1).max(1) - seen.reshape(64, -1).min(1)) > 1
    assert 10 <= erased.sum() <= 54, erased.sum()
    # The loss trained with: a confident right answer still costs something against smoothed targets.
    onehot = np.eye(3, dtype=np.float32)
    assert float(trainer.loss(onehot, np.clip(onehot, 1e-7, 1))) > 0.1


def test_keras_runs_the_model_where_no_tflite_interpreter_is_installed(trained, monkeypatch):
    """A GPU machine with JAX and no TensorFlow or LiteRT (teachers for distillation) uses the Keras model."""
    import batchemo.pipeline.model as M

    crops = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    lite = M.EmotionModel._load(trained)
    assert type(lite._predict).__name__ == "_LitePredictor"
    expected = lite.predict(crops)

    def no_interpreter():
        raise ImportError("no LiteRT, no TensorFlow")

    monkeypatch.setattr(M, "_interpreter_class", no_interpreter)
    plain = M.EmotionModel._load(trained)
    assert type(plain._predict).__name__ != "_LitePredictor"
    assert np.allclose(plain.predict(crops), expected, atol=1e-3)


def test_in_memory_batches_match_the_tf_data_pipeline(dataset):
    """The batches a GPU backend (JAX) trains on are the tf.data pipeline's, pixel for pixel."""
    files = D.list_labelled(dataset)
    mem = D.array_batches(files, 48, 16, shuffle=False, seed=0)
    tfd = list(D.image_dataset(files, 48, 16, shuffle=False, seed=0, cache=False).as_numpy_iterator())
    assert len(mem) == len(tfd) == 5
    for i, (x, y) in enumerate(tfd):
        mx, my = mem[i]
        assert mx.dtype == np.float32 and mx.shape == x.shape
        assert np.array_equal(mx, x) and np.array_equal(my, y)


def test_evaluate_writes_metrics_and_confusion(trained, dataset, tmp_path):
    out = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(trained), str(dataset), "--out", str(out), "--record", "synthetic"])
    assert r.exit_code == 0, r.output
    card = json.loads(trained.with_suffix(".json").read_text())
    assert 0 <= card["evaluation"]["synthetic"]["accuracy"] <= 1 and card["evaluation"]["synthetic"]["images"] == 72
    assert "synthetic: top-1 accuracy" in trained.with_suffix(".md").read_text()
    assert "accuracy" in r.output and "faces/s" in r.output
    cm = pd.read_csv(out / "confusion.csv", index_col=0)
    assert cm.to_numpy().sum() == 72
    per = pd.read_csv(out / "per_class.csv")
    assert list(per["class"]) == ["angry", "happy", "surprise"]
    assert per[["precision", "recall", "f1"]].apply(lambda s: s.between(0, 1).all()).all()
    assert (out / "confusion.png").stat().st_size > 5000
    assert len(pd.read_csv(out / "predictions.csv")) == 72
    # The recorded command re-runs this evaluation and names no training option it did not use.
    cmd = card["evaluation"]["synthetic"]["command"]
    assert cmd.startswith("batchemo evaluate ") and "--record synthetic" in cmd and "--out" in cmd
    assert "--alpha" not in cmd and "--epochs" not in cmd


def test_teacher_targets_are_the_teachers_mean_in_the_data_class_order(trained, dataset):
    from batchemo.pipeline.model import EmotionModel
    from batchemo.training.train import teacher_targets

    files = D.list_labelled(dataset)
    crops = np.stack([D.read_grey(p, 48) for p in files.paths])
    expected = EmotionModel.load(trained).predict(crops)  # columns: angry, happy, surprise
    t = teacher_targets(files, [str(trained), str(trained)])
    assert t.shape == (72, 3) and np.allclose(t.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(t, expected, atol=1e-5)
    # Data listed in another class order (alias spellings): the teacher's columns follow it.
    reordered = D.list_labelled(dataset, ["surprised", "anger", "happiness"])
    order = [reordered.paths.index(p) for p in files.paths]
    assert np.allclose(teacher_targets(reordered, [str(trained)])[order], expected[:, [2, 0, 1]], atol=1e-5)


def test_teacher_targets_are_the_network_output_without_the_card_temperature(trained, dataset, tmp_path):
    import shutil

    from batchemo.pipeline.model import EmotionModel
    from batchemo.training.card import set_temperature
    from batchemo.training.train import teacher_targets

    files = D.list_labelled(dataset)
    sharp = tmp_path / "sharp.keras"
    shutil.copy(trained, sharp)
    shutil.copy(trained.with_suffix(".json"), sharp.with_suffix(".json"))
    set_temperature(sharp, 0.5, {"nll_before": 1.0, "nll_after": 0.9, "ece_before": 0.2, "ece_after": 0.1})
    assert EmotionModel.load(sharp).temperature == 0.5
    assert np.allclose(teacher_targets(files, [str(sharp)]), teacher_targets(files, [str(trained)]), atol=1e-6)


def test_a_split_seed_holds_out_the_same_images_under_another_training_seed(dataset):
    from batchemo.training.train import split_files

    def held(**seeds):
        return split_files(dataset, TrainOptions(**seeds), val_split=0.25)[1].paths

    assert held(seed=2, split_seed=1) == held(seed=1)
    assert held(seed=2) != held(seed=1)
    with pytest.raises(ValueError, match="--split-seed"):  # nothing is held out from a separate --val-dir
        split_files(dataset, TrainOptions(split_seed=1), val_dir=dataset)


def test_train_distils_from_a_teacher(trained, dataset, tmp_path, monkeypatch):
    """The student trains towards distill x the teacher's predictions + the rest on the label."""
    from batchemo.pipeline.model import EmotionModel

    fed = _spy(monkeypatch, "datasets")
    out = tmp_path / "student.keras"
    args = ["train", str(dataset), "--out", str(out), "--alpha", "0.25", "--size", "32", "--epochs", "1",
            "--head-epochs", "0", "--base-weights", "none", "--batch-size", "16", "--val-split", "0.25",
            "--group-by", r"^(S\d+)_", "--teacher", str(trained), "--distill", "0.5"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Distilled from" in out.with_suffix(".md").read_text()
    (call,) = fed
    train_files, train_y = call[0][0], call[0][3]
    crops = np.stack([D.read_grey(p, 48) for p in train_files.paths])
    teacher = EmotionModel.load(trained).predict(crops)  # the teacher's classes are the data's, in the same order
    expected = 0.5 * teacher + 0.5 * np.eye(3)[train_files.labels]
    assert train_y is not None and np.allclose(train_y, expected, atol=1e-4)
    # A teacher without one of the data's classes is refused by name, before any training.
    small = tmp_path / "two"
    for k in CLASSES[:2]:
        (small / k).mkdir(parents=True)
        for f in sorted((dataset / k).iterdir())[:6]:
            (small / k / f.name).write_bytes(f.read_bytes())
    (small / "fear").mkdir()
    for f in sorted((dataset / "surprised").iterdir())[:6]:
        (small / "fear" / f.name).write_bytes(f.read_bytes())
    r = runner.invoke(app, ["train", str(small), *args[2:]], catch_exceptions=False)
    assert r.exit_code == 2 and "has no class ['fear']" in r.output


def test_group_split_never_shares_a_group():
    paths = [f"/x/S{s:03d}_{j}.png" for s in range(40) for j in range(1 + s % 4)]
    groups = D.group_keys(paths, r"^(S\d+)_")
    for seed in range(5):
        tr, va = D.group_split(groups, 0.2, seed)
        assert not set(groups[tr]) & set(groups[va])
        assert len(tr) + len(va) == len(paths) and 0.1 < len(va) / len(paths) < 0.35
    folds = D.group_folds(groups, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(paths)))
    for i, f in enumerate(folds):
        others = np.concatenate([g for j, g in enumerate(folds) if j != i])
        assert not set(groups[f]) & set(groups[others])
    with pytest.raises(ValueError, match="does not match"):
        D.group_keys(["/x/nosubject.png"], r"^(S\d+)_")


def test_class_aliases_and_missing_classes():
    assert canonical("Anger") == canonical("angry") == "angry"
    assert canonical("sadness") == "sad" and canonical("surprised") == "surprise"
    mapping, lacking, unused = match_classes(["angry", "happy", "neutral"], ["anger", "contempt", "happiness"])
    assert mapping == {0: 0, 2: 1} and lacking == ["contempt"] and unused == ["neutral"]


def test_metrics_by_hand():
    m = metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"], [0, 1, 2])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    pc = m["per_class"].set_index("class")
    assert pc.loc["b", "precision"] == pytest.approx(2 / 3) and pc.loc["a", "recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_macro_f1_counts_only_the_classes_of_the_images_scored(dataset):
    """A CV fold without any image of a class (CK+ folds without contempt): perfect predictions score macro F1 1,
    not 2/3 with a 0 averaged in for the class nobody showed."""
    from batchemo.training.evaluate import score

    files = D.list_labelled(dataset)
    fold = files.subset(np.flatnonzero(files.labels != 0))

    class Perfect:  # says each image's own folder class, in the order score() loads them
        classes, image_size = ["angry", "happy", "surprise"], 48

        def predict(self, crops, batch_size):
            return np.eye(3)[fold.labels][:len(crops)]

    m = score(Perfect(), fold)
    assert m["images"] == 48 and m["accuracy"] == 1.0 and m["macro_f1"] == pytest.approx(1.0)


def test_cross_validation_by_group(dataset, tmp_path):
    out = tmp_path / "cv"
    cv_args = ["evaluate", "cv.keras", str(dataset), "--folds", "2", "--group-by", r"^(S\d+)_", "--alpha", "0.25",
               "--size", "32", "--epochs", "1", "--head-epochs", "0", "--base-weights", "none", "--batch-size", "16",
               "--out", str(out)]
    r = runner.invoke(app, cv_args)
    assert r.exit_code == 0, r.output
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == 2 and folds["test_images"].sum() == 72
    cv = json.loads((out / "cv.json").read_text())
    assert cv["accuracy_mean"] == pytest.approx(folds["accuracy"].mean(), abs=1e-5)
    assert 0 <= cv["accuracy_mean"] <= 1
    # Re-run: finished folds are reused, but only when they were made with the same options; a fold recorded
    # before --split-seed existed (no such option in it) counts as the same.
    fold0 = json.loads((out / "fold0.json").read_text())
    del fold0["setup"]["options"]["split_seed"]
    (out / "fold0.json").write_text(json.dumps(fold0))
    again = runner.invoke(app, cv_args)
    assert again.exit_code == 0 and "fold 1/2: train" not in again.output, again.output
    assert json.loads((out / "cv.json").read_text())["accuracy_mean"] == cv["accuracy_mean"]
    changed = runner.invoke(app, [*cv_args, "--no-flip"])
    assert changed.exit_code == 0, changed.output
    assert changed.output.count("was made with other options; training it again") == 2
    assert json.loads((out / "fold0.json").read_text())["setup"]["options"]["flip_average"] is False
    # a fold of a run not split by subject (or with other --folds) held other test images: never reused
    assert fold0["setup"]["folds"] == 2 and fold0["setup"]["group_by"] == r"^(S\d+)_"
    fold0 = json.loads((out / "fold0.json").read_text())
    fold0["setup"]["group_by"] = None
    (out / "fold0.json").write_text(json.dumps(fold0))
    regrouped = runner.invoke(app, [*cv_args, "--no-flip"])
    assert regrouped.exit_code == 0, regrouped.output
    assert regrouped.output.count("was made with other options; training it again") == 1
    assert json.loads((out / "fold0.json").read_text())["setup"]["group_by"] == r"^(S\d+)_"


def test_train_widens_a_narrower_init_model(trained, dataset, tmp_path):
    import keras

    out = tmp_path / "wide.keras"
    r = runner.invoke(app, ["train", str(dataset), "--out", str(out), "--alpha", "0.5", "--size", "32",
                            "--epochs", "1", "--head-epochs", "1", "--batch-size", "16", "--val-split", "0.25",
                            "--group-by", r"^(S\d+)_", "--init-model", str(trained),
                            # replaced by the init model, so never loaded (alpha 0.25 weights would not fit)
                            "--base-weights", str(trained.with_suffix(".h5"))])
    assert r.exit_code == 0, r.output
    assert "widened from its alpha 0.25" in r.output  # the console says what became of what was asked
    assert f"--base-weights {trained.with_suffix('.h5')} not loaded: --init-model replaces the whole base" in r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert "widened from 256 to 512 channels" in card["base_weights"]
    assert keras.saving.load_model(out, compile=False).get_layer("base").output.shape[-1] == 512


def test_imagenet_weights_from_cache_or_download_else_an_error(tmp_path, monkeypatch):
    import keras

    from batchemo.training.start import KERAS_WEIGHTS_URL, resolve_start

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    asked = []

    def offline(fname, origin, **kw):
        asked.append(origin)
        raise OSError("no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match="--base-weights PATH") as e:
        resolve_start(TrainOptions(alpha=0.5, base_weights="imagenet"))
    assert "mobilenet_5_0_224_tf_no_top.h5" in str(e.value) and "\n" not in str(e.value)
    assert asked == [KERAS_WEIGHTS_URL + "mobilenet_5_0_224_tf_no_top.h5"]
    cached = tmp_path / "models" / "mobilenet_2_5_224_tf_no_top.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"h5")
    start = resolve_start(TrainOptions(base_weights="imagenet"))
    assert start.weights == str(cached) and (start.opts.alpha, start.opts.size) == (0.25, 96) and start.pretrained
    assert len(asked) == 1  # a cached file is not fetched again


def test_resuming_with_other_options_is_refused(dataset, tmp_path):
    out = tmp_path / "r.keras"
    args = ["train", str(dataset), "--out", str(out), "--alpha", "0.25", "--size", "32", "--head-epochs", "0",
            "--base-weights", "none", "--batch-size", "16", "--val-split", "0.25"]
    work = out.with_name(out.name + ".work")
    work.mkdir()
    (work / "state.json").write_text(json.dumps({"best": 0.5, "history": [], "options": {"epochs": 5, "seed": 1}}))
    r = runner.invoke(app, [*args, "--epochs", "1"])
    assert r.exit_code == 2 and "other options (epochs 5 -> 1)" in r.output and str(work) in r.output
    assert not out.exists()
    # A state from before --split-seed held out seed 1's slice: another slice is other options, the same is not.
    r = runner.invoke(app, [*args, "--epochs", "5", "--split-seed", "2"])
    assert r.exit_code == 2 and "split_seed 1 -> 2" in r.output
    state = json.loads((work / "state.json").read_text())
    from batchemo.training.train import load_state

    assert load_state(work, TrainOptions(**{**state["options"], "split_seed": 1}))["best"] == 0.5


def test_resuming_on_other_images_is_refused(dataset, tmp_path):
    """The best checkpoint of an interrupted run was chosen on its validation images: another split, DATA_DIR or
    --votes would resume it on images part of which it selected on, so the fingerprints must match."""
    from batchemo.training.train import data_fingerprint, load_state, split_files

    opts = TrainOptions(seed=1)
    by_subject = split_files(dataset, opts, None, 0.25, r"^(S\d+)_")
    by_image = split_files(dataset, opts, None, 0.25, None)
    data = {"train": data_fingerprint(by_subject[0]), "val": data_fingerprint(by_subject[1])}
    assert data_fingerprint(by_image[1]) != data["val"] != data_fingerprint(split_files(dataset, opts, None, 0.3,
                                                                                            r"^(S\d+)_")[1])
    moved = D.Labelled([f"/elsewhere/{p.split('/')[-2]}/{p.split('/')[-1]}" for p in by_subject[1].paths],
                       by_subject[1].labels, by_subject[1].classes)
    assert data_fingerprint(moved) == data["val"]  # the same images named from another place resume

    work = tmp_path / "w"
    work.mkdir()
    options = json.loads(json.dumps(__import__("dataclasses").asdict(opts)))
    (work / "state.json").write_text(json.dumps({"best": 0.5, "history": [], "options": options}))
    assert load_state(work, opts, data)["data"] == data  # a state from before fingerprints: resumed, then kept
    (work / "state.json").write_text(json.dumps({"best": 0.5, "history": [], "options": options, "data": data}))
    assert load_state(work, opts, data)["best"] == 0.5
    other = {"train": data_fingerprint(by_image[0]), "val": data_fingerprint(by_image[1])}
    with pytest.raises(ValueError, match="other images \\(train, val differ"):
        load_state(work, opts, other)


def test_early_stopping_resumes_its_count():
    """Interrupted after 2 epochs without a better one (patience 3): the resumed run stops after one more such
    epoch, as the run left alone would, not after three."""
    import keras

    from batchemo.training.train import resumable_early_stopping

    def model():
        m = keras.Sequential()
        m.stop_training = False  # as fit() sets it
        return m

    cb = resumable_early_stopping(3, [0.5, 0.6, 0.55, 0.58])
    cb.set_model(model())
    cb.on_train_begin()
    assert cb.best == 0.6 and cb.wait == 2
    cb.on_epoch_end(4, {"val_accuracy": 0.59})
    assert cb.model.stop_training
    fresh = resumable_early_stopping(3, [])
    fresh.set_model(model())
    fresh.on_train_begin()
    fresh.on_epoch_end(0, {"val_accuracy": 0.5})
    fresh.on_epoch_end(1, {"val_accuracy": 0.4})
    assert fresh.best == 0.5 and fresh.wait == 1 and not fresh.model.stop_training


def test_training_resizes_images_as_the_jobs_resize_face_crops(tmp_path):
    """A crop smaller than the input (a 30 px --save-faces crop) is enlarged bilinearly in training as in the
    jobs, not as area does it (blocks); larger ones are shrunk by area on both sides."""
    from batchemo.pipeline.model import crop_faces

    rng = np.random.default_rng(0)
    paths = []
    for name, shape in {"small.png": (30, 34), "large.png": (100, 90)}.items():
        cv2.imwrite(str(tmp_path / name), cv2.GaussianBlur(rng.integers(0, 255, shape).astype(np.uint8), (5, 5), 0))
        paths.append(str(tmp_path / name))
    files = D.Labelled(paths, np.array([0, 0]), ["a"])
    got = next(iter(D.image_dataset(files, 48, 2, shuffle=False, seed=0)))[0].numpy()[..., 0]
    for path, image in zip(paths, got):
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        want = crop_faces(grey, np.array([[0, 0, grey.shape[1], grey.shape[0]]]), 48)[0].astype(np.float32)
        assert np.abs(image - want).max() <= 1.0 and np.abs(image - want).mean() < 0.2
        assert np.array_equal(D.read_grey(path, 48), want.astype(np.uint8))


def test_evaluate_scores_only_what_it_should_and_refuses_nothing_to_score(tmp_path, face_bgr):
    """Hidden files and folders are no examples (macOS `._x.jpg`, `.ipynb_checkpoints/`); an empty class folder
    is a class the data lacks; no class the model knows, or crowd votes only for images left out, is an error,
    not a figure over no image."""
    from batchemo.pipeline.model import default_model_path
    from batchemo.training.evaluate import evaluate

    grey = cv2.resize(cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    data = tmp_path / "mine"
    for name, n in (("happy", 3), ("sad", 2), ("contempt", 1)):
        (data / name).mkdir(parents=True)
        for k in range(n):
            cv2.imwrite(str(data / name / f"{k}.png"), np.roll(grey, k, axis=1))
    (data / "fear").mkdir()  # made ready, still empty
    (data / "happy" / ".ipynb_checkpoints").mkdir()
    cv2.imwrite(str(data / "happy" / ".ipynb_checkpoints" / "0.png"), grey)
    (data / "happy" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    m = evaluate(default_model_path(), data, tmp_path / "ev", progress=False)
    assert m["images"] == 5
    assert {"fear", "disgust", "neutral", "angry", "surprise"} == set(m["model_classes_not_in_data"])
    numeric = tmp_path / "numeric"
    for name in ("3", "4"):
        (numeric / name).mkdir(parents=True)
        cv2.imwrite(str(numeric / name / "0.png"), grey)
    with pytest.raises(ValueError, match="none of the data's classes"):
        evaluate(default_model_path(), numeric, tmp_path / "ev2", progress=False)
    votes = tmp_path / "votes.csv"
    votes.write_text("file,happy,sad\ncontempt/0.png,5,1\n")  # votes for the one image the model cannot score
    with pytest.raises(ValueError, match="has a crowd majority"):
        evaluate(default_model_path(), data, tmp_path / "ev3", progress=False, votes=votes)
