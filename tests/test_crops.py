"""Face crops (batchemo.report.crops): `video_images` hands back exactly the frames asked for, whether the
container seeks exactly, lands elsewhere or does not seek at all; with --save-faces and report.html, the saved crops
and the page's thumbnails come from one decoding pass."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import batchemo
from batchemo.jobs.options import FolderOptions, VideoOptions
from batchemo.report import crops as C
from batchemo.pipeline.photo import read_photo

from .conftest import SAMPLES

BITS = 9  # frame numbers up to 511, drawn as black/white blocks (survive lossy coding, unlike grey levels)
N_FRAMES = 250
SIZE = (180, 96)


def paint(i: int) -> np.ndarray:
    """A frame that shows its own number: bit b of `i` is block b of the lower half, white for 1."""
    w, h = SIZE
    img = np.full((h, w, 3), 128, np.uint8)
    for b in range(BITS):
        img[h // 2:, b * w // BITS:(b + 1) * w // BITS] = 255 if (i >> b) & 1 else 0
    return img


def number(img: np.ndarray) -> int:
    """The number a `paint`ed frame shows (block centres only, away from coding artefacts at the edges)."""
    h, w = img.shape[:2]
    return sum(1 << b for b in range(BITS)
               if img[h // 2 + 8:h - 8, b * w // BITS + 4:(b + 1) * w // BITS - 4].mean() > 128)


@pytest.fixture(scope="module", params=[("MJPG", "avi"), ("mp4v", "mp4")], ids=["mjpg-avi", "mp4v-mp4"])
def numbered_video(request, tmp_path_factory) -> Path:
    fourcc, ext = request.param
    path = tmp_path_factory.mktemp("numbered") / f"numbers.{ext}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, SIZE)
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(paint(i))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    seen = []
    while (got := cap.read())[0]:
        seen.append(number(got[1]))
    cap.release()
    assert seen == list(range(N_FRAMES))  # the drawing reads back through the codec
    return path


# Unsorted, with duplicates, short gaps (read through) and gaps over SEEK_GAP (seeked), none on a multiple of 10.
WANTED = [241, 7, 3, 3, 123, 242, 7, 5, 249, 123]


def frames_of(path: Path, wanted) -> list[tuple[int, int]]:
    """(index given, number the image shows) for each frame video_images hands back."""
    return [(f, number(img)) for f, img in C.video_images(path, wanted)]


def test_video_images_are_exactly_the_frames_asked_for(numbered_video):
    assert max(b - a for a, b in zip(sorted(set(WANTED)), sorted(set(WANTED))[1:])) > C.SEEK_GAP
    want = sorted(set(WANTED))
    assert frames_of(numbered_video, WANTED) == [(f, f) for f in want]  # increasing, each frame once
    assert frames_of(numbered_video, iter(WANTED)) == [(f, f) for f in want]  # any iterable
    assert frames_of(numbered_video, range(0, N_FRAMES, 3)) == [(f, f) for f in range(0, N_FRAMES, 3)]


class _Capture:
    """A real capture whose frame seeks go where `land(asked)` says (None: nowhere), its position saying so."""

    real = cv2.VideoCapture
    seeks = 0

    def __init__(self, path, land):
        self.cap, self.land = self.real(path), land

    def set(self, prop, value):
        if prop != cv2.CAP_PROP_POS_FRAMES:
            return self.cap.set(prop, value)
        _Capture.seeks += 1
        to = self.land(int(value))
        return self.cap.set(prop, to) if to is not None else False

    def __getattr__(self, name):
        return getattr(self.cap, name)


@pytest.mark.parametrize("land", [lambda asked: asked // 10 * 10, lambda asked: None],
                         ids=["lands-on-earlier-keyframe", "seek-does-nothing"])
def test_video_images_read_forward_where_seeking_lands_elsewhere(numbered_video, monkeypatch, land):
    _Capture.seeks = 0
    monkeypatch.setattr(C.cv2, "VideoCapture", lambda path: _Capture(path, land))
    assert frames_of(numbered_video, WANTED) == [(f, f) for f in sorted(set(WANTED))]
    assert _Capture.seeks == 1  # the first wrong landing is the last seek: from there on it reads forward


def test_video_images_leave_out_frames_that_cannot_be_read(numbered_video):
    # Past the end (by a seek, and by reading on from the last frame) and before the start: left out, the rest kept.
    assert frames_of(numbered_video, [N_FRAMES + 200, 10, N_FRAMES, -1, N_FRAMES - 1]) == [(10, 10),
                                                                                          (N_FRAMES - 1, N_FRAMES - 1)]
    assert frames_of(numbered_video, []) == []
    assert frames_of(numbered_video.with_name("missing.mp4"), [1, 2]) == []


def test_video_images_stop_at_the_end_of_the_stream_without_reading_it_again(numbered_video, monkeypatch):
    opened = []
    monkeypatch.setattr(C.cv2, "VideoCapture", lambda path: opened.append(path) or _Capture(path, lambda asked: asked))
    # The frame after the last one fails while reading on: the stream has ended, so the frame past it is not sought
    # (a seek past the end lands elsewhere, which would mean reading the whole video again from the start).
    assert frames_of(numbered_video, [N_FRAMES - 1, N_FRAMES, N_FRAMES + 200]) == [(N_FRAMES - 1, N_FRAMES - 1)]
    assert len(opened) == 1


def _cut_as_written(image: np.ndarray, r: pd.Series, margin: float) -> np.ndarray:
    """The row's box cut from `image` as it reads back from its file: a saved crop (PNG, no margin) or a thumbnail
    (the page's margin, shrunk, through the same JPEG coding)."""
    want = C.cut(image, (r["x"], r["y"], r["w"], r["h"]), margin=margin)
    if not margin:
        return want
    return cv2.imdecode(cv2.imencode(".jpg", C.thumbnail(want), [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)


def _same(path: Path, want: np.ndarray) -> bool:
    got = cv2.imread(str(path))
    return got.shape == want.shape and np.array_equal(got, want)


def test_photo_crops_and_thumbnails_share_one_decode(tmp_path, model, monkeypatch):
    src = tmp_path / "photos"
    shutil.copytree(SAMPLES / "images", src)
    decoded = Counter()
    monkeypatch.setattr(C, "read_photo",
                        lambda path, *a, **k: decoded.update([Path(path)]) or read_photo(path, *a, **k))
    out = tmp_path / "report"
    batchemo.analyze_folder(src, out=out, model=model, options=FolderOptions(save_faces=True), progress=False,
                            log=lambda m: None)
    faces = batchemo.read_report(out / "faces.csv")
    with_faces = {src / s for s in faces["source"].unique()}
    assert len(with_faces) >= 3 and set(decoded) == with_faces and set(decoded.values()) == {1}
    index = pd.read_csv(out / "faces" / "index.csv")
    assert len(index) == len(faces) and len(list((out / "thumbs").glob("*.jpg"))) == len(faces)
    photos = {s: read_photo(src / s)[0] for s in faces["source"].unique()}  # the samples: no reduced decode
    files = dict(zip(zip(index["source"], index["face"]), index["file"]))
    for label, r in faces.iterrows():  # both to the pixel, from the one decode
        assert _same(out / "faces" / files[r["source"], r["face"]], _cut_as_written(photos[r["source"]], r, 0))
        assert _same(out / "thumbs" / f"{label}.jpg", _cut_as_written(photos[r["source"]], r, 0.15))

    decoded.clear()  # without --save-faces the page still gets its thumbnails, the photos decoded once for them
    batchemo.analyze_folder(src, out=tmp_path / "plain", model=model, progress=False, log=lambda m: None)
    assert set(decoded) == with_faces and set(decoded.values()) == {1}
    assert len(list((tmp_path / "plain" / "thumbs").glob("*.jpg"))) == len(faces)
    assert not (tmp_path / "plain" / "faces").exists()


def test_video_crops_and_thumbnails_share_one_decode(tmp_path, model, monkeypatch):
    video = SAMPLES / "video" / "two_faces.mp4"
    passes = []
    video_images = C.video_images
    monkeypatch.setattr(C, "video_images", lambda p, frames: passes.append(set(frames)) or video_images(p, frames))
    out = tmp_path / "report"
    batchemo.analyze_video(video, out=out, model=model, options=VideoOptions(save_faces=True), progress=False)
    frames = batchemo.read_report(out / "frames.csv")
    summary = batchemo.read_report(out / "summary.csv")
    tracks = summary.loc[summary["scope"] == "track", "face"].astype(int).tolist()
    index = pd.read_csv(out / "faces" / "index.csv")
    assert len(passes) == 1 and passes[0] == set(index["frame"])  # one pass; the thumbnails' frames among the saved
    assert len(tracks) == 2 and sorted(p.name for p in (out / "thumbs").iterdir()) == [f"track{t}.jpg" for t in tracks]

    cap, images = cv2.VideoCapture(str(video)), {}  # every frame, read from the start: the frames' own numbering
    while (got := cap.read())[0]:
        images[len(images)] = got[1]
    cap.release()
    saved = index.merge(frames, on=["frame", "face"], suffixes=("", "_row"), validate="1:1")
    for _, r in saved.iterrows():  # each crop cut from its own frame, to the pixel
        assert _same(out / "faces" / r["file"], _cut_as_written(images[r["frame"]], r, 0)), r["file"]
    for t in tracks:  # the most confident row (the CSV's 6 digits may tie it with others: one of those)
        part = frames[frames["face"] == t]
        best = part[part["confidence"] >= part["confidence"].max() - 1e-6]
        assert any(_same(out / "thumbs" / f"track{t}.jpg", _cut_as_written(images[r["frame"]], r, 0.15))
                   for _, r in best.iterrows())
