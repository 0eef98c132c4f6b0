"""The model card: NAME.json (machine-readable) and NAME.md (for people) beside NAME.keras."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..pipeline.model import read_card
from ..report import write_atomic, write_json


def _inference_line(card: dict) -> str:
    inf = card.get("inference", {})
    flip = ("each face is classified with its mirror image and the two averaged" if inf.get("flip_average")
            else "one pass per face")
    line = f"- Inference: {flip} (`inference.flip_average`)"
    if "temperature" in inf:
        cal = card.get("calibration", {})
        line += (f"; probabilities tempered as softmax(log p / T) with T = {inf['temperature']:.3f} "
                 f"(`inference.temperature`"
                 + (f", fitted by `{cal['command']}` on {cal.get('data', '?')}" if cal.get("command") else "")
                 + ")")
    return line


def interval_text(ci) -> str:
    """' (95 % CI a-b)', or nothing for an entry recorded before intervals were or one with no images."""
    if not ci or not all(math.isfinite(v) for v in ci):
        return ""
    return f" (95 % CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f})"


def _evaluation_line(name: str, ev: dict) -> str:
    if "accuracy_mean" in ev:
        return (f"- {name}: {ev['folds']}-fold cross-validation by group ({ev['group_by']}): top-1 accuracy "
                f"{100 * ev['accuracy_mean']:.2f} ± {100 * ev['accuracy_std']:.2f} % (macro F1 "
                f"{ev['macro_f1_mean']:.3f}); command `{ev['command']}`")
    line = f"- {name}: top-1 accuracy {100 * ev['accuracy']:.2f} %{interval_text(ev.get('accuracy_ci'))}"
    if "ece" in ev:
        line += f" (ECE {100 * ev['ece']:.2f} %, NLL {ev['nll']:.3f})"
    line += " against the folder labels"
    if "crowd_accuracy" in ev:
        line += (f", {100 * ev['crowd_accuracy']:.2f} %{interval_text(ev.get('crowd_accuracy_ci'))} against the crowd "
                 f"majority (ECE {100 * ev['crowd_ece']:.2f} %, "
                 f"NLL {ev['crowd_nll']:.3f}, {ev['crowd_images']} images with a unique majority)")
    line += (f", macro F1 {ev['macro_f1']:.3f} on {ev['images']} images, {ev['faces_per_second']:.0f} faces/s"
             + (f", temperature {ev['temperature']:.3f}" if "temperature" in ev else "")
             + f"; command `{ev['command']}`")
    return line


def write_card(model_path: Path, card: dict) -> None:
    """NAME.json and NAME.md beside NAME.keras, each written atomically."""
    model_path = Path(model_path)
    write_json(card, model_path.with_suffix(".json"))
    v = card.get("validation", {})
    lines = [
        f"# Model card: {model_path.name}",
        "",
        f"- Classes, in output order: {', '.join(card['classes'])}",
        f"- Input: {card['input']['image_size']}x{card['input']['image_size']} grey crops, uint8 values 0..255 "
        f"({card['input']['preprocessing']})",
        f"- Network: Keras MobileNet alpha {card['alpha']} at {card['size']} px; base weights: {card['base_weights']}",
        f"- Training data: `{card['data']['train_dir']}` ({card['data']['train_images']} images"
        + (f", targets: {card['data']['targets']} from `{card['data']['votes']}`" if card['data'].get('votes') else "")
        + f"); validation: {card['data']['split']} ({card['data']['val_images']} images)",
        f"- Command: `{card['command']}`",
        f"- Epochs run: {card['epochs_run']}; training time {card['training_seconds'] / 60:.1f} min",
        _inference_line(card),
        *([f"- Distilled from {', '.join(card['options']['teachers'])} (targets "
           f"{card['options']['distill']} x their mean prediction + the rest on the label)"]
          if card.get("options", {}).get("teachers") else []),
        f"- Validation top-1 accuracy: {100 * v.get('accuracy', float('nan')):.2f} % "
        f"(loss {v.get('loss', float('nan')):.4f})",
    ]
    cal = card.get("calibration")
    if cal:
        lines.append(f"- Calibration ({cal.get('target', '')}) on {cal.get('data', '?')} "
                     f"({cal.get('images', '?')} images): "
                     f"NLL {cal['nll_before']:.3f} -> {cal['nll_after']:.3f}, ECE {100 * cal['ece_before']:.2f} % -> "
                     f"{100 * cal['ece_after']:.2f} %")
    for name, ev in card.get("evaluation", {}).items():
        lines.append(_evaluation_line(name, ev))
    for extra in card.get("notes", []):
        lines.append(f"- {extra}")
    write_atomic(model_path.with_suffix(".md"), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def record_in_card(model_path: Path, name: str, figures: dict) -> None:
    """Add measured figures to a model card (evaluation.NAME) and re-render its .md."""
    card = read_card(Path(model_path))
    card.setdefault("evaluation", {})[name] = figures
    write_card(Path(model_path), card)


def set_temperature(model_path: Path, temperature: float, calibration: dict) -> None:
    """Store a fitted temperature (`inference.temperature`) and how it was fitted (`calibration`) in the card."""
    card = read_card(Path(model_path))
    card.setdefault("inference", {})["temperature"] = float(temperature)
    card["calibration"] = json.loads(json.dumps(calibration))
    write_card(Path(model_path), card)
