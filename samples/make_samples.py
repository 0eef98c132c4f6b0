"""Regenerate the sample photos and video from public-domain images shipped in scikit-image's wheel.

    pip install scikit-image && python samples/make_samples.py

Provenance is in samples/README.md. Nothing here comes from outside the project's own sources.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def face_crop(astronaut: np.ndarray) -> np.ndarray:
    # Eileen Collins's head and shoulders in the 512x512 astronaut picture.
    return astronaut[20:260, 100:300]


def group_photo(astronaut: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Three copies of the face at different sizes (one mirrored) on a plain backdrop."""
    canvas = np.full((480, 900, 3), (180, 170, 160), np.uint8)
    face = face_crop(astronaut)
    for (x, y), scale, flip in [((40, 80), 1.0, False), ((330, 150), 0.8, True), ((620, 60), 1.1, False)]:
        f = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if flip:
            f = f[:, ::-1]
        h, w = f.shape[:2]
        canvas[y:y + h, x:x + w] = f
    return canvas


def moving_video(face: np.ndarray, path: Path, frames: int = 90, fps: float = 15.0) -> None:
    """Two faces sliding across a canvas: a known number of faces (2) and frames for the video job."""
    w, h = 640, 360
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    small = cv2.resize(face, (120, 144), interpolation=cv2.INTER_AREA)
    mirrored = small[:, ::-1].copy()
    for i in range(frames):
        canvas = np.full((h, w, 3), (170, 160, 150), np.uint8)
        x1 = 20 + int(180 * i / frames)
        x2 = 480 - int(120 * i / frames)
        canvas[40:184, x1:x1 + 120] = small
        canvas[180:324, x2:x2 + 120] = mirrored
        writer.write(canvas)
    writer.release()


def main() -> None:
    from skimage import data

    astronaut = _bgr(data.astronaut())
    camera = data.camera()
    rocket = _bgr(data.rocket())
    images = HERE / "images"
    (images / "variants").mkdir(parents=True, exist_ok=True)
    (images / "group").mkdir(parents=True, exist_ok=True)
    (images / "no face").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(images / "astronaut.png"), astronaut)
    cv2.imwrite(str(images / "variants" / "astronaut_grey.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(images / "variants" / "astronaut_mirrored.jpg"), astronaut[:, ::-1])
    cv2.imwrite(str(images / "variants" / "astronaut_small.jpg"),
                cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(images / "group" / "three_faces.jpg"), group_photo(astronaut, camera))
    cv2.imwrite(str(images / "no face" / "rocket.jpg"), rocket)
    (HERE / "video").mkdir(exist_ok=True)
    moving_video(face_crop(astronaut), HERE / "video" / "two_faces.mp4")


if __name__ == "__main__":
    main()
