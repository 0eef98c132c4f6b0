"""The speed work of issue 38 changed how much is computed, never what: these check the answers stay the same."""
from __future__ import annotations

import cv2
import numpy as np

from batchemo.pipeline.faces import Faces, classify
from batchemo.pipeline.model import _LitePredictor
from .conftest import need


def _crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_a_face_gets_the_same_probabilities_alone_or_in_any_batch(model):
    """The TFLite twin pads a short slice to a power of two instead of the whole batch: each face's answer must not
    depend on how many faces share its call."""
    need(isinstance(model._predict, _LitePredictor), "the shipped model runs without its TFLite twin here (LiteRT, "
         "a dependency on Linux and macOS, is missing)")
    crops = _crops(37)
    together = model.predict(crops, batch_size=64)
    for size in (1, 3, 17):
        apart = np.concatenate([model.predict(crops[i:i + size], batch_size=64) for i in range(0, 37, size)])
        np.testing.assert_allclose(apart, together, atol=1e-6)
    assert {n for n, _ in model._predict.interpreters} <= {1, 2, 4, 8, 16}


def test_the_jobs_one_model_thread_gives_the_answers_of_all_cores(model):
    need(isinstance(model._predict, _LitePredictor), "the shipped model runs without its TFLite twin here (LiteRT, "
         "a dependency on Linux and macOS, is missing)")
    crops = _crops(20, seed=1)
    np.testing.assert_allclose(model.predict(crops, threads=1), model.predict(crops, threads=2), atol=1e-6)
    faces = [Faces("a.jpg", boxes=np.zeros((20, 4), np.int32), crops=crops)]
    classify(faces, model, batch_size=64)
    np.testing.assert_allclose(faces[0].probs, model.predict(crops), atol=1e-6)
    assert {t for _, t in model._predict.interpreters} >= {1, 2}  # both thread counts were really used


def test_the_annotated_video_keeps_the_frames_colours_and_pads_odd_sides_black(tmp_path):
    """Frames reach ffmpeg as yuv420p converted by OpenCV (issue 38): colours as drawn, odd sides padded."""
    from batchemo.pipeline.ffmpeg import ffmpeg_exe
    from batchemo.report.encode import VideoSink

    need(ffmpeg_exe() is not None, "no ffmpeg binary (imageio-ffmpeg's, a dependency)")
    y, x = np.mgrid[0:75, 0:101]
    frame = np.dstack([x * 2, y * 3, 255 - x * 2]).astype(np.uint8)  # blue, green and red ramps
    with VideoSink(tmp_path / "v.mp4", 101, 75, 10) as sink:
        for _ in range(5):
            sink.write(frame)
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, back = cap.read()
    assert ok and back.shape == (76, 102, 3)
    assert np.abs(back[:75, :101].astype(int) - frame).mean() < 4  # not swapped channels, not another range
    grey = cv2.cvtColor(back, cv2.COLOR_BGR2GRAY)  # brightness: chroma is shared by 2x2 pixels, and bleeds
    assert grey[:, 101].mean() < 40 and grey[75].mean() < 40  # the padding is black
