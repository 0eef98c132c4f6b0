"""Crowd votes (FER+ format): parsing, training towards vote distributions, and evaluation against the majority."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from batchemo.cli import app
from batchemo.training import data as D
from batchemo.training.evaluate import accuracy_interval
from batchemo.training.votes import majority, read_votes

runner = CliRunner()
HEADER = "file,fer2013_row,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def _write(root, rows, header=HEADER, name="votes.csv"):
    path = root / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture()
def ferplus_like(tmp_path):
    """fer2013-like layout: data/train/<class>/x.png, and a votes file listing `train/<class>/x.png`."""
    train = tmp_path / "data" / "train"
    for name in ("a", "b", "c", "d", "e"):
        (train / "happy").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(train / "happy" / f"{name}.png"), np.full((48, 48), 100, np.uint8))
    rows = [
        "train/happy/a.png,0,2,6,0,0,0,0,0,1,1,0",  # contempt and unknown dropped: 2 neutral, 6 happy of 8
        "train/happy/b.png,1,0,0,0,0,3,0,0,0,0,7",  # NF majority: not an emotion example
        "train/happy/c.png,2,0,5,0,0,0,0,0,0,0,5",  # NF tied with the top: left out too
        "train/happy/d.png,3,0,0,0,0,0,0,0,4,6,0",  # only contempt and unknown: no class vote left
        "train/happy/e.png,4,1,0,0,0,4,4,0,0,0,1",  # NF minority dropped; anger and disgust tie
    ]
    return train, _write(tmp_path, rows)


def test_votes_drop_contempt_unknown_nf_and_map_aliases(ferplus_like):
    train, csv = ferplus_like
    v = read_votes(csv, train)
    assert v.classes == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]  # canonical, sorted
    assert [p.split("/")[-1] for p in v.paths] == ["a.png", "e.png"]
    assert v.excluded == {"not_a_face": 2, "no_class_votes": 1}
    assert v.paths[0] == str(train / "happy" / "a.png")  # `train/...` resolved under the folder's parent
    assert np.allclose(v.counts[0], [0, 0, 0, 6, 2, 0, 0]) and np.allclose(v.counts[1], [4, 4, 0, 0, 1, 0, 0])
    assert np.allclose(v.distribution[0], [0, 0, 0, 0.75, 0.25, 0, 0])  # renormalised over the 7 classes
    assert np.allclose(v.distribution.sum(1), 1)
    assert list(majority(v.counts)) == [3, -1]  # a tie has no unique majority
    files = D.labelled_from_votes(csv, train)
    assert list(files.labels) == [3, 0] and np.allclose(files.targets(), v.distribution)
    assert np.allclose(files.subset(np.array([1])).targets(), v.distribution[1:])


def test_votes_file_paths_relative_to_the_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "x.png"), np.zeros((48, 48), np.uint8))
    csv = _write(tmp_path, ["imgs/x.png,3,1"], header="file,Happy,sad")
    v = read_votes(csv, tmp_path)
    assert v.classes == ["happy", "sad"] and v.paths == [str(tmp_path / "imgs" / "x.png")]
    assert np.allclose(v.distribution, [[0.75, 0.25]])


@pytest.mark.parametrize("header,row,message", [
    ("file,happy,sad,smirk", "train/happy/a.png,1,1,1", "unknown columns ['smirk']"),
    ("name,happy,sad", "train/happy/a.png,1,1", "no `file` column"),
    ("file,happy,sad", "train/happy/a.png,1,x", "line 2"),
    ("file,happy,sad", "train/happy/a.png,1,-1", "line 2"),
    ("file,happy,happiness,sad", "train/happy/a.png,1,1,1", "both count class 'happy'"),
    ("file,happy,sad", "train/happy/missing.png,1,1", "1 listed files do not exist"),
    ("file,happy,sad", "train/happy/a.png,1,inf", "line 2: vote counts must be finite"),
    ("file,happy,sad", "train/happy/a.png,0,0", "no image left"),
    ("file,happy,sad", "train/happy/a.png,1,1\ntrain/happy/b.png,1,1\n\n\ntrain/happy/a.png,0,3",
     "'train/happy/a.png' is listed on lines 2, 6"),
    ("file,happy,sad", "train/happy/a.png,1,1\n\ntrain/happy/b.png,1,-1", "line 4"),  # blank lines counted
    ("file,happy,sad", "train/happy/a.png,1,1\ntrain/happy/b.png,1,1,1", "bad.csv: not a readable votes CSV"),
])
def test_bad_votes_files_are_clear_errors(ferplus_like, tmp_path, header, row, message):
    train, _ = ferplus_like
    csv = _write(tmp_path, [row], header=header, name="bad.csv")
    with pytest.raises((ValueError, FileNotFoundError), match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        read_votes(csv, train)
    r = runner.invoke(app, ["train", str(train), "--votes", str(csv), "--out", str(tmp_path / "m.keras")])
    assert r.exit_code == 2 and "error:" in r.output


def test_soft_targets_are_the_vote_shares(ferplus_like):
    from batchemo.training.train import TrainOptions, training_targets

    train, csv = ferplus_like
    files = D.labelled_from_votes(csv, train)
    ty, vy, loss, acc = training_targets(files, files, TrainOptions())
    assert np.allclose(ty, files.targets()) and type(loss).__name__ == "CategoricalCrossentropy"
    hard = D.Labelled(files.paths, files.labels, files.classes)
    ty, _, loss, _ = training_targets(hard, hard, TrainOptions())
    assert ty is None and type(loss).__name__ == "SparseCategoricalCrossentropy"  # folders: as before


def _shape(kind: int, rng) -> np.ndarray:
    img = np.full((48, 48), int(rng.integers(90, 140)), np.uint8)
    c = (24 + int(rng.integers(-3, 4)), 24 + int(rng.integers(-3, 4)))
    if kind == 0:
        cv2.line(img, (c[0] - 12, c[1] - 12), (c[0] + 12, c[1] + 12), 255, 4)
    elif kind == 1:
        cv2.circle(img, c, 12, 255, -1)
    else:
        cv2.rectangle(img, (c[0] - 10, c[1] - 10), (c[0] + 10, c[1] + 10), 0, -1)
    return img


FOLDERS = ["anger", "happiness", "surprised"]  # alias spellings on purpose


def _crowd_votes(i: int) -> list[int]:
    """Votes on (anger, happiness, surprise): 7-8 of 10 on the drawn shape, except every tenth image, where the
    crowd's majority is another class than the folder's (as FER+ and FER2013 disagree)."""
    k = i % 3
    top = (k + 1) % 3 if i % 10 == 0 else k
    votes = [1, 1, 1]
    votes[top] = 7 + i % 2
    return votes


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """60 drawn images in class folders, their votes, and one not-a-face image the votes leave out."""
    root = tmp_path_factory.mktemp("crowd")
    data = root / "faces"
    for f in FOLDERS:
        (data / f).mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        folder = FOLDERS[i % 3]
        cv2.imwrite(str(data / folder / f"{i}.png"), _shape(i % 3, rng))
        rows.append(f"{folder}/{i}.png,{i},{','.join(map(str, _crowd_votes(i)))},{1 - i % 2},0,{1 if i == 5 else 0}")
    cv2.imwrite(str(data / "anger" / "nf.png"), np.zeros((48, 48), np.uint8))
    rows.append("anger/nf.png,99,0,0,0,0,0,10")
    return data, _write(root, rows, header="file,fer2013_row,anger,happiness,surprise,contempt,unknown,NF")


def test_train_calibrate_evaluate_on_votes(crowd, tmp_path):
    data, csv = crowd
    out = tmp_path / "crowd.keras"
    r = runner.invoke(app, ["train", str(data), "--votes", str(csv), "--out", str(out), "--alpha", "0.25",
                            "--size", "32", "--epochs", "2", "--head-epochs", "0", "--base-weights", "none",
                            "--batch-size", "16", "--val-split", "0.25", "--seed", "3", "--split-seed", "7"])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert "(seed 7)" in card["data"]["split"]
    assert card["classes"] == ["angry", "happy", "surprise"]
    assert card["data"]["votes"] == str(csv) and "vote distributions" in card["data"]["targets"]
    assert card["data"]["train_images"] + card["data"]["val_images"] == 60  # the not-a-face image left out
    assert "--votes" in card["command"]
    assert card["history"][0]["loss"] > 0

    before = out.with_suffix(".json").read_text()
    for other in (["--val-split", "0.25"], ["--votes", str(csv), "--val-split", "0.1"],
                  ["--votes", str(csv), "--val-split", "0.25", "--group-by", r"^(\d)"]):
        refused = runner.invoke(app, ["calibrate", str(out), str(data), *other])  # not the part training left out
        assert refused.exit_code == 2 and "training left out" in refused.output, refused.output
    assert out.with_suffix(".json").read_text() == before
    r = runner.invoke(app, ["calibrate", str(out), str(data), "--votes", str(csv), "--val-split", "0.25"])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    t = card["inference"]["temperature"]
    assert 0.05 <= t <= 20 and card["calibration"]["images"] == card["data"]["val_images"]  # the held-out part
    assert "(seed 7)" in card["calibration"]["data"]  # the card's split seed, not its training seed
    assert card["calibration"]["nll_after"] <= card["calibration"]["nll_before"] + 1e-6
    assert "--votes" in card["calibration"]["command"]
    assert "inference.temperature" in out.with_suffix(".md").read_text()

    ev = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(out), str(data), "--votes", str(csv), "--out", str(ev),
                            "--record", "crowd"])
    assert r.exit_code == 0, r.output
    assert "crowd majority" in r.output and "ECE" in r.output
    assert (ev / "calibration.png").stat().st_size > 5_000 and (ev / "confusion.png").exists()
    m = json.loads((ev / "metrics.json").read_text())
    assert m["images"] == 61 and m["crowd_images"] == 60 and m["temperature"] == pytest.approx(t)
    pred = pd.read_csv(ev / "predictions.csv")
    names = {"angry": 0, "happy": 1, "surprise": 2}
    crowd_of = {f"{i}.png": int(np.argmax(_crowd_votes(i))) for i in range(60)}
    voted = pred[pred["path"].map(lambda p: p.split("/")[-1] in crowd_of)]
    truth = voted["path"].map(lambda p: crowd_of[p.split("/")[-1]]).to_numpy()
    assert m["crowd_accuracy"] == pytest.approx((voted["predicted"].map(names).to_numpy() == truth).mean())
    right = int((voted["predicted"].map(names).to_numpy() == truth).sum())
    assert m["crowd_accuracy_ci"] == pytest.approx(accuracy_interval(right, 60))
    assert m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
    assert r.output.count("(95 % CI ") == 2
    assert m["accuracy"] == pytest.approx((pred["predicted"].map(names) == pred["true"].map(names)).mean())
    for key in ("ece", "nll", "crowd_ece", "crowd_nll", "crowd_raw_ece", "crowd_raw_nll"):
        assert np.isfinite(m[key]), key
    recorded = json.loads(out.with_suffix(".json").read_text())["evaluation"]["crowd"]
    assert recorded["crowd_accuracy"] == pytest.approx(m["crowd_accuracy"]) and "crowd_ece" in recorded
    card_md = out.with_suffix(".md").read_text()
    assert "against the crowd majority" in card_md and card_md.count("(95 % CI ") == 2
