"""`batchemo folder` and `batchemo video`: the main jobs."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

import typer

from ..jobs.options import (FOLDER_RANGES, PHOTO_DETECT_SIDE, VIDEO_DETECT_SIDE, VIDEO_RANGES, FolderOptions,
                            VideoOptions)
from ..knobs import OptionError
from ..pipeline.detect import DETECT_RANGES, DetectOptions, Range
from .app import Command, app, command_line, fail, plural

# What `--ray X` may be followed by as its address (Ray's own forms); anything else after --ray is the next
# argument (a path, another option), and --ray alone means a local Ray instance.
_RAY_ADDRESS = re.compile(r"auto|local|[a-z][a-z0-9+.-]*://\S+|\S+:\d+")


class MediaCommand(Command):
    """`folder` and `video`: a --ray given without an address starts a local Ray instance. typer has no
    option with an optional value, so the arguments are rewritten before parsing: a bare `--ray` becomes
    `--ray=local`."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, bare_ray_is_local(args))


def bare_ray_is_local(args: list[str]) -> list[str]:
    """`--ray` not followed by an address becomes `--ray=local` (arguments after `--` are left alone)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        follows = args[i + 1] if i + 1 < len(args) else None
        bare = arg == "--ray" and (follows is None or not (follows == "" or _RAY_ADDRESS.fullmatch(follows)))
        out.append("--ray=local" if bare else arg)
    return out


def _ranged(help: str, rng: Range) -> str:
    """An option's help with its valid values, as the option classes check them."""
    return f"{help} {rng.text}"


def _field(cls, name: str):
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f, (f.default if f.default is not dataclasses.MISSING else f.default_factory())


_RANGES = {FolderOptions: FOLDER_RANGES, VideoOptions: VIDEO_RANGES, DetectOptions: DETECT_RANGES}


def option(cls, name: str, *decls: str, help: str | None = None, **kw):
    """A typer option for the field `name` of an options class: its default is the field's, its help the field's
    own text (or `help`) and the range the class checks, so that a default or a bound changes in one place."""
    f, default = _field(cls, name)
    text = help or f.metadata.get("doc", "")
    rng = _RANGES[cls].get(name)
    return typer.Option(default, *decls, help=_ranged(text, rng) if rng else text, **kw)


def _detect_options(scale_factor: float, min_neighbors: int, min_face: int, accurate: bool, detect_size: int):
    from ..pipeline.detect import DetectOptions

    d = DetectOptions(scale_factor=scale_factor, min_neighbors=min_neighbors, min_face=min_face,
                      max_side=detect_size)
    return d.accurate if accurate else d


def _print_summary(summary, classes: list[str], header: str) -> None:
    typer.echo(header)
    row = summary.iloc[0]
    if row["faces"] == 0:
        typer.echo("  no faces found")
        return
    width = max(len(c) for c in classes)
    for c in sorted(classes, key=lambda c: -row[f"share_{c}"]):
        share = row[f"share_{c}"]
        typer.echo(f"  {c:<{width}}  {int(row[f'n_{c}']):>6}  {100 * share:5.1f} %  {'#' * int(round(40 * share))}")


DETECT_SIZE_HELP = _ranged("Long side, in pixels, of the downscaled copy Haar searches (0: no cap). Faces smaller "
                           "than 24 px on that copy are not found.", DETECT_RANGES["max_side"])
ACCURATE_HELP = "Detect at full resolution (slow; the default detects on a downscaled grey image)."
# `\\[`: typer renders help as Rich markup, where a bare [ray] is a style tag and vanishes.
RAY_HELP = ("Run on Ray (extra batchemo\\[ray]): --ray alone (or --ray local) starts a Ray instance here; --ray auto "
            "or --ray ray://HOST:10001 joins a cluster. Inputs and --out must be on a file system every node sees.")
MODEL_HELP = "Emotion model (.keras with its .json card beside it); default: the shipped models/emotion.keras."


@app.command(cls=MediaCommand)
def folder(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder of photos, walked recursively (or a single photo)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default reports/<name of PATH>; for a single "
                                       "photo reports/<photo stem>)."),
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    batch_size: int = option(FolderOptions, "batch_size"),
    scale_factor: float = option(DetectOptions, "scale_factor"),
    min_neighbors: int = option(DetectOptions, "min_neighbors"),
    min_face: int = option(DetectOptions, "min_face"),
    detect_size: int = typer.Option(PHOTO_DETECT_SIDE, help=DETECT_SIZE_HELP),
    decode_side: int = option(FolderOptions, "decode_side"),
    accurate: bool = typer.Option(False, "--accurate", help=ACCURATE_HELP + " Also decodes at full size."),
    annotate: bool = option(FolderOptions, "annotate"),
    redo: bool = option(FolderOptions, "redo", "--redo"),
    force: bool = option(FolderOptions, "force", "--force"),
    max_megapixels: float = option(FolderOptions, "max_megapixels"),
    workers: int = option(FolderOptions, "workers"),
    ray: Optional[str] = typer.Option(None, metavar="[ADDRESS]", help=RAY_HELP),
    html: bool = option(FolderOptions, "html"),
    save_faces: bool = option(FolderOptions, "save_faces", "--save-faces", help="Save each face crop under "
                              "OUT/faces/<emotion>/ (class folders `batchemo train` reads; faces/index.csv maps them "
                              "to rows)."),
    people: bool = option(FolderOptions, "people", "--people"),
    min_confidence: float = option(FolderOptions, "min_confidence"),
    drop_uncertain: bool = option(FolderOptions, "drop_uncertain", "--drop-uncertain"),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Analyse every photo under PATH: faces.csv, files.csv, summary.csv, annotated/ and run.json.

    Exit code: 0 all files ok, 1 some files failed (listed in files.csv), 2 usage error, 130 interrupted
    (Ctrl-C: what was finished is kept, and the same command resumes).
    """
    from ..jobs.folder import analyze_folder
    from ..jobs.options import FolderOptions
    from ..jobs.runtime import OutputConflict

    try:
        opts = FolderOptions(detect=_detect_options(scale_factor, min_neighbors, min_face, accurate, detect_size),
                             decode_side=0 if accurate else decode_side, batch_size=batch_size, annotate=annotate,
                             redo=redo, force=force, max_megapixels=max_megapixels, workers=workers, ray=ray,
                             html=html, save_faces=save_faces, people=people, min_confidence=min_confidence,
                             drop_uncertain=drop_uncertain)
        res = analyze_folder(path, out, model, opts, progress=progress, command=command_line(ctx))
    except KeyboardInterrupt:
        _interrupted("the photos finished so far are kept")
    except OptionError as e:  # named as the command line spells it (--detect-size, not max_side)
        fail(e.cli)
    except (FileNotFoundError, NotADirectoryError, ValueError, OutputConflict, RuntimeError, ImportError) as e:
        fail(str(e))
    except OSError as e:  # writing the report failed (disk full, permissions): what was written stays, resumable
        _cannot_write(e, out)
    classes = [c[len("share_"):] for c in res.summary.columns if c.startswith("share_")]
    _print_summary(res.summary, classes, _folder_line(res))
    _print_left_out(res.out, "faces")
    if res.errors:
        raise typer.Exit(1)


@app.command(cls=MediaCommand)
def video(
    ctx: typer.Context,
    inputs: list[Path] = typer.Argument(..., help="Video files, or folders of videos."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default reports/<video stem>/). With several videos, "
                                       "OUT/<video stem>/; a folder's tree is mirrored: OUT/day1/p01/ for "
                                       "FOLDER/day1/p01.mp4."),
    model: Optional[Path] = typer.Option(None, help=MODEL_HELP),
    every: int = option(VideoOptions, "every"),
    fps: Optional[float] = option(VideoOptions, "fps", help="Analyse about F frames per second of video (overrides "
                                  "--every)."),
    detect_every: int = option(VideoOptions, "detect_every", help="Full-frame Haar on every k-th analysed frame (and "
                               "about once a second: the first frame past 1 s); in between, each face is re-found "
                               "near its last box."),
    max_detect_interval: float = option(VideoOptions, "max_detect_interval_s", "--max-detect-interval",
                                        help="Seconds between full-frame detections at most (new faces are found "
                                        "at most this late). With --detect-every 60, 2: faster, fewer faces "
                                        "(docs/benchmarks.md)."),
    bin: float = option(VideoOptions, "bin_s", "--bin"),
    min_track: float = option(VideoOptions, "min_track_s", "--min-track"),
    keep_short_tracks: bool = option(VideoOptions, "keep_short_tracks", "--keep-short-tracks"),
    batch_size: int = option(VideoOptions, "batch_size"),
    scale_factor: float = option(DetectOptions, "scale_factor"),
    min_neighbors: int = option(DetectOptions, "min_neighbors"),
    min_face: int = option(DetectOptions, "min_face"),
    detect_size: int = typer.Option(VIDEO_DETECT_SIDE, help=DETECT_SIZE_HELP),
    accurate: bool = typer.Option(False, "--accurate", help="Full-resolution Haar on every analysed frame "
                                  "(slow; the straightforward pipeline)."),
    annotate: bool = option(VideoOptions, "annotate"),
    ray: Optional[str] = typer.Option(None, metavar="[ADDRESS]", help=RAY_HELP + " One Ray task per video; a "
                                      "long video is cut into frame ranges (--split-frames) analysed side by side."),
    split_frames: int = option(VideoOptions, "split_frames"),
    redo: bool = option(VideoOptions, "redo", "--redo"),
    force: bool = option(VideoOptions, "force", "--force"),
    html: bool = option(VideoOptions, "html"),
    save_faces: bool = option(VideoOptions, "save_faces", "--save-faces"),
    people: bool = option(VideoOptions, "people", "--people"),
    min_confidence: float = option(VideoOptions, "min_confidence"),
    drop_uncertain: bool = option(VideoOptions, "drop_uncertain", "--drop-uncertain"),
    episode_onset: float = option(VideoOptions, "episode_onset"),
    episode_offset: float = option(VideoOptions, "episode_offset"),
    episode_min: float = option(VideoOptions, "episode_min_s", "--episode-min"),
    episode_bridge: float = option(VideoOptions, "episode_bridge_s", "--episode-bridge"),
    episode_smooth: float = option(VideoOptions, "episode_smooth_s", "--episode-smooth"),
    episode_neutral: bool = option(VideoOptions, "episode_neutral", "--episode-neutral"),
    events: Optional[str] = option(VideoOptions, "events", metavar="EVENTS.CSV"),
    response_window: float = option(VideoOptions, "response_window_s", "--response-window"),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Analyse videos frame by frame: frames.csv, timeline.csv/.png, summary.csv, annotated.mp4, run.json.

    Exit code: 0 all videos ok, 1 some failed or were cut short, 2 usage error, 130 interrupted
    (Ctrl-C: what was finished is kept, and the same command resumes).
    """
    from ..jobs.options import VideoOptions
    from ..jobs.runtime import OutputConflict
    from ..jobs.videos import VideoFailure, analyze_videos

    try:
        opts = VideoOptions(detect=_detect_options(scale_factor, min_neighbors, min_face, accurate, detect_size),
                            every=every, fps=fps, detect_every=1 if accurate else detect_every,
                            max_detect_interval_s=max_detect_interval, batch_size=batch_size,
                            bin_s=bin, annotate=annotate, redo=redo, force=force, split_frames=split_frames,
                            min_track_s=min_track, keep_short_tracks=keep_short_tracks, html=html,
                            save_faces=save_faces, people=people, min_confidence=min_confidence,
                            drop_uncertain=drop_uncertain, episode_onset=episode_onset, episode_offset=episode_offset,
                            episode_min_s=episode_min, episode_bridge_s=episode_bridge,
                            episode_smooth_s=episode_smooth, episode_neutral=episode_neutral, events=events,
                            response_window_s=response_window)
        results = analyze_videos(inputs, out, model, opts, progress=progress, command=command_line(ctx), ray=ray,
                                 on_result=_print_video)
    except KeyboardInterrupt:
        _interrupted("the videos finished so far are kept; the one under way starts over")
    except OptionError as e:
        fail(e.cli)
    except (FileNotFoundError, ValueError, RuntimeError, OutputConflict, ImportError) as e:
        fail(str(e))
    except OSError as e:  # as for folder: one line, what was written stays
        _cannot_write(e, out)
    # A video cut short stays a failure on every re-run that skips it, as its files.csv row stays `partial`.
    failures = [r for r in results if isinstance(r, VideoFailure) or "partial" in (r.status, r.previous_status)]
    if any(isinstance(r, VideoFailure) and r.usage for r in failures):
        raise typer.Exit(2)
    if failures:
        raise typer.Exit(1)


def _print_left_out(out: Path, what: str) -> None:
    """With --drop-uncertain, how many rows the summaries left out (run.json's count), in one line."""
    from ..report import read_record

    run = read_record(Path(out) / "run.json") or {}
    n = (run.get("counts") or {}).get("uncertain_left_out", 0)
    if n:
        level = (run.get("derived") or run.get("options") or {}).get("min_confidence")
        typer.echo(f"  {plural(n, 'uncertain ' + what[:-1])} (confidence < {level:g}) left out of the summary "
                   "(--drop-uncertain)")


def _folder_line(res) -> str:
    """'6 files (2 already done), 7 faces, 0 errors, 1 non-image file skipped in 0.3s -> OUT' (files: images)."""
    skipped = f", {plural(res.skipped_non_images, 'non-image file')} skipped" if res.skipped_non_images else ""
    return (f"{plural(res.files, 'file')} ({res.skipped_done} already done), {plural(res.faces, 'face')}, "
            f"{plural(res.errors, 'error')}{skipped} in {res.seconds:.1f}s -> {res.out}")


def _cannot_write(e: OSError, out) -> None:
    fail(f"{e.filename or out or 'the report'}: cannot write ({e.strerror or e}); the files written so far "
         "are kept and the same command resumes", code=1)


def _interrupted(kept: str) -> None:
    typer.echo(f"interrupted: {kept}; run the same command again to resume", err=True)
    raise typer.Exit(130)


def _print_video(r) -> None:
    from ..jobs.videos import VideoFailure
    from ..pipeline.files import printable

    name = printable(str(r.source))
    if isinstance(r, VideoFailure):
        typer.echo(f"{name}: {'error: ' if r.usage else ''}{r.error}", err=True)
    elif r.status == "skipped" and r.previous_status == "partial":
        typer.echo(f"{name}: partial, as analysed before in {r.out}: {r.note} (--redo to analyse again)",
                   err=True)
    elif r.status == "skipped":
        typer.echo(f"{name}: already complete in {r.out} (--redo to analyse again)")
    else:
        if r.status == "partial":
            typer.echo(f"{name}: partial: {r.note}", err=True)
        elif r.note:
            typer.echo(f"{name}: note: {r.note}", err=True)
        typer.echo(f"{name}: {plural(r.frames_decoded, 'frame')} ({r.frames_analysed} analysed), "
                   f"{plural(r.faces, 'face')} in {plural(r.tracks, 'track')}, "
                   f"{r.frames_decoded / max(r.seconds, 1e-9):.1f} frames/s -> {r.out}")
    if not isinstance(r, VideoFailure):
        _print_left_out(r.out, "face rows")
