"""Shared fixtures and helpers: the sample tree, the shipped model, where ../shared is (optional), what a test
needs that may be missing (skipped here, failed in CI), the videos tests make, and the benchmark scripts a test
scores with."""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED = Path(os.environ.get("BATCHEMO_SHARED", ROOT.parent / "shared"))

# Faces the Haar defaults find in each sample photo (checked by eye on the annotated copies).
SAMPLE_FACES = {
    "astronaut.png": 1,
    "group/three_faces.jpg": 3,
    "no face/rocket.jpg": 0,
    "variants/astronaut_grey.jpg": 1,
    "variants/astronaut_mirrored.jpg": 1,
    "variants/astronaut_small.jpg": 1,
}


# CI has everything the suite needs (../shared, Chromium, the Ray extra): there, a missing one is a broken set-up,
# and a skip would let the tests that need it pass unseen.
IN_CI = bool(os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip the calling test (or fixture) unless `condition`, saying `reason`; fail instead where the CI variable
    is set."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason}; CI is set, so this fails rather than skips", pytrace=False)
    pytest.skip(reason)


def need_people() -> None:
    """dlib and its face models (the people extra), for every test that describes faces (`need`: a skip here, a
    failure in CI, which installs the extra)."""
    from batchemo.pipeline import identity

    try:
        identity.require_people()
    except identity.PeopleUnavailable:
        need(False, f"needs the people extra (dlib and its models: {identity.INSTALL_HINT})")


def needs_shared(*parts: str):
    """Decorator: the test needs ../shared/<parts>, data that lives beside the project (`need`: skipped where it is
    absent, failed in CI)."""
    path = SHARED.joinpath(*parts)

    def wrap(test):
        @functools.wraps(test)  # keeps the signature, so pytest still passes the test its fixtures
        def run(*args, **kwargs):
            need(path.exists(), f"needs {path} (../shared data)")
            return test(*args, **kwargs)
        return run
    return wrap


@pytest.fixture(scope="session")
def model():
    from batchemo.pipeline.model import EmotionModel

    return EmotionModel.load()


@pytest.fixture()
def sample_tree(tmp_path) -> Path:
    """A private copy of samples/images (tests may add bad files to it)."""
    dst = tmp_path / "photos"
    shutil.copytree(SAMPLES / "images", dst)
    return dst


@pytest.fixture(scope="session")
def face_bgr() -> np.ndarray:
    img = cv2.imread(str(SAMPLES / "images" / "astronaut.png"))
    return img[20:260, 100:300].copy()


@pytest.fixture(scope="session")
def two_face_clip(tmp_path_factory, face_bgr) -> Path:
    """Two faces sliding past each other for 2 s (20 frames at 10 fps), MJPG: the short clip the report tests share."""
    path = tmp_path_factory.mktemp("clip") / "two.avi"
    moving_faces_video(path, face_bgr, 20, 10.0)
    return path


def moving_faces_video(path: Path, face: np.ndarray, frames: int = 30, fps: float = 10.0,
                       size: tuple[int, int] = (480, 320), fourcc: str = "MJPG") -> None:
    """Two faces sliding across a canvas in opposite directions (2 tracks, `frames` frames)."""
    w, h = size
    small = cv2.resize(face, (100, 120), interpolation=cv2.INTER_AREA)
    mirrored = np.ascontiguousarray(small[:, ::-1])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        canvas = np.full((h, w, 3), 160, np.uint8)
        x1 = 10 + int(100 * i / frames)
        x2 = w - 120 - int(100 * i / frames)
        canvas[20:140, x1:x1 + 100] = small
        canvas[h - 130:h - 10, x2:x2 + 100] = mirrored
        writer.write(canvas)
    writer.release()


VFR_FPS, VFR_GAP_AFTER, VFR_GAP_S = 24, 20, 0.5


def variable_rate_video(folder: Path, face: np.ndarray) -> Path:
    """folder/phone.mp4: 96 frames of `moving_faces_video` at 24 fps with a 0.5 s pause after frame 20, kept as
    it is (variable frame rate), as a phone that drops its rate in low light writes them; H.264 with a keyframe
    every 12 frames, so that seeks land on one."""
    from batchemo.pipeline.ffmpeg import ffmpeg_exe

    src, out = folder / "src.avi", folder / "phone.mp4"
    moving_faces_video(src, face, frames=96, fps=VFR_FPS)
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-vf",
                    f"settb=1/1000,setpts=(N/{VFR_FPS}+gt(N\\,{VFR_GAP_AFTER})*{VFR_GAP_S})/TB",
                    "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-g", "12",
                    "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def blank_video(path: Path, frames: int = 8) -> Path:
    """A grey 160x120 MJPG video with no face in it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(frames):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    return path


def video_tree(tree: Path, clip: Path, videos: tuple[str, ...] = ("day1/p01.avi", "day2/p01.avi")) -> Path:
    """Lab recordings: `clip` copied to each of `videos` (paths under `tree`; by default the same participant
    file name in two session folders) and day2/broken.avi, a file that is no video."""
    for rel in videos:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, tree / rel)
    (tree / "day2").mkdir(parents=True, exist_ok=True)
    (tree / "day2" / "broken.avi").write_bytes(b"not a video at all")
    return tree


def benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module (benchmarks/ holds scripts, not a package), so a test scores with the
    benchmark's own functions and the two cannot drift apart."""
    key = f"benchmarks.{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
