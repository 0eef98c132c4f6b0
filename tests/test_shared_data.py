"""Checks on the real data beside the project (../shared); each skips, saying why, where it is absent (fails in CI:
`need`)."""
from __future__ import annotations

import json

import batchemo
from batchemo.pipeline.model import default_model_path
from batchemo.training import data as D
from batchemo.training.evaluate import score

from .conftest import SHARED, needs_shared


@needs_shared("datasets", "fer2013", "val")
def test_shipped_model_reaches_its_card_accuracy_on_fer2013_val(model):
    card = json.loads(default_model_path().with_suffix(".json").read_text())
    claimed = card["evaluation"]["fer2013_val"]["accuracy"]
    m = score(model, D.list_labelled(SHARED / "datasets" / "fer2013" / "val"))
    assert m["images"] == 3589
    assert abs(m["accuracy"] - claimed) <= 0.005, (m["accuracy"], claimed)


@needs_shared("datasets", "ferplus", "val.csv")
@needs_shared("datasets", "fer2013", "val")
def test_shipped_model_reaches_its_card_crowd_figures_on_fer2013_val(model):
    """Accuracy and calibration against the FER+ crowd majority (issue 17), as the card claims them."""
    from batchemo.training.calibration import ece
    from batchemo.training.evaluate import crowd_majority

    card = json.loads(default_model_path().with_suffix(".json").read_text())
    claimed = card["evaluation"]["fer2013_val"]
    val = SHARED / "datasets" / "fer2013" / "val"
    m = score(model, D.list_labelled(val))
    crowd = crowd_majority(m["paths"], SHARED / "datasets" / "ferplus" / "val.csv", val, model.classes)
    c = crowd >= 0
    assert c.sum() == claimed["crowd_images"] == 3439  # unique majority, not-a-face images left out
    accuracy = (m["y_pred"][c] == crowd[c]).mean()
    assert abs(accuracy - claimed["crowd_accuracy"]) <= 0.005, (accuracy, claimed["crowd_accuracy"])
    assert abs(ece(m["probs"][c], crowd[c]) - claimed["crowd_ece"]) <= 0.005
    assert model.temperature == card["inference"]["temperature"] != 1.0  # calibrated, as the card says


@needs_shared("media", "casme2-EP02_05.avi")
def test_real_face_clip(tmp_path, model):
    res = batchemo.analyze_video(SHARED / "media" / "casme2-EP02_05.avi", tmp_path / "casme", model, progress=False)
    assert res.status == "complete" and res.frames_decoded == 41
    df = batchemo.read_report(res.out)
    assert df["frame"].nunique() == 41 and df["face"].nunique() == 1  # one person, one track, every frame
    assert (df["w"] > 300).all()
    s = batchemo.read_report(res.out / "summary.csv")
    assert s["face"].tolist()[0] == 0 and s["face"].isna().tolist() == [False, True]
    assert s["scope"].tolist() == ["track", "all"]
    for name in ("frames.csv", "timeline.csv", "timeline.png", "summary.csv", "annotated.mp4", "run.json"):
        assert (res.out / name).exists(), name
