"""One colour per emotion class for every picture batchemo draws: annotated photos and videos, timeline.png and
report.html, so that a class looks the same wherever a reader meets it."""
from __future__ import annotations

# RGB hex. Chosen apart in hue and light enough that a label's text stays readable on them.
CLASS_COLOURS = {
    "angry": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "happy": "#ffbf00", "neutral": "#a0a0a0",
    "sad": "#1f77b4", "surprise": "#ff7f0e", "contempt": "#8c564b",
}
_EXTRA = ["#17becf", "#e377c2", "#bcbd22", "#aec7e8", "#98df8a", "#ff9896"]  # classes of a user's own model


def class_colours(classes: list[str]) -> dict[str, str]:
    """Hex colour of each of a model's classes: the table's, else the next unused extra, in the model's class
    order, so every picture of one model gives a class the same colour."""
    taken = set(CLASS_COLOURS.values())
    spare = iter([c for c in _EXTRA if c not in taken] * (1 + len(classes) // len(_EXTRA)))
    return {c: CLASS_COLOURS.get(c) or next(spare) for c in classes}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def bgr(hex_colour: str) -> tuple[int, int, int]:
    """For OpenCV's drawing calls."""
    r, g, b = rgb(hex_colour)
    return b, g, r


def text_on(hex_colour: str) -> tuple[int, int, int]:
    """Black or white (BGR), whichever reads better on the colour (WCAG relative luminance)."""
    def lin(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = rgb(hex_colour)
    lum = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    # Contrast with black (lum + 0.05) / 0.05 against white 1.05 / (lum + 0.05): equal at lum 0.179.
    return (0, 0, 0) if lum > 0.179 else (255, 255, 255)
