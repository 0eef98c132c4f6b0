"""Emotion class names and the aliases that let models and data sets trained under different names meet."""
from __future__ import annotations

# Data sets disagree on names (FER2013 says "angry", CK+ says "anger"); every name is mapped to one canonical
# spelling before models and data are compared. Documented in README ("Class names").
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
