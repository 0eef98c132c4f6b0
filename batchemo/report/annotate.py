"""Drawing the faces of a photo or frame (box and `emotion 0.93`, `#id` for tracks), and writing annotated
images."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .colours import bgr, class_colours, text_on
from ..pipeline.faces import Faces
from .atomic import write_atomic
from ..pipeline.files import IMAGE_EXTENSIONS

def _label_spot(box, size: tuple[int, int, int], img_w: int, img_h: int,
                taken: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Where a label's baseline starts (x, y): above its box, else inside the box's top, below it, or further
    up or down, the first spot clear of the labels already drawn (a crowd's neighbouring labels overlapped); the
    least covered spot when none is clear."""
    x, y, bw, bh = (int(v) for v in box)
    tw, th, base = size
    tx = min(max(0, x), max(0, img_w - tw))
    step = th + base + 2
    spots = [y - 4 - base, y + th + 2, y + bh + th + 4] + [y - 4 - base - k * step for k in (1, 2)] + \
        [y + bh + th + 4 + k * step for k in (1, 2)]
    spots = [ty for ty in spots if ty - th >= 0 and ty + base <= img_h] or [min(max(th, y + th + 2), img_h - base)]

    def covered(ty: int) -> int:
        r = (tx, ty - th - base, tx + tw, ty + base)
        return sum(max(0, min(r[2], o[2]) - max(r[0], o[0])) * max(0, min(r[3], o[3]) - max(r[1], o[1]))
                   for o in taken)

    ty = min(spots, key=lambda t: (covered(t) > 0, covered(t)))  # the first clear spot, else the least covered
    taken.append((tx, ty - th - base - 1, tx + tw, ty + base + 1))
    return tx, ty


def draw_faces(img: np.ndarray, boxes, labels: list[str], colours: list[str]) -> np.ndarray:
    """Draw in place a box per face in its class's colour (hex, `colours.class_colours`) and its label where it
    stays readable beside its neighbours' (`_label_spot`)."""
    h, w = img.shape[:2]
    scale = max(0.4, min(2.0, max(h, w) / 1000))
    thick = max(1, int(round(2 * scale)))
    for (x, y, bw, bh), hex_colour in zip(boxes, colours):
        cv2.rectangle(img, (int(x), int(y)), (int(x + bw), int(y + bh)), bgr(hex_colour), thick)
    taken: list[tuple[int, int, int, int]] = []
    for box, text, hex_colour in zip(boxes, labels, colours):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
        tx, ty = _label_spot(box, (tw, th, base), w, h, taken)
        cv2.rectangle(img, (tx, ty - th - base), (tx + tw, ty + base), bgr(hex_colour), -1)
        cv2.putText(img, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, text_on(hex_colour), thick,
                    cv2.LINE_AA)
    return img


def annotate(img: np.ndarray, faces: Faces, classes: list[str], with_ids: bool = False,
             scale: float = 1.0) -> np.ndarray:
    """Draw in place every face of `faces` with its label; `scale`: image pixels per reported pixel (a photo
    decoded at reduced size)."""
    boxes = faces.boxes if scale == 1 else np.round(faces.boxes * scale).astype(np.int32)
    shown = faces.labels(classes)
    texts = [label(e, c, int(t) if with_ids else None) for (e, c), t in zip(shown, faces.ids)]
    palette = class_colours(classes)
    return draw_faces(img, boxes, texts, [palette[e] for e, _ in shown])


def label(emotion: str, confidence: float, track: int | None = None) -> str:
    return (f"#{track} " if track is not None else "") + f"{emotion} {confidence:.2f}"


def write_image(img: np.ndarray, path: Path, params: list[int] | None = None) -> None:
    """Encode by the file's extension (unicode-safe: cv2.imwrite cannot take non-ASCII paths everywhere) with
    OpenCV's encoder `params`, and write atomically."""
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        ext = ".png"
    ok, buf = cv2.imencode(ext, img, params or [])
    if not ok:
        raise OSError(f"cannot encode {path.name} as {ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(buf.tobytes()))
