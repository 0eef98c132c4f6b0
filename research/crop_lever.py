"""What the folder and video jobs feed the model, measured: FER2013 crops re-found by the jobs' Haar detector.

The model learns from FER2013's 48x48 crops, but the jobs classify whatever box Haar draws on a real photo. Each
fer2013/val image is placed on a grey canvas, enlarged 4x (so Haar sees a face of about 190 px among
surroundings), detected with the jobs' default settings, and its largest box is cropped the ways compared
below; accuracy is against the FER+ crowd majority, on the images where Haar found a face, beside the
accuracy of the dataset's own crops on the same images.

    python research/crop_lever.py [MODEL] [--limit N]   # needs ../shared/datasets (fer2013/val, ferplus/val.csv)

Variants: `box` (the Haar box as the jobs crop it today), `margin M` (the box grown by M x its side on each
side; negative: shrunk), `level` (the crop rotated about the box centre so the two eyes found by OpenCV's eye
cascade are level).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batchemo.report.crops import cut  # noqa: E402
from batchemo.pipeline.detect import EYE_FILE, DetectOptions, cascade, detect_faces  # noqa: E402
from batchemo.pipeline.model import EmotionModel, crop_faces  # noqa: E402
from batchemo.training.votes import majority, read_votes  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
MARGINS = (-0.1, -0.05, 0.1)  # share of the box side added on each side (negative: tighter)
ENLARGE, PAD = 4, 24  # canvas: the 48 px crop with 24 px of grey around it, then 4x


def canvas(face: np.ndarray) -> np.ndarray:
    img = cv2.copyMakeBorder(face, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=128)
    return cv2.resize(img, None, fx=ENLARGE, fy=ENLARGE, interpolation=cv2.INTER_LINEAR)


def eye_angle(grey: np.ndarray, box) -> float | None:
    """Degrees to rotate so the two eyes found in the top half of the box are level (None: not two eyes)."""
    x, y, w, h = box
    roi = grey[y:y + h // 2, x:x + w]
    eyes = cascade(EYE_FILE).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(w // 8, w // 8))
    if len(eyes) < 2:
        return None
    eyes = sorted(eyes, key=lambda e: e[2] * e[3], reverse=True)[:2]
    (ax, ay), (bx, by) = sorted((ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in eyes)
    if bx - ax < w / 5:
        return None
    angle = math.degrees(math.atan2(by - ay, bx - ax))
    return angle if abs(angle) <= 25 else None


def level_crop(grey: np.ndarray, box, size: int) -> np.ndarray:
    angle = eye_angle(grey, box)
    if angle is None:
        return crop_faces(grey, np.array([box]), size)[0]
    x, y, w, h = box
    rot = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, 1.0)
    turned = cv2.warpAffine(grey, rot, (grey.shape[1], grey.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return crop_faces(turned, np.array([box]), size)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(ROOT / "models" / "emotion.keras"))
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    args = ap.parse_args()
    votes = read_votes(SHARED / "ferplus" / "val.csv", SHARED / "fer2013" / "val")
    model = EmotionModel.load(args.model)
    if votes.classes != model.classes:
        raise SystemExit(f"error: vote classes {votes.classes} differ from the model's {model.classes}")
    files = votes.paths[::max(1, len(votes.paths) // args.limit)][:args.limit] if args.limit else votes.paths
    counts = dict(zip(votes.paths, votes.counts))
    keys, crops = [], {k: [] for k in ("dataset", "box", *(f"margin {m:+.2f}" for m in MARGINS), "level")}
    for f in files:
        face = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
        big = canvas(face)
        boxes = detect_faces(big, DetectOptions())
        if len(boxes) == 0:
            continue
        box = max(boxes, key=lambda b: b[2] * b[3])
        keys.append(f)
        crops["dataset"].append(crop_faces(face, np.array([[0, 0, 48, 48]]), model.image_size)[0])
        crops["box"].append(crop_faces(big, np.array([box]), model.image_size)[0])
        for m in MARGINS:
            part = cut(big, box, margin=m)  # the crop the thumbnails and --save-faces use, with a margin
            crops[f"margin {m:+.2f}"].append(crop_faces(part, np.array([[0, 0, part.shape[1], part.shape[0]]]),
                                                        model.image_size)[0])
        crops["level"].append(level_crop(big, box, model.image_size))
    found = len(keys)
    truth = majority(np.stack([counts[k] for k in keys]))
    ok = truth >= 0
    print(f"{len(files)} images, Haar found a face on {found} ({100 * found / max(1, len(files)):.1f} %); "
          f"{ok.sum()} of them with a unique crowd majority")
    for name, batch in crops.items():
        pred = model.predict(np.stack(batch)).argmax(1)
        print(f"  {name:<11} accuracy vs crowd majority {100 * np.mean(pred[ok] == truth[ok]):6.2f} %")


if __name__ == "__main__":
    main()
