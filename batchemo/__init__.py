"""batchemo: faces in photo folders and videos, their emotion classified in batches, reported as CSV.

Library API (the CLI is a thin layer over it)::

    import batchemo
    result = batchemo.analyze_folder("photos/", out="reports/photos")
    faces = batchemo.read_report("reports/photos")        # one row per face, typed columns
    videos = batchemo.analyze_videos(["clips/"], out="reports/clips")

Packages: `pipeline` holds the steps (sources, detect, faces and classify, model, track, annotate, encode,
report, plots), `jobs` the runs that schedule them (folder, video, videos, ranges, Ray), `training` making and
measuring models (the main jobs never import it), `cli` the command line.
"""
from __future__ import annotations

from .pipeline.report import read_report

__all__ = ["analyze_folder", "analyze_video", "analyze_videos", "read_report", "FolderOptions", "VideoOptions",
           "DetectOptions", "EmotionModel", "Faces"]

_LAZY = {  # TensorFlow-free, but OpenCV and the jobs take a moment to import: loaded when first used
    "analyze_folder": "jobs.folder", "analyze_video": "jobs.video", "analyze_videos": "jobs.videos",
    "FolderOptions": "jobs.options", "VideoOptions": "jobs.options", "DetectOptions": "pipeline.detect",
    "EmotionModel": "pipeline.model", "Faces": "pipeline.faces",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
