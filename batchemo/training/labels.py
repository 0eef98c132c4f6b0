"""Emotion class names and the aliases that let models and data sets trained under different names meet."""
from __future__ import annotations

# Data sets disagree on names (FER2013 says "angry", CK+ says "anger"); every name is mapped to one canonical
# spelling before models and data are compared. Documented in docs/how-it-works.md ("Class names").
ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "neutral": "neutral",
    "calm": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "contempt": "contempt",
}


def canonical(name: str) -> str:
    """The canonical spelling of a class name; unknown names pass through lower-cased."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def match_classes(model_classes: list[str], data_classes: list[str]) -> tuple[dict[int, int], list[str], list[str]]:
    """(data label -> model output index, data classes the model lacks, model classes the data lacks)."""
    index = {canonical(c): i for i, c in enumerate(model_classes)}
    mapping, lacking = {}, []
    for j, c in enumerate(data_classes):
        if canonical(c) in index:
            mapping[j] = index[canonical(c)]
        else:
            lacking.append(c)
    present = {canonical(c) for c in data_classes}
    unused = [c for c in model_classes if canonical(c) not in present]
    return mapping, lacking, unused
