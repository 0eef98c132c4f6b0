"""`batchemo video` for a batch: video files and folders of videos in, one report folder per video out, run
here one after another or on Ray; one video's failure is reported with it and never stops the others."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import pandas as pd

from ..knobs import described, knob
from .. import report as R
from .journal import is_report_folder
from ..pipeline.model import EmotionModel, default_model_path, read_card
from ..pipeline.files import VIDEO_EXTENSIONS, BadInput, source_text, walk
from .folder import default_out as folder_out
from .options import VideoOptions, job_options
from .runtime import OutputConflict, refuse_replacing
from ..report.events import EventsLog
from .derived import EPISODES_FILE, RESPONSES_FILE, counted_as_recorded, events_or_none, remove_table
from .people import PEOPLE_FILE, VideoReport, check_people, finish_people
from .video import VideoResult, analyse_video, default_out, refuse_photo

if TYPE_CHECKING:
    from ..report.html import People


@described()
@dataclass
class VideoFailure:
    """A video of a batch that could not be analysed (`analyze_videos` goes on with the others)."""

    source: Path = knob(doc="The video file.")
    out: Path = knob(doc="The report folder it would have had.")
    error: str = knob(doc="Why, in one line.")
    usage: bool = knob(False, "The user's to fix (an `out` that holds another input's report), not the file's.")

    def __repr__(self) -> str:
        return f"VideoFailure(source={str(self.source)!r}, error={self.error!r})"


@dataclass(frozen=True)
class VideoInput:
    path: Path
    source: str  # the `source` column: the file's name, or its path under the folder given (forward slashes)
    folder: Path | None = None  # the folder it was found in, walked


def as_paths(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """A list of input paths from a list of them or from one path: a string is one path, never its letters."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    if isinstance(inputs, bytes):
        raise TypeError("inputs must be a path (str or Path) or a list of paths, not bytes")
    return [Path(p) for p in inputs]


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[VideoInput]:
    """Video files as given, folders walked for videos (sorted); ValueError for a folder with none, and for a photo
    given by name (`refuse_photo`)."""
    videos: list[VideoInput] = []
    for p in as_paths(inputs):
        if p.is_dir():
            found = walk(p, VIDEO_EXTENSIONS, is_report=is_report_folder)[0]
            if not found:
                raise ValueError(f"{p}: no videos found ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            videos += [VideoInput(s.path, source_text(s.rel), p) for s in found]
        else:
            refuse_photo(p)
            videos.append(VideoInput(p, source_text(p.name)))
    return videos


def output_dirs(videos: list[VideoInput], out: Path | None) -> list[Path]:
    """OUT for one video file; for several, OUT/<stem>, and a folder's tree mirrored under OUT (OUT/day1/p01 for
    day1/p01.mp4: lab recordings repeat names across session folders). Without OUT: reports/<stem>, or
    reports/<folder>/<tree> for a folder. Videos that differ only by extension or by the case of their names
    (p01.mp4, p01.avi; Clip.mp4, clip.mov) get <stem>_<extension>, and those still apart only by case
    (IMG_1.MOV, img_1.mov) a mark of six hex digits from their name as well; ValueError where two videos would
    still share one report folder."""
    def mirrored(v: VideoInput) -> Path:
        return Path(v.source).with_suffix("")

    if out is None:
        outs = [folder_out(v.folder) / mirrored(v) if v.folder else default_out(v.path) for v in videos]
    elif len(videos) == 1 and videos[0].folder is None:
        return [Path(out)]
    else:
        outs = [Path(out) / (mirrored(v) if v.folder else v.path.stem) for v in videos]
    return _distinct(videos, outs)


def _distinct(videos: list[VideoInput], outs: list[Path]) -> list[Path]:
    """`outs` with no folder shared by two videos: one report folder holds one video's report, and on Ray two
    tasks writing into one folder would mix their files."""
    def clashes(paths: list[Path]) -> dict[str, list[int]]:
        by: dict[str, list[int]] = {}
        for k, o in enumerate(paths):
            # Case-folded: on macOS and Windows disks (and a report tree copied to one) Clip/ and clip/ are one
            # folder, so Clip.mp4 and clip.mov beside each other would write into one report.
            by.setdefault(str(o.resolve()).casefold(), []).append(k)
        return {o: ks for o, ks in by.items() if len(ks) > 1}

    seen: dict[Path, VideoInput] = {}
    for v in videos:
        first = seen.setdefault(v.path.resolve(), v)
        if first is not v:
            raise ValueError(f"{v.path}: given twice (also as {first.path})")
    outs = list(outs)
    for ks in clashes(outs).values():
        for k in ks:
            outs[k] = outs[k].with_name(f"{outs[k].name}_{videos[k].path.suffix.lstrip('.').lower()}")
    for ks in clashes(outs).values():
        if len({str(outs[k].resolve()) for k in ks}) == len(ks):  # apart only by case (IMG_1.MOV, img_1.mov)
            for k in ks:  # a mark from the name itself, so that it stays when other videos come and go
                mark = hashlib.sha1(videos[k].source.encode("utf-8", "surrogateescape")).hexdigest()[:6]
                outs[k] = outs[k].with_name(f"{outs[k].name}_{mark}")
    for ks in clashes(outs).values():
        names = " and ".join(str(videos[k].path) for k in ks)
        raise ValueError(f"{names} would share the report folder {outs[ks[0]]}: give the folder that holds them "
                         "(its tree is mirrored), or analyse them with separate --out")
    return outs


def _failure(path: Path, out: Path, e: Exception) -> VideoFailure:
    # A path that is not there, or an --out holding another input's report, is the command's mistake (exit 2).
    return VideoFailure(path, out, str(e), usage=isinstance(e, OutputConflict) or not Path(path).exists())


def is_batch(videos: list[VideoInput]) -> bool:
    """Several videos, or a folder walked: one report folder per video, and batch tables beside them."""
    return len(videos) > 1 or any(v.folder is not None for v in videos)


def batch_dir(videos: list[VideoInput], outs: list[Path], out: Path | None) -> Path:
    """Where a batch's own files go (files.csv, summary.csv, index.html): OUT, else the folder above all reports
    (for a folder walked, the top of its mirrored tree, however deep its videos are)."""
    if out:
        return Path(out)
    tops = [o.parents[len(Path(v.source).parts) - 1] if v.folder else o.parent for v, o in zip(videos, outs)]
    # Not resolved: a symlink on the way (reports -> /data/reports) would make the report links leave OUT.
    return Path(os.path.commonpath([os.path.abspath(t) for t in tops]))


BATCH_NAMES = ("files.csv", "summary.csv", "index.html")  # a batch's own files, in its folder


def claim_batch_dir(root: Path, force: bool, people: bool = False) -> None:
    """Refuse a batch folder that holds files.csv, summary.csv or index.html (and with `people`, people.csv) that
    no batch of videos wrote (the user's own tables, a photo folder's report, one video's report): the batch's
    would replace them. Unless forced; a previous batch's folder is this batch's to update."""
    if force or not root.is_dir():
        return
    try:
        if R.read_table(root / "files.csv")[0] is R.VIDEO_FILES:
            return
    except (OSError, ValueError):  # no files.csv, or not a batch's
        pass
    names = BATCH_NAMES + ((PEOPLE_FILE,) if people else ())
    refuse_replacing(root, names, "the folder of a batch of videos", "the batch's tables")


def _run_of(o: Path, r: VideoResult | VideoFailure) -> dict | None:
    """An analysed video's run.json (None for a failure): what its own run counted, and with which options."""
    return R.read_record(o / "run.json") if isinstance(r, VideoResult) else None


def _video_file_row(v: VideoInput, o: Path, r: VideoResult | VideoFailure, run: dict | None, root: Path) -> dict:
    """A batch files.csv row. A video's status, notes, counts, duration and frame rate come from its run.json, so
    a re-run that skips it writes the same row as the run that analysed it. `faces` and `tracks` are every row
    and track of its frames.csv, short ones included; `short_tracks` says how many of those tracks summary.csv may
    leave out."""
    row = {"source": v.source, "report": Path(os.path.relpath(o, root)).as_posix(), "status": "failed",
           "error": getattr(r, "error", ""), "note": "", "frames_decoded": 0, "frames_analysed": 0, "faces": 0,
           "tracks": 0, "short_tracks": 0, "duration_s": None, "fps": None}
    if run is not None:
        video = run.get("video") or {}
        row.update(status=run.get("status", r.status), note="; ".join(run.get("notes") or []),
                   **{k: int(run.get("counts", {}).get(k, 0)) for k in
                      ("frames_decoded", "frames_analysed", "faces", "tracks", "short_tracks")},
                   duration_s=video.get("duration_s"), fps=video.get("fps"))  # fps None: the file does not say
    return row


def _counted_rows(frames: pd.DataFrame, run: dict) -> pd.DataFrame:
    """The rows of a video's frames.csv that its own summary.csv counts.

    A batch row is built from these, not from this run's options: a video skipped because an earlier run
    analysed it keeps that run's summary, which may have counted short tracks (--keep-short-tracks) or flagged
    other tracks short (--min-track). Both settings are in the video's own files: its run.json's options say
    whether short tracks were kept, and frames.csv's `short_track` column holds the flags of its --min-track.
    A run.json without the option (older than short tracks) counted every row. Uncertain rows are left out where
    its run.json's `derived` says its summary left them out (--drop-uncertain)."""
    keep = run.get("options", {}).get("keep_short_tracks", True) or "short_track" not in frames.columns
    return counted_as_recorded(R.shown_rows(frames, keep), run)


def write_batch_tables(videos: list[VideoInput], outs: list[Path], results: list[VideoResult | VideoFailure],
                       root: Path, model_classes: list[str] | None = None) -> None:
    """ROOT/files.csv (one row per video, failures included) and ROOT/summary.csv (the all-videos row, then one
    per analysed video), rebuilt from every video's report as it is now: each row says what the video's own
    run.json and summary.csv say, whichever run analysed it. `model_classes`: the per-class columns where no
    video was analysed (a batch of failures still has them, so batch tables concatenate)."""
    root.mkdir(parents=True, exist_ok=True)
    files, classes, shares = [], [], []
    for v, o, r in zip(videos, outs, results):
        run = _run_of(o, r)
        files.append(_video_file_row(v, o, r, run, root))
        if run is None:
            continue
        frames = R.read_report(o / "frames.csv")
        classes = classes or R.classes_of(frames)
        shares.append(R.video_share_row(_counted_rows(frames, run), classes, v.source))
    R.write_csv(R.VIDEO_FILES.apply(pd.DataFrame(files, columns=list(R.VIDEO_FILES.fixed))), root / "files.csv")
    R.write_csv(R.batch_summary(shares, classes or list(model_classes or [])), root / "summary.csv")
    _batch_derived(outs, results, root, classes or list(model_classes or []))


def _batch_derived(outs: list[Path], results: list[VideoResult | VideoFailure], root: Path,
                   classes: list[str]) -> None:
    """ROOT/episodes.csv (and, where the videos have them, ROOT/responses.csv): every analysed video's rows, in
    input order; each row's `source` says which video."""
    done = [o for o, r in zip(outs, results) if isinstance(r, VideoResult)]
    for name, schema, per_class in ((EPISODES_FILE, R.EPISODES, []),
                                    (RESPONSES_FILE, R.RESPONSES, [f"mean_p_{c}" for c in classes])):
        parts = [R.read_report(o / name) for o in done if (o / name).is_file()]
        if name == RESPONSES_FILE and not parts:
            remove_table(root / name, schema)
            continue
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(schema.fixed) + per_class)
        R.write_csv(schema.apply(table), root / name)


def _write_index(videos: list[VideoInput], outs: list[Path], index_dir: Path, results: list,
                 command: str | None, people: People | None = None) -> None:
    """OUT/index.html of a batch (several videos): each video's page with its one-line summary (and with
    --people, `people`: a card per person)."""
    from ..report.html import write_index_page

    items = [{"source": v.source, "out": o, "status": getattr(r, "status", "failed"),
              "error": getattr(r, "error", None) or getattr(r, "note", "")} for v, o, r in zip(videos, outs, results)]
    write_index_page(index_dir, items, command, people=people)


def _outcomes(videos: list[VideoInput], outs: list[Path], model, opts: VideoOptions, progress: bool,
              command: str | None, ray: str | None,
              events: EventsLog | None = None) -> Iterator[VideoResult | VideoFailure]:
    """Each video's result or failure, in input order, run here one after another or on Ray. `events`: the run's
    log of opts.events, read once for every video run here (a Ray task reads the file itself, on its machine)."""
    if ray is not None:
        from .ray_runner import ray_videos

        model_path = model.path if isinstance(model, EmotionModel) else Path(model or default_model_path())
        if not model_path.exists():
            raise FileNotFoundError(f"{model_path}: model file not found")
        paths = [v.path for v in videos]
        for v, o, r in zip(videos, outs, ray_videos(paths, outs, model_path, opts, ray, progress=progress,
                                                    command=command, sources=[v.source for v in videos],
                                                    events=events)):
            yield _failure(v.path, o, r) if isinstance(r, Exception) else r
        return
    em = model if isinstance(model, EmotionModel) else EmotionModel.load(model)
    for v, o in zip(videos, outs):
        try:
            yield analyse_video(v.path, o, em, opts, progress=progress, command=command, source=v.source,
                                events=events)
        except (BadInput, OutputConflict) as e:
            yield _failure(v.path, o, e)
        except Exception as e:  # noqa: BLE001 - one video's unforeseen failure must not cost the batch the others
            if not is_batch(videos):
                raise
            why = " ".join(str(e).split())
            yield VideoFailure(v.path, o, f"unexpected error ({type(e).__name__}: {why})")


def _classes_of(model) -> list[str]:
    """The classes of `model` (an EmotionModel, a path, or None for the default), from its card."""
    if isinstance(model, EmotionModel):
        return list(model.classes)
    return list(read_card(Path(model) if model else default_model_path())["classes"])


def analyze_videos(inputs: str | os.PathLike | Iterable[str | os.PathLike], out: str | Path | None = None,
                   model: EmotionModel | str | Path | None = None, options: VideoOptions | dict | None = None,
                   *, progress: bool = True, command: str | None = None, ray: str | None = None,
                   on_result: Callable[[VideoResult | VideoFailure], None] | None = None, **knobs: Any,
                   ) -> list[VideoResult | VideoFailure]:
    """Analyse videos and folders of videos (`inputs`: one path, or a list of them): one result or failure per
    video, in input order (`on_result` is called as each one ends). Several videos, or a folder, make a batch:
    a report folder per video under `out`, and the batch's files.csv, summary.csv and index.html in `out`.

    `options`: VideoOptions (or a dict of its fields); any field of VideoOptions or DetectOptions may also be
    given as a keyword, on top of them (`every=5`). `ray`: None runs here; '' or 'local' a local Ray instance;
    else a cluster address. Raises ValueError / FileNotFoundError for what stops the whole batch (no videos, a
    photo given by name, no model)."""
    opts = job_options(VideoOptions, options, knobs, "analyze_videos")
    check_people(opts.people)
    events = events_or_none(opts)  # read once for the run; a bad events file stops it here, in one line
    videos = expand_inputs(inputs)
    outs = output_dirs(videos, Path(out) if out else None)
    root = batch_dir(videos, outs, Path(out) if out else None)
    if is_batch(videos):
        claim_batch_dir(root, opts.force, opts.people)
    results = []
    for r in _outcomes(videos, outs, model, opts, progress, command, ray, events):
        results.append(r)
        if on_result is not None:
            on_result(r)
    # Person numbers once for the whole run, here in the driver, videos in input order: a run on Ray gives the
    # numbers a local one gives.
    analysed = [VideoReport(v.source, r.source, r.out) for v, r in zip(videos, results) if isinstance(r, VideoResult)]
    people = finish_people(analysed, root if is_batch(videos) else None, model, opts, events)
    if is_batch(videos):
        write_batch_tables(videos, outs, results, root, _classes_of(model))
    if opts.html and is_batch(videos):  # a batch that shrank to one video too: no old index beside its tables
        _write_index(videos, outs, root, results, command, people)
    return results
