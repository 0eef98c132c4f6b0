"""Drawing the faces of a photo or frame (box and `emotion 0.93`, `#id` for tracks), and writing annotated
images."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .faces import Faces
from .report import write_atomic

# One colour per emotion (BGR), so a glance at an annotated frame tells the emotions apart.
COLOURS = {
    "angry": (40, 40, 230), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (0, 200, 255),
    "neutral": (200, 200, 200), "sad": (200, 120, 30), "surprise": (0, 140, 255), "contempt": (120, 120, 0),
}


def colour(emotion: str) -> tuple[int, int, int]:
    return COLOURS.get(emotion, (255, 255, 0))


def draw_faces(img: np.ndarray, boxes, labels: list[str], emotions: list[str]) -> np.ndarray:
    """Draw in place a box per face and its label above it (below, when there is no room above)."""
    h, w = img.shape[:2]
    scale = max(0.4, min(2.0, max(h, w) / 1000))
    thick = max(1, int(round(2 * scale)))
    for (x, y, bw, bh), text, emo in zip(boxes, labels, emotions):
        c = colour(emo)
        cv2.rectangle(img, (int(x), int(y)), (int(x + bw), int(y + bh)), c, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
        ty = int(y) - 4 if y - th - base - 4 >= 0 else int(y + bh) + th + 4
        tx = int(min(max(0, x), max(0, w - tw)))
        cv2.rectangle(img, (tx, ty - th - base), (tx + tw, ty + base), c, -1)
        cv2.putText(img, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), thick, cv2.LINE_AA)
    return img


def annotate(img: np.ndarray, faces: Faces, classes: list[str], with_ids: bool = False,
             scale: float = 1.0) -> np.ndarray:
    """Draw in place every face of `faces` with its label; `scale`: image pixels per reported pixel (a photo
    decoded at reduced size)."""
    boxes = faces.boxes if scale == 1 else np.round(faces.boxes * scale).astype(np.int32)
    shown = faces.labels(classes)
    texts = [label(e, c, int(t) if with_ids else None) for (e, c), t in zip(shown, faces.ids)]
    return draw_faces(img, boxes, texts, [e for e, _ in shown])


def label(emotion: str, confidence: float, track: int | None = None) -> str:
    return (f"#{track} " if track is not None else "") + f"{emotion} {confidence:.2f}"


def write_image(img: np.ndarray, path: Path, params: list[int] | None = None) -> None:
    """Encode by the file's extension (unicode-safe: cv2.imwrite cannot take non-ASCII paths everywhere) with
    OpenCV's encoder `params`, and write atomically."""
    ext = path.suffix.lower()
    if ext not in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}:
        ext = ".png"
    ok, buf = cv2.imencode(ext, img, params or [])
    if not ok:
        raise OSError(f"cannot encode {path.name} as {ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(buf.tobytes()))
