"""batchemo: faces in photo folders and videos, their emotion classified in batches, reported as CSV.

Library API (the CLI is a thin layer over it)::

    import batchemo
    result = batchemo.analyze_folder("photos/", out="reports/photos")
    faces = batchemo.read_report("reports/photos")        # one row per face, typed columns
"""
from __future__ import annotations

from .pipeline.report import read_report

__all__ = ["analyze_folder", "analyze_video", "read_report", "FolderOptions", "VideoOptions", "DetectOptions",
           "EmotionModel"]


def __getattr__(name: str):
    # TensorFlow takes seconds to import: load the pipeline modules only when they are used.
    if name in ("analyze_folder", "FolderOptions"):
        from .jobs import folder

        return getattr(folder, name)
    if name in ("analyze_video", "VideoOptions"):
        from .jobs import video

        return getattr(video, name)
    if name == "DetectOptions":
        from .pipeline.detect import DetectOptions

        return DetectOptions
    if name == "EmotionModel":
        from .pipeline.model import EmotionModel

        return EmotionModel
    raise AttributeError(name)
