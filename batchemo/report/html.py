"""report.html: one page per run (folder or video) and an index page for a batch of videos.

The page opens from the file system with no network: styles and scripts are inline, pictures are files inside the
output folder linked by relative, URL-quoted paths (thumbnails under OUT/thumbs/). Every number on the page is read
from the tables the CSVs were written from (files/faces/summary, frames/timeline/summary), never recomputed.
Templates are Jinja2 files in templates/ (base.html.j2 and macros.html.j2 shared by folder, video and index),
rendered with autoescaping on: file names are data.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd

from . import crops as C
from .colours import class_colours
from .atomic import read_record, write_atomic
from .tables import read_report

GALLERY_CAP = 500  # faces in the folder page's gallery (lowest confidence first)
LOW_CONFIDENCE = 0.5
LOW_MOMENTS = 6  # low-confidence moments listed per track

# The templates are package data (batchemo/report/templates/, see pyproject.toml), read from beside this module so
# that an editable checkout and an installed wheel find them alike. Autoescaping is on for every template whatever its
# file name: file names are data and may be markup.
TEMPLATES = Path(__file__).with_name("templates")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=False)
_ENV.filters["urlq"] = lambda p: quote(str(p).replace(os.sep, "/"), safe="/")


def _num(v, fmt="{:g}"):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return fmt.format(v)


def _count(n, thing: str) -> str:
    """'1 track', '2 tracks'."""
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _model_facts(run: dict, card: dict | None) -> str:
    name = Path(run.get("model", {}).get("path", "")).name
    ev = (card or {}).get("evaluation", {})
    for key, e in ev.items():
        if isinstance(e, dict) and "accuracy" in e:
            acc = f"{100 * e['accuracy']:.1f} % on {key}"
            if "crowd_accuracy" in e:
                acc += f" ({100 * e['crowd_accuracy']:.1f} % vs the crowd majority)"
            return f"{name}: {acc}"
    return name


def _common_facts(run: dict, card: dict | None) -> list[tuple[str, object]]:
    return [("input", run.get("input")), ("model", _model_facts(run, card)),
            ("written", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("run time", _num(run.get("wall_seconds"), "{:.1f} s")), ("command", run.get("command"))]


def _write(out: Path, filename: str, template: str, **ctx) -> Path:
    text = _ENV.get_template(template).render(**ctx)
    path = Path(out) / filename
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _fresh_dir(d: Path) -> None:
    if d.is_dir():
        shutil.rmtree(d)
    d.mkdir(parents=True)


def _tables(out: Path, names: list[str]) -> list[str]:
    """The report files beside the page that are there (a page never links to a missing file)."""
    return [n for n in names if (Path(out) / n).is_file()]


def _bar(row, classes, cols, prefix="share_") -> list:
    return [(c, float(row[f"{prefix}{c}"]) if pd.notna(row[f"{prefix}{c}"]) else 0.0, cols[c]) for c in classes]


# --- people (--people) -----------------------------------------------------------------------------------------

PERSON_LINKS = 12  # photos (or videos) listed on a person's card; the rest are in faces.csv's `person`


@dataclass(frozen=True)
class People:
    """--people's part of a page: `table`, people.csv's rows (one per person); `pictures`, per person the face row
    (of frames.csv / faces.csv, with its `person`) their picture is cut from: their most confident picked face. For
    a batch's index, `appearances` (person, source, out, face, seconds_on_screen: one row per track of a person)
    and `picture_files` (person -> the thumbnail file a video page cut) instead of `pictures`."""

    table: pd.DataFrame
    pictures: pd.DataFrame | None = None
    appearances: pd.DataFrame | None = None
    picture_files: dict = field(default_factory=dict)


def person_thumbs(out: Path, pictures: pd.DataFrame) -> C.Crops:
    """The person cards' pictures as a crop request, written as OUT/thumbs/person<N>.jpg (made after the page's
    other thumbnails, whose request empties OUT/thumbs/)."""
    (Path(out) / "thumbs").mkdir(parents=True, exist_ok=True)
    return C.Crops(pictures, partial(_write_thumb, Path(out), _person_thumb_name), margin=0.15)


def _person_thumb_name(label, r: pd.Series) -> str:
    return f"thumbs/person{int(r['person'])}.jpg"


def _person_card(p: pd.Series, classes: list[str], cols: dict, thumb: str | None, **more) -> dict:
    """What every person card shows (people.csv's row: the dominant emotion, shares and mean probabilities), and
    `more`, the page's own lines."""
    return {"person": int(p["person"]), "dominant": p["dominant"], "thumb": thumb, "bar": _bar(p, classes, cols),
            "mean_p": {c: float(p[f"mean_p_{c}"]) for c in classes}, **more}


def _pictures_cut(people: People | None, crops: C.Crops | None) -> dict[int, str]:
    """person -> its picture's file under OUT, for the pictures `crops` wrote."""
    if people is None or crops is None:
        return {}
    return {int(crops.rows.loc[label, "person"]): _person_thumb_name(label, crops.rows.loc[label])
            for label in crops.done}


def presence_svg(segments: list[dict], duration: float, cols: dict, width: int = 1000, height: int = 26) -> str:
    """A strip of the video's duration with one bar per track of a person (`segments`: face, first, last,
    dominant), coloured by the track's dominant emotion; as the timelines, a click seeks the player."""
    x0, x1 = 34, width - 8
    d = max(duration, 1e-9)
    sx = lambda t: x0 + (x1 - x0) * min(max(t / d, 0), 1)  # noqa: E731
    parts = [(f'<svg class="timeline" viewBox="0 0 {width} {height}" data-x0="{x0}" data-x1="{x1}" '
              f'data-w="{width}" data-duration="{duration:.3f}">'),
             f'<rect x="{x0}" y="4" width="{x1 - x0}" height="{height - 8}" fill="#fafafa" stroke="#ccc"/>']
    for s in segments:
        a, b = sx(s["first"]), sx(s["last"])
        parts.append(f'<rect x="{a:.1f}" y="6" width="{max(b - a, 2):.1f}" height="{height - 12}" '
                     f'fill="{cols.get(s["dominant"], "#999")}"><title>track {int(s["face"])}: '
                     f'{html.escape(str(s["dominant"]))}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


# --- folder ----------------------------------------------------------------------------------------------------

def write_folder_page(out: Path, root: Path, files: pd.DataFrame, faces: pd.DataFrame, summary: pd.DataFrame,
                      run: dict, *, classes: list[str], card: dict | None = None, cap: int = GALLERY_CAP,
                      keep_side: int = 640, thumbs: C.Crops | None = None, people: People | None = None) -> Path:
    """OUT/report.html of a folder run, and its thumbnails under OUT/thumbs/ (the gallery's faces, least confident
    first, at most `cap`). The tables are the ones files.csv, faces.csv and summary.csv were written from.
    `thumbs`: the gallery's thumbnails from `folder_thumbs`, already cut in another pass over the photos (the saved
    faces'; its rows then decide the gallery, and `cap` and `keep_side` are not used); without it they are chosen
    here (at most `cap`) and cut (photos decoded with a long side of `keep_side` or more). `people` (--people): a
    card per person, their picture cut in the same pass as the gallery's (unless that was cut already)."""
    out, root = Path(out), Path(root)
    cols = class_colours(classes)
    if thumbs is None:
        thumbs = folder_thumbs(out, faces, cap)
    pictures = person_thumbs(out, people.pictures) if people is not None else None
    pending = [c for c in (thumbs, pictures) if c is not None and not c.cut]
    if pending:
        C.cut_photos(root, pending, keep_side)
    shown = thumbs.rows
    thumb_of = {label: _thumb_name(label) for label in shown.index if label in thumbs.done}
    file_rows = _file_rows(out, files)
    return _write(out, "report.html", "folder.html.j2", name=Path(run.get("input") or root).name or str(root),
                  run_facts=_folder_facts(run, card), classes=classes, colors=cols,
                  groups=_summary_groups(summary, classes, cols),
                  **_gallery(out, shown, len(faces), thumb_of, classes),
                  no_face=[f for f in file_rows if f["status"] == "ok" and f["faces"] == 0], files=file_rows,
                  **_file_totals(files), n_faces=len(faces),
                  people=_photo_people(out, people, faces, classes, cols, _pictures_cut(people, pictures)),
                  tables=_tables(out, ["files.csv", "faces.csv", "summary.csv", "people.csv", "run.json",
                                       "faces/index.csv"]))


def _photo_people(out: Path, people: People | None, faces: pd.DataFrame, classes: list[str], cols: dict,
                  thumbs: dict[int, str]) -> list[dict] | None:
    """The folder page's person cards (None without --people): counts, shares, and the first photos each is in,
    linked to their annotated copies."""
    if people is None:
        return None
    known = faces[faces["person"].notna()]
    photos = {int(p): list(dict.fromkeys(g["source"])) for p, g in known.groupby(known["person"].astype(int))}
    cards = []
    for _, p in people.table.iterrows():
        mine = photos.get(int(p["person"]), [])
        cards.append(_person_card(p, classes, cols, thumbs.get(int(p["person"])), faces=_count(int(p["faces"]), "face"),
                                  photos=_count(int(p["photos"]), "photo"), more=max(0, len(mine) - PERSON_LINKS),
                                  links=[{"source": s, "link": _annotated_link(out, s)} for s in mine[:PERSON_LINKS]]))
    return cards


def _annotated_link(out: Path, source: str) -> str | None:
    """The photo's annotated copy under OUT/annotated/, where there is one (a page never links to a missing file)."""
    return f"annotated/{source}" if (out / "annotated" / source).is_file() else None


def _thumb_name(label, r: pd.Series | None = None) -> str:
    return f"thumbs/{label}.jpg"


def folder_thumbs(out: Path, faces: pd.DataFrame, cap: int = GALLERY_CAP) -> C.Crops:
    """The gallery's thumbnails as a crop request: the `cap` least confident faces (those are the faces worth a look;
    the cap keeps the page and thumbs/ small), each cut at its faces.csv box with a margin and written as
    OUT/thumbs/<row label>.jpg. OUT/thumbs/ is emptied first: a thumbnail left from an earlier run of the same OUT
    would show a face this run did not find."""
    _fresh_dir(Path(out) / "thumbs")
    shown = faces.sort_values("confidence", kind="stable").head(cap)
    return C.Crops(shown, partial(_write_thumb, Path(out), _thumb_name), margin=0.15)


def _write_thumb(out: Path, name, label, r: pd.Series, crop: np.ndarray) -> None:
    C.write_jpeg(out / name(label, r), C.thumbnail(crop))


def _gallery(out: Path, shown: pd.DataFrame, n_faces: int, thumbs: dict, classes: list[str]) -> dict:
    """The gallery's template variables: its faces, the filter chips' count per emotion, and a note when capped."""
    gallery = [{"source": r.source, "face": int(r.face), "emotion": r.emotion, "confidence": float(r.confidence),
                "thumb": thumbs.get(label), "link": _annotated_link(out, r.source)}
               for label, r in zip(shown.index, shown.itertuples())]
    counts = shown["emotion"].value_counts()
    note = (f"Showing the {len(shown)} least confident of {n_faces} faces; all are in faces.csv."
            if n_faces > len(shown) else "")
    return {"gallery": gallery, "gallery_counts": [(c, int(counts[c])) for c in classes if counts.get(c, 0)],
            "gallery_note": note}


def _summary_groups(summary: pd.DataFrame, classes: list[str], cols: dict[str, str]) -> list[dict]:
    """One row per summary.csv group. A group with no faces has NaN shares; it shows as 0 (its counts say why)."""
    groups = []
    for _, g in summary.iterrows():
        groups.append({"name": g["group"], "faces": int(g["faces"]), "n": {c: int(g[f"n_{c}"]) for c in classes},
                       "share": {c: float(g[f"share_{c}"]) if pd.notna(g[f"share_{c}"]) else 0.0 for c in classes},
                       "bar": _bar(g, classes, cols)})
    return groups


def _file_rows(out: Path, files: pd.DataFrame) -> list[dict]:
    """One row per files.csv row; only a photo that was read links to an annotated copy."""
    return [{"source": r.source, "status": r.status, "faces": int(r.faces), "width": _num(r.width),
             "height": _num(r.height), "error": "" if pd.isna(r.error) else r.error,
             "link": _annotated_link(out, r.source) if r.status == "ok" else None} for r in files.itertuples()]


def _file_totals(files: pd.DataFrame) -> dict[str, int]:
    status = files["status"].astype(str)
    return {"n_files": len(files), "n_ok": int((status == "ok").sum()), "n_error": int((status == "error").sum()),
            "n_skipped": int((status == "skipped").sum())}


def _folder_facts(run: dict, card: dict | None) -> list[tuple[str, object]]:
    facts = _common_facts(run, card)
    counts = run.get("counts", {})
    facts.insert(2, ("counts", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())))
    return facts


# --- video -----------------------------------------------------------------------------------------------------

def timeline_svg(tl: pd.DataFrame, classes: list[str], cols: dict, duration: float,
                 width: int = 1000, height: int = 110, episodes: pd.DataFrame | None = None,
                 events: pd.DataFrame | None = None) -> str:
    """A small SVG of one track's smoothed class shares over the video's duration (timeline.csv's smooth_*), with
    the track's episodes (episodes.csv's rows) as bars along its foot and the events (--events) as marked lines."""
    x0, x1, y0, y1 = 34, width - 8, 6, height - 18
    d = max(duration, 1e-9)
    sx = lambda t: x0 + (x1 - x0) * min(max(t / d, 0), 1)  # noqa: E731
    sy = lambda p: y1 - (y1 - y0) * p  # noqa: E731
    parts = [(f'<svg class="timeline" viewBox="0 0 {width} {height}" '
              f'data-x0="{x0}" data-x1="{x1}" data-w="{width}" data-duration="{duration:.3f}">'),
             f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="#fafafa" stroke="#ccc"/>']
    for p in (0.5,):
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{sy(p):.1f}" y2="{sy(p):.1f}" stroke="#e4e4e4"/>')
    parts.append(f'<text x="{x0 - 4}" y="{y0 + 8}" font-size="10" text-anchor="end" fill="#777">1</text>'
                 f'<text x="{x0 - 4}" y="{y1}" font-size="10" text-anchor="end" fill="#777">0</text>')
    step = _tick_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y1}" y2="{y1 + 3}" stroke="#999"/>'
                     f'<text x="{sx(t):.1f}" y="{height - 4}" font-size="10" text-anchor="middle" fill="#777">'
                     f'{t:g}s</text>')
        t += step
    if len(tl):
        mid = ((tl["start_s"] + tl["end_s"]) / 2).to_numpy(float)
        for c in classes:
            col = f"smooth_{c}"
            if col not in tl.columns:
                continue
            v = tl[col].to_numpy(float)
            if np.nanmax(v, initial=0) < 0.02:
                continue
            pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(mid, v) if np.isfinite(b))
            if len(mid) == 1:
                parts.append(f'<circle cx="{sx(mid[0]):.1f}" cy="{sy(v[0]):.1f}" r="3" fill="{cols[c]}"/>')
            parts.append(f'<polyline fill="none" stroke="{cols[c]}" stroke-width="2" points="{pts}">'
                         f'<title>{html.escape(c)}</title></polyline>')  # a class is a training folder's name
    for e in (episodes.itertuples() if episodes is not None else ()):
        a, b = sx(e.onset_s), sx(e.offset_s)
        parts.append(f'<rect class="episode" x="{a:.1f}" y="{y1 - 7}" width="{max(b - a, 2):.1f}" height="6" '
                     f'fill="{cols.get(e.emotion, "#999")}" stroke="#333" stroke-width="0.5"><title>'
                     f'{html.escape(str(e.emotion))} {e.onset_s:.1f}-{e.offset_s:.1f} s, peak {e.peak_p:.2f}'
                     f'</title></rect>')
    for e in (events.itertuples() if events is not None else ()):
        x = sx(e.time_s)
        parts.append(f'<line class="event" x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y1}" stroke="#000" '
                     f'stroke-dasharray="3,2"><title>{html.escape(str(e.label))} at {e.time_s:g} s</title></line>'
                     f'<text x="{x + 2:.1f}" y="{y0 + 9}" font-size="9" fill="#000">{html.escape(str(e.label))}'
                     f'</text>')
    parts.append("</svg>")
    return "".join(parts)


def _tick_step(duration: float) -> float:
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if duration / s <= 12:
            return float(s)
    return float(math.ceil(duration / 12))


def _run_duration(run: dict) -> float | None:
    """A video's length as its run.json records it (`video.duration_s`, worked out once by write_reports); a
    run.json written before that field gives it from the same numbers (frames decoded / fps used)."""
    v = run.get("video", {})
    if v.get("duration_s") is not None:
        return float(v["duration_s"])
    return run.get("counts", {}).get("frames_decoded", 0) / v["fps_used"] if v.get("fps_used") else None


def write_video_page(out: Path, video: Path, frames: pd.DataFrame, timeline: pd.DataFrame, summary: pd.DataFrame,
                     run: dict, *, classes: list[str], card: dict | None = None, thumbs: C.Crops | None = None,
                     people: People | None = None, episodes: pd.DataFrame | None = None,
                     events: pd.DataFrame | None = None) -> Path:
    """OUT/report.html of a video run and its track thumbnails under OUT/thumbs/ (cut from the video at each track's
    highest-confidence row of frames.csv). The tables are the ones frames/timeline/summary.csv were written from.
    `thumbs`: the thumbnails from `track_thumbs`, already cut in another pass over the video (the saved faces');
    without it they are cut here. `people` (--people): a card per person, their picture cut in the same pass.
    `episodes` (episodes.csv; read from OUT where not given) are drawn on each track's timeline and listed on its
    card, each linking the player to its onset; `events` (--events) are marked on the timelines."""
    out = Path(out)
    if episodes is None:
        episodes = _read_if_there(out / "episodes.csv")
    cols = class_colours(classes)
    v = run.get("video", {})
    fps = v.get("fps_used") or 0
    decoded = run.get("counts", {}).get("frames_decoded", 0)
    duration = _run_duration(run)
    if duration is None:
        duration = float(frames["time_s"].max() if len(frames) else 0)
    rows = summary[summary["scope"] == "track"]  # the all-faces row has no track
    if thumbs is None:
        thumbs = track_thumbs(out, frames, summary)
    pictures = person_thumbs(out, people.pictures) if people is not None else None
    pending = [c for c in (thumbs, pictures) if c is not None and not c.cut]
    if pending:
        C.cut_video(video, pending)
    thumb_of = {int(thumbs.rows.loc[label, "face"]): _track_thumb_name(label, thumbs.rows.loc[label])
                for label in thumbs.done}
    rows_of, bins_of = dict(list(frames.groupby("face"))), dict(list(timeline.groupby("face")))
    eps_of = dict(list(episodes.groupby("face"))) if episodes is not None else {}
    tracks = [_track_card(s, rows_of.get(int(s["face"]), frames.iloc[:0]),
                          bins_of.get(int(s["face"]), timeline.iloc[:0]), classes, cols, thumb_of.get(int(s["face"])),
                          duration, fps, eps_of.get(int(s["face"])), events) for _, s in rows.iterrows()]
    persons = _video_people(people, frames, rows, classes, cols, _pictures_cut(people, pictures), duration, episodes)
    if persons is not None:
        of_track = {t: p["person"] for p in persons for t in p["tracks"]}
        for t in tracks:
            t["person"] = of_track.get(int(t["face"]))
    has_video = (out / "annotated.mp4").is_file()
    return _write(out, "report.html", "video.html.j2", name=Path(run.get("input") or video).name,
                  run_facts=_video_facts(run, card, duration, fps, decoded), notes=run.get("notes") or [],
                  video="annotated.mp4" if has_video else None, classes=classes, colors=cols, tracks=tracks,
                  low=LOW_CONFIDENCE, people=persons, episode_rule=_episode_rule(run),
                  events=[] if events is None else [{"t": float(e.time_s), "label": e.label}
                                                    for e in events.itertuples()],
                  tables=_tables(out, ["frames.csv", "timeline.csv", "summary.csv", "episodes.csv", "responses.csv",
                                       "people.csv", "timeline.png", "run.json", "faces/index.csv"]))


def _read_if_there(path: Path) -> pd.DataFrame | None:
    try:
        return read_report(path)
    except (OSError, ValueError):
        return None


def _episode_rule(run: dict) -> str:
    """The rule the page's episodes were found by, from run.json's `derived` ('' where it has none)."""
    d = run.get("derived") or {}
    if "episode_onset" not in d:
        return ""
    line = (f"smoothed over {d['episode_smooth_s']:g} s, from {d['episode_onset']:g} until below "
            f"{d['episode_offset']:g}, at least {d['episode_min_s']:g} s, gaps under {d['episode_bridge_s']:g} s "
            f"bridged{'' if d.get('episode_neutral') else ', neutral left out'}")
    c = run.get("counts", {})
    if d.get("drop_uncertain"):
        line += (f"; {_count(c.get('uncertain_left_out', 0), 'uncertain row')} (confidence < "
                 f"{d['min_confidence']:g}) left out of the summary, timelines and episodes")
    elif c.get("uncertain") is not None:
        line += f"; {_count(c.get('uncertain', 0), 'row')} uncertain (confidence < {d['min_confidence']:g}), counted"
    return line


def _episode_list(eps: pd.DataFrame | None, part: pd.DataFrame, fps: float) -> list[dict]:
    """A track's episodes for its card, each seeking the player to its onset's frame in annotated.mp4."""
    if eps is None or not len(eps):
        return []
    frame_at = dict(zip(part["time_s"].round(6), part["frame"]))
    out = []
    for e in eps.itertuples():
        f = frame_at.get(round(float(e.onset_s), 6))
        out.append({"emotion": e.emotion, "onset": float(e.onset_s), "offset": float(e.offset_s),
                    "duration": float(e.duration_s), "peak": float(e.peak_p),
                    "at": (f + 0.5) / fps if (f is not None and fps) else float(e.onset_s)})
    return out


def _episode_counts(eps: pd.DataFrame | None) -> list[tuple[str, int]]:
    """'happy 3, surprise 1' as pairs: episodes per emotion, most first."""
    if eps is None or not len(eps):
        return []
    counts = eps["emotion"].value_counts()
    return [(str(c), int(n)) for c, n in counts.items()]


def _video_people(people: People | None, frames: pd.DataFrame, tracks: pd.DataFrame, classes: list[str],
                  cols: dict, thumbs: dict[int, str], duration: float,
                  episodes: pd.DataFrame | None = None) -> list[dict] | None:
    """The video page's person cards (None without --people): people.csv's row, the person's tracks (those frames.csv
    gives their number, as summary.csv has them) linked to the track cards, and a strip of when they are on screen."""
    if people is None:
        return None
    known = frames[frames["person"].notna()]
    tracks_of = {int(p): set(g["face"].astype(int)) for p, g in known.groupby(known["person"].astype(int))}
    cards = []
    for _, p in people.table.iterrows():
        mine = tracks[tracks["face"].astype(int).isin(tracks_of.get(int(p["person"]), set()))]
        segments = [{"face": int(s["face"]), "first": float(s["first_s"]), "last": float(s["last_s"]),
                     "dominant": s["dominant"]} for _, s in mine.iterrows()]
        eps = episodes[episodes["face"].isin([sg["face"] for sg in segments])] if episodes is not None else None
        cards.append(_person_card(p, classes, cols, thumbs.get(int(p["person"])),
                                  seconds=_num(p["seconds_on_screen"], "{:.1f}"), faces=_count(int(p["faces"]), "face"),
                                  first=_num(p["first_seen_s"], "{:.1f}"), last=_num(p["last_seen_s"], "{:.1f}"),
                                  tracks=[sg["face"] for sg in segments], svg=presence_svg(segments, duration, cols),
                                  episodes=_episode_counts(eps)))
    return cards


def track_thumbs(out: Path, frames: pd.DataFrame, summary: pd.DataFrame) -> C.Crops:
    """The track cards' thumbnails as a crop request: each track of summary.csv cut at its most confident row of
    frames.csv, written as OUT/thumbs/track<id>.jpg (OUT/thumbs/ emptied first). Short tracks have no card."""
    _fresh_dir(Path(out) / "thumbs")
    keep = frames[frames["face"].isin(summary.loc[summary["scope"] == "track", "face"].astype("int64"))]
    best = keep.loc[keep.groupby("face")["confidence"].idxmax()] if len(keep) else keep
    return C.Crops(best, partial(_write_thumb, Path(out), _track_thumb_name), margin=0.15)


def _track_thumb_name(label, r: pd.Series) -> str:
    return f"thumbs/track{int(r['face'])}.jpg"


def _track_card(s: pd.Series, part: pd.DataFrame, tl: pd.DataFrame, classes: list[str], cols: dict,
                thumb: str | None, duration: float, fps: float, eps: pd.DataFrame | None = None,
                events: pd.DataFrame | None = None) -> dict:
    """One track's card: its summary.csv row, a few evenly spread low-confidence moments among its frames.csv
    rows (`part`), its timeline SVG from its timeline.csv rows (`tl`). A moment shows its `time_s` and seeks the
    player to the middle of its frame in annotated.mp4, which plays at `fps` (a variable-rate original's clock
    drifts from it)."""
    low = part[part["confidence"] < LOW_CONFIDENCE]
    # One moment per time the page shows (0.1 s): frames a few hundredths apart read as the same link twice.
    shown = low.assign(shown_t=low["time_s"].round(1)).drop_duplicates("shown_t")
    picks = shown.iloc[np.unique(np.linspace(0, len(shown) - 1, min(LOW_MOMENTS, len(shown))).round().astype(int))] \
        if len(shown) else shown
    return {"face": str(s["face"]), "dominant": s["dominant"], "seconds": _num(s["seconds_on_screen"], "{:.1f}"),
            "frames": int(s["frames"]), "first": _num(s["first_s"], "{:.1f}"), "last": _num(s["last_s"], "{:.1f}"),
            "bar": _bar(s, classes, cols), "mean_p": {c: float(s[f"mean_p_{c}"]) for c in classes}, "thumb": thumb,
            "low": [{"t": float(m.time_s), "at": (m.frame + 0.5) / fps if fps else float(m.time_s),
                     "emotion": m.emotion, "confidence": float(m.confidence)}
                    for m in picks.itertuples()],
            "low_more": max(0, len(low) - len(picks)), "episodes": _episode_list(eps, part, fps),
            "svg": timeline_svg(tl, classes, cols, duration, episodes=eps, events=events)}


def _video_facts(run: dict, card: dict | None, duration: float, fps: float, decoded: int) -> list[tuple]:
    v, c = run.get("video", {}), run.get("counts", {})
    facts = _common_facts(run, card)
    shown = "kept" if run.get("options", {}).get("keep_short_tracks") else "not shown"
    facts[1:1] = [("status", run.get("status")),
                  ("duration", f"{duration:.2f} s at {fps:g} fps, {v.get('width')}x{v.get('height')}"),
                  ("frames analysed", (f"{c.get('frames_analysed')} of {decoded} decoded "
                                       f"(every {v.get('analyse_every')}); {_count(c.get('faces'), 'face')} in "
                                       f"{_count(c.get('tracks'), 'track')} ({c.get('short_tracks', 0)} short, "
                                       f"{shown})"))]
    return facts


# --- a batch of videos -----------------------------------------------------------------------------------------

def write_index_page(index_dir: Path, items: list[dict], command: str | None = None,
                     people: People | None = None) -> Path:
    """OUT/index.html of a batch: one row per video. `items`: source, out (its report folder), status, error.
    `people` (--people): a card per person of the batch, with the picture a video page cut and their tracks in
    each video, linked to those pages' track cards."""
    index_dir = Path(index_dir)
    videos = []
    for it in items:
        o = Path(it["out"])
        row = {"source": it["source"], "status": it.get("status", ""), "duration": "", "tracks": "", "short": "",
               "faces": "", "dominant": "", "line": it.get("error") or "", "link": None}
        if row["status"] == "failed":  # a report left in its folder is an earlier run's, not this one's
            videos.append(row)
            continue
        page = o / "report.html"
        if page.is_file():
            row["link"] = os.path.relpath(page, index_dir)
        run = read_record(o / "run.json")
        try:
            s = read_report(o / "summary.csv")
        except (OSError, ValueError):
            run = None
        if run is None:
            videos.append(row)
            continue
        tracks = s[s["scope"] == "track"]  # what the video's summary counts (short tracks left out by default)
        # files.csv counts every track: the short ones are named, so the two tables can be told apart.
        short = run.get("counts", {}).get("short_tracks", 0)
        kept = run.get("options", {}).get("keep_short_tracks", True)
        row.update(duration=_num(_run_duration(run), "{:.1f}"), tracks=len(tracks),
                   short=f"{short}, {'kept' if kept else 'not shown'}" if short else "0",
                   faces=int(tracks["frames"].sum()), status=run.get("status") or it.get("status", ""))
        allrow = s[s["scope"] == "all"]
        if len(allrow) and int(allrow.iloc[0]["frames"]) > 0:
            row["dominant"], row["line"] = allrow.iloc[0]["dominant"], _top_shares(allrow.iloc[0])
        elif not row["line"]:
            row["line"] = "no faces"
        videos.append(row)
    facts = [("written", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")), ("command", command)]
    return _write(index_dir, "index.html", "index.html.j2", videos=videos, total=_batch_total(index_dir, videos),
                  run_facts=facts, people=_batch_people(index_dir, people),
                  episodes=_episode_grid(index_dir, by_person=people is not None,
                                         pages={v["source"]: v["link"] for v in videos if v["link"]}))


def _episode_grid(index_dir: Path, by_person: bool, pages: dict[str, str]) -> dict | None:
    """The index's count of episodes per emotion (the batch episodes.csv beside it): per person with --people
    (tracks without a number left out, and said), each linked to the person's card below; else per video and
    track, each linked to the track's card on the video's page (`pages`: source -> page). None without the
    table."""
    eps = _read_if_there(index_dir / "episodes.csv")
    if eps is None:
        return None
    emotions = list(eps["emotion"].value_counts().index)
    if by_person:
        known = eps[eps["person"].notna()]
        groups = [(f"person {p}", None, f"person-{p}", g)
                  for p, g in known.groupby(known["person"].astype(int), sort=True)]
    else:
        groups = [(f"{s} track {int(f)}", pages.get(s), f"track-{int(f)}" if s in pages else None, g)
                  for (s, f), g in eps.groupby(["source", "face"], sort=False)]
    rows = []
    for who, page, anchor, g in groups:
        counts = g["emotion"].value_counts()
        rows.append({"who": who, "page": page, "anchor": anchor, "total": len(g),
                     "n": [int(counts.get(e, 0)) for e in emotions]})
    unnumbered = int(eps["person"].isna().sum()) if by_person else 0
    return {"emotions": emotions, "rows": rows, "total": len(eps), "unnumbered": unnumbered}


def _batch_people(index_dir: Path, people: People | None) -> list[dict] | None:
    """The index's person cards (None without --people): the batch people.csv's row, and per video the person's
    tracks with their seconds on screen, each linked to its card on the video's page."""
    if people is None:
        return None
    classes = [c[len("share_"):] for c in people.table.columns if c.startswith("share_")]
    cols = class_colours(classes)
    seen = people.appearances
    cards = []
    for _, p in people.table.iterrows():
        number = int(p["person"])
        videos = []
        for (source, out), g in seen[seen["person"] == number].groupby(["source", "out"], sort=False):
            page = Path(out) / "report.html"
            link = os.path.relpath(page, index_dir) if page.is_file() else None
            videos.append({"source": source, "link": link,
                           "tracks": [{"face": int(t.face), "seconds": _num(t.seconds_on_screen, "{:.1f}")}
                                      for t in g.itertuples()]})
        picture = people.picture_files.get(number)
        thumb = os.path.relpath(picture, index_dir) if picture is not None and Path(picture).is_file() else None
        cards.append(_person_card(p, classes, cols, thumb, seconds=_num(p["seconds_on_screen"], "{:.1f}"),
                                  tracks=_count(int(p["tracks"]), "track"), n_videos=_count(int(p["videos"]), "video"),
                                  first_source=p["first_source"], first=_num(p["first_seen_s"], "{:.1f}"),
                                  last_source=p["last_source"], last=_num(p["last_seen_s"], "{:.1f}"),
                                  videos=videos[:PERSON_LINKS], more=max(0, len(videos) - PERSON_LINKS)))
    return cards


def _top_shares(row: pd.Series, n: int = 3) -> str:
    """'happy 60 %, neutral 30 %, sad 10 %': a summary row's largest shares of faces."""
    shares = sorted(((float(row[k]), k[len("share_"):]) for k in row.index if k.startswith("share_")), reverse=True)
    return ", ".join(f"{c} {100 * p:.0f} %" for p, c in shares[:n] if p > 0)


def _batch_total(index_dir: Path, videos: list[dict]) -> dict | None:
    """The index's all-videos row: the batch summary.csv's all row (faces, tracks, dominant, shares) and the
    listed videos' summed duration; None without a batch summary beside the page."""
    try:
        s = read_report(index_dir / "summary.csv")
    except (OSError, ValueError):
        return None
    if "scope" not in s or "tracks" not in s or not (s["scope"] == "all").any():
        return None
    a = s[s["scope"] == "all"].iloc[0]
    durations = [float(v["duration"]) for v in videos if v["duration"] != ""]
    return {"source": f"all {_count(len(videos), 'video')}", "duration": f"{sum(durations):.1f}" if durations else "",
            "tracks": int(a["tracks"]), "faces": int(a["faces"]),
            "dominant": "" if pd.isna(a["dominant"]) else a["dominant"],
            "line": _top_shares(a) if int(a["faces"]) else "no faces"}
