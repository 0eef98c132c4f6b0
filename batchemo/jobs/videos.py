"""`batchemo video` for a batch: video files and folders of videos in, one report folder per video out, run
here one after another or on Ray; one video's failure is reported with it and never stops the others."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..pipeline.model import EmotionModel, default_model_path
from ..pipeline.sources import VIDEO_EXTENSIONS, BadInput, walk
from .options import VideoOptions
from .runtime import OutputConflict
from .video import VideoResult, analyze_video, default_out


@dataclass
class VideoFailure:
    source: Path
    out: Path
    error: str  # one line
    usage: bool = False  # the user's to fix (an --out that holds another input's report), not the file's


@dataclass(frozen=True)
class VideoInput:
    path: Path
    source: str  # the `source` column: the file's name, or its path under the folder given (forward slashes)
    folder: Path | None = None  # the folder it was found in, walked


def expand_inputs(inputs: list[str | Path]) -> list[VideoInput]:
    """Video files as given, folders walked for videos (sorted); ValueError for a folder with none."""
    videos: list[VideoInput] = []
    for p in map(Path, inputs):
        if p.is_dir():
            found = walk(p, VIDEO_EXTENSIONS)[0]
            if not found:
                raise ValueError(f"{p}: no videos found ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            videos += [VideoInput(s.path, s.rel, p) for s in found]
        else:
            videos.append(VideoInput(p, p.name))
    return videos


def output_dirs(videos: list[VideoInput], out: Path | None) -> list[Path]:
    """OUT for one video file; for several, OUT/<stem>, and a folder's tree mirrored under OUT (OUT/day1/p01 for
    day1/p01.mp4: lab recordings repeat names across session folders). Without OUT: reports/<stem>, or
    reports/<folder>/<tree> for a folder."""
    def mirrored(v: VideoInput) -> Path:
        return Path(v.source).with_suffix("")

    if out is None:
        return [Path("reports") / (v.folder.resolve().name or "root") / mirrored(v) if v.folder else default_out(v.path)
                for v in videos]
    if len(videos) == 1 and videos[0].folder is None:
        return [Path(out)]
    return [Path(out) / (mirrored(v) if v.folder else v.path.stem) for v in videos]


def _failure(path: Path, out: Path, e: Exception) -> VideoFailure:
    # A path that is not there, or an --out holding another input's report, is the command's mistake (exit 2).
    return VideoFailure(path, out, str(e), usage=isinstance(e, OutputConflict) or not Path(path).exists())


def _write_index(videos: list[VideoInput], outs: list[Path], out: Path | None, results: list,
                 command: str | None) -> None:
    """OUT/index.html of a batch (several videos): each video's page with its one-line summary."""
    from ..pipeline.html import write_index_page

    index_dir = Path(out) if out else Path(os.path.commonpath([str(o.resolve().parent) for o in outs]))
    items = [{"source": v.source, "out": o, "status": getattr(r, "status", "failed"),
              "error": getattr(r, "error", None) or getattr(r, "note", "")} for v, o, r in zip(videos, outs, results)]
    write_index_page(index_dir, items, command)


def _outcomes(videos: list[VideoInput], outs: list[Path], model, opts: VideoOptions, progress: bool,
              command: str | None, ray: str | None) -> Iterator[VideoResult | VideoFailure]:
    """Each video's result or failure, in input order, run here one after another or on Ray."""
    if ray is not None:
        from .ray_runner import ray_videos

        model_path = model.path if isinstance(model, EmotionModel) else Path(model or default_model_path())
        if not model_path.exists():
            raise FileNotFoundError(f"{model_path}: model file not found")
        paths = [v.path for v in videos]
        for v, o, r in zip(videos, outs, ray_videos(paths, outs, model_path, opts, ray, progress, command,
                                                    [v.source for v in videos])):
            yield _failure(v.path, o, r) if isinstance(r, Exception) else r
        return
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    for v, o in zip(videos, outs):
        try:
            yield analyze_video(v.path, o, em, opts, progress=progress, command=command, source=v.source)
        except (BadInput, OutputConflict) as e:
            yield _failure(v.path, o, e)


def analyze_videos(inputs: list[str | Path], out: str | Path | None = None,
                   model: EmotionModel | str | Path | None = None, options: VideoOptions | None = None,
                   progress: bool = True, command: str | None = None, ray: str | None = None,
                   on_result: Callable[[VideoResult | VideoFailure], None] | None = None,
                   ) -> list[VideoResult | VideoFailure]:
    """Analyse videos and folders of videos: one result or failure per video, in input order (`on_result` is
    called as each one ends). `ray`: None runs here; '' or 'local' a local Ray instance; else a cluster
    address. Raises ValueError / FileNotFoundError for what stops the whole batch (no videos, no model)."""
    opts = options or VideoOptions()
    videos = expand_inputs(inputs)
    outs = output_dirs(videos, Path(out) if out else None)
    results = []
    for r in _outcomes(videos, outs, model, opts, progress, command, ray):
        results.append(r)
        if on_result is not None:
            on_result(r)
    if opts.html and len(videos) > 1:
        _write_index(videos, outs, out, results, command)
    return results
