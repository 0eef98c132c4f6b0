"""batchemo: faces in photo folders and videos, their emotion classified in batches, reported as CSV.

Library API (the CLI is a thin layer over it)::

    import batchemo
    result = batchemo.analyze_folder("photos/", out="reports/photos", min_face=40)
    faces = result.table()                                # faces.csv: one row per face, typed columns
    videos = batchemo.analyze_videos("clips/", out="reports/clips", every=5)
    help(batchemo.VideoOptions)                           # every option: meaning, unit, default, range

Packages: `pipeline` holds the steps (input files, photos, videos, ffmpeg probing, detect, shots, looks, follow,
track, faces and classify, model, identity), `report` the outputs (the tables and read_report, atomic writing,
summaries, annotated media, plots, report.html, face crops), `jobs` the runs that schedule them (folder, video,
videos, ranges, Ray) with their resume journal and run records, `training` making and measuring models (the main
jobs never import it), `cli` the command line.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .report import read_report

try:
    __version__ = version("batchemo")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
del version, PackageNotFoundError

__all__ = ["analyze_folder", "analyze_video", "analyze_videos", "read_report", "FolderOptions", "VideoOptions",
           "DetectOptions", "FolderResult", "VideoResult", "VideoFailure", "OptionError", "EmotionModel", "Faces",
           "__version__"]

_LAZY = {  # TensorFlow-free, but OpenCV and the jobs take a moment to import: loaded when first used
    "analyze_folder": "jobs.folder", "analyze_video": "jobs.video", "analyze_videos": "jobs.videos",
    "FolderOptions": "jobs.options", "VideoOptions": "jobs.options", "DetectOptions": "pipeline.detect",
    "FolderResult": "jobs.folder", "VideoResult": "jobs.video", "VideoFailure": "jobs.videos",
    "OptionError": "knobs", "EmotionModel": "pipeline.model", "Faces": "pipeline.faces",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'batchemo' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    # The lazy names too, so that tab completion and help(batchemo) find the API before it is first used; the
    # subpackages for the steps underneath.
    return sorted(__all__ + ["cli", "jobs", "pipeline", "training"])
