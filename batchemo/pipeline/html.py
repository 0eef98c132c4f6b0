"""report.html: one page per run (folder or video) and an index page for a batch of videos.

The page opens from the file system with no network: styles and scripts are inline, pictures are files inside the
output folder linked by relative, URL-quoted paths (thumbnails under OUT/thumbs/). Every number on the page is read
from the tables the CSVs were written from (files/faces/summary, frames/timeline/summary), never recomputed.
Templates are Jinja2 with autoescaping on: file names are data.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd

from . import crops as C
from .report import read_report, write_atomic

GALLERY_CAP = 500  # faces in the folder page's gallery (lowest confidence first)
LOW_CONFIDENCE = 0.5
LOW_MOMENTS = 6  # low-confidence moments listed per track
PALETTE = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c", "neutral": "#7f7f7f",
           "sad": "#1f77b4", "surprise": "#ff7f0e", "contempt": "#bcbd22"}
_EXTRA = ["#17becf", "#e377c2", "#aec7e8", "#98df8a"]

_BASE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;padding:12px 20px;color:#222}
h1{font-size:22px;margin:8px 0} h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none} table.sortable th:after{content:" \2195";color:#aaa}
table.sortable th.asc:after{content:" \25B2";color:#333} table.sortable th.desc:after{content:" \25BC";color:#333}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0} dl.facts dt{color:#666}
dl.facts dd{margin:0;word-break:break-all} code{background:#f4f4f4;padding:1px 3px}
.err{color:#b00} .muted{color:#777} .note{background:#fff8dc;padding:6px 10px;border-left:3px solid #e0b000}
.chip{display:inline-block;padding:2px 9px;margin:2px;border:1px solid #ccc;border-radius:12px;cursor:pointer;background:#fff}
.chip.on{background:#333;color:#fff;border-color:#333}
.gallery{display:flex;flex-wrap:wrap;gap:8px}
.gallery figure{margin:0;width:120px;font-size:12px} .gallery img{width:112px;height:112px;object-fit:contain;background:#eee;display:block}
.gallery figcaption{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.bar{display:flex;height:14px;width:100%;max-width:420px;border-radius:3px;overflow:hidden;background:#eee}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px;width:340px} .card img{width:112px;height:112px;object-fit:contain;background:#eee;float:left;margin:0 10px 6px 0}
.card h3{margin:0 0 4px;font-size:15px} .shares td{padding:1px 4px;border:0;font-size:12px}
a.seek{cursor:pointer;color:#06c;text-decoration:underline}
svg.timeline{cursor:crosshair;display:block;width:100%;max-width:1000px;height:auto}
</style></head><body>
{% block body %}{% endblock %}
<script>
function sortTable(th){var t=th.closest('table'),i=Array.prototype.indexOf.call(th.parentNode.children,th),
 asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});
 th.classList.add(asc?'asc':'desc');var b=t.tBodies[0],num=th.classList.contains('n'),s=asc?1:-1;
 var keyed=Array.prototype.map.call(b.rows,function(r,k){var v=r.cells[i].textContent;if(num){v=parseFloat(v);if(isNaN(v))v=-1e99}return [v,k,r]});
 keyed.sort(function(a,c){var d=num?a[0]-c[0]:(a[0]<c[0]?-1:a[0]>c[0]?1:0);return d?s*d:a[1]-c[1]});
 b.textContent='';var f=document.createDocumentFragment();keyed.forEach(function(e){f.appendChild(e[2])});b.appendChild(f)}
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){sortTable(th)})});
(function(){var m=location.hash.match(/sort=([a-z_]+)(-desc)?/);if(!m)return;var th=document.querySelector('table.sortable th[data-key="'+m[1]+'"]');
 if(th){sortTable(th);if(m[2])sortTable(th)}})();
{% block script %}{% endblock %}
document.documentElement.setAttribute('data-js','ok');
</script></body></html>
"""

_FACTS = r"""{% macro facts(items) %}<dl class="facts">{% for k, v in items %}{% if v is not none and v != "" %}
<dt>{{ k }}</dt><dd>{% if k == "command" %}<code>{{ v }}</code>{% else %}{{ v }}{% endif %}</dd>{% endif %}{% endfor %}</dl>{% endmacro %}
{% macro sharebar(shares) %}<div class="bar" title="{% for c, s, col in shares %}{{ c }} {{ '%.1f' % (100 * s) }} %; {% endfor %}">{% for c, s, col in shares %}{% if s > 0 %}<span style="width:{{ '%.3f' % (100 * s) }}%;background:{{ col }}"></span>{% endif %}{% endfor %}</div>{% endmacro %}
"""

_FOLDER = r"""{% extends "base" %}{% from "facts" import facts, sharebar %}
{% block title %}batchemo: {{ name }}{% endblock %}
{% block body %}
<h1>Faces and emotions in <code>{{ name }}</code></h1>
{{ facts(run_facts) }}
<h2>Totals</h2>
<p>{{ n_files }} files, {{ n_ok }} read, {{ n_error }} errors, {{ n_skipped }} skipped (not images); {{ n_faces }} faces.
{% if tables %}Tables: {% for t in tables %}<a href="{{ t|urlq }}">{{ t }}</a>{{ ", " if not loop.last }}{% endfor %}.{% endif %}</p>
<table id="summary"><thead><tr><th>group</th><th class="n">faces</th>{% for c in classes %}<th class="n"><span class="swatch" style="background:{{ colors[c] }}"></span>{{ c }}</th>{% endfor %}<th>shares</th></tr></thead><tbody>
{% for g in groups %}<tr><td>{{ g.name }}</td><td class="n">{{ g.faces }}</td>{% for c in classes %}<td class="n" data-share="{{ g.share[c] }}">{{ g.n[c] }}{% if g.faces %} <span class="muted">({{ '%.1f' % (100 * g.share[c]) }} %)</span>{% endif %}</td>{% endfor %}
<td style="min-width:200px">{{ sharebar(g.bar) }}</td></tr>{% endfor %}
</tbody></table>

<h2>Faces, least confident first</h2>
{% if gallery_note %}<p class="note">{{ gallery_note }}</p>{% endif %}
{% if gallery %}<div id="filters"><span class="chip on" data-emotion="">all ({{ gallery|length }})</span>{% for c, n in gallery_counts %}<span class="chip" data-emotion="{{ c }}"><span class="swatch" style="background:{{ colors[c] }}"></span>{{ c }} ({{ n }})</span>{% endfor %}</div>
<div class="gallery" id="gallery">{% for f in gallery %}<figure data-emotion="{{ f.emotion }}" data-confidence="{{ f.confidence }}">
{% if f.thumb %}<img loading="lazy" src="{{ f.thumb|urlq }}" alt="face {{ f.face }} in {{ f.source }}">{% endif %}
<figcaption title="{{ f.source }} face {{ f.face }}"><span class="swatch" style="background:{{ colors[f.emotion] }}"></span>{{ f.emotion }} {{ '%.2f' % f.confidence }}<br>{% if f.link %}<a href="{{ f.link|urlq }}">{{ f.source }}</a>{% else %}{{ f.source }}{% endif %} #{{ f.face }}</figcaption></figure>{% endfor %}</div>
{% else %}<p>No faces found.</p>{% endif %}

<h2>Files with no face ({{ no_face|length }})</h2>
{% if no_face %}<ul id="noface">{% for f in no_face %}<li>{% if f.link %}<a href="{{ f.link|urlq }}">{{ f.source }}</a>{% else %}{{ f.source }}{% endif %}</li>{% endfor %}</ul>{% else %}<p>Every photo read has at least one face.</p>{% endif %}

<h2>Every file ({{ files|length }}) <span class="muted" style="font-size:13px">click a header to sort</span></h2>
<table class="sortable" id="files"><thead><tr><th data-key="file">file</th><th data-key="status">status</th><th class="n" data-key="faces">faces</th><th class="n" data-key="width">width</th><th class="n" data-key="height">height</th><th data-key="error">error</th></tr></thead><tbody>
{% for f in files %}<tr><td>{% if f.link %}<a href="{{ f.link|urlq }}">{{ f.source }}</a>{% else %}{{ f.source }}{% endif %}</td><td>{{ f.status }}</td><td class="n">{{ f.faces }}</td><td class="n">{{ f.width }}</td><td class="n">{{ f.height }}</td><td class="err">{{ f.error }}</td></tr>
{% endfor %}</tbody></table>
{% endblock %}
{% block script %}
document.querySelectorAll('#filters .chip').forEach(function(ch){ch.addEventListener('click',function(){
 var e=ch.getAttribute('data-emotion');document.querySelectorAll('#filters .chip').forEach(function(c){c.classList.toggle('on',c===ch)});
 document.querySelectorAll('#gallery figure').forEach(function(f){f.style.display=(!e||f.getAttribute('data-emotion')===e)?'':'none'})})});
{% endblock %}
"""

_VIDEO = r"""{% extends "base" %}{% from "facts" import facts, sharebar %}
{% block title %}batchemo: {{ name }}{% endblock %}
{% block body %}
<h1>Faces and emotions in <code>{{ name }}</code></h1>
{{ facts(run_facts) }}
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
{% if tables %}<p>Tables: {% for t in tables %}<a href="{{ t|urlq }}">{{ t }}</a>{{ ", " if not loop.last }}{% endfor %}.</p>{% endif %}
{% if video %}<video id="player" controls preload="metadata" src="{{ video|urlq }}" style="max-width:100%;max-height:460px;background:#000"></video>{% else %}<p class="muted">No annotated video in this report (--no-annotate).</p>{% endif %}
<h2>Timeline per track <span class="muted" style="font-size:13px">smoothed share of each emotion over time{% if video %}; click to seek the player{% endif %}</span></h2>
<p>{% for c in classes %}<span class="swatch" style="background:{{ colors[c] }}"></span>{{ c }} &nbsp; {% endfor %}</p>
{% for t in tracks %}<div class="track-timeline"><b>track {{ t.face }}</b>{{ t.svg|safe }}</div>{% else %}<p>No tracks.</p>{% endfor %}
<h2>Tracks ({{ tracks|length }})</h2>
<div class="cards">{% for t in tracks %}<div class="card" id="track-{{ t.face }}">
{% if t.thumb %}<img src="{{ t.thumb|urlq }}" alt="track {{ t.face }}">{% endif %}
<h3>track {{ t.face }}: {{ t.dominant }}</h3>
<div>{{ t.seconds }} s on screen ({{ t.frames }} frames), {{ t.first }}–{{ t.last }} s</div>
<div style="clear:both"></div>{{ sharebar(t.bar) }}
<table class="shares">{% for c, s, col in t.bar %}<tr><td><span class="swatch" style="background:{{ col }}"></span>{{ c }}</td><td class="n">{{ '%.1f' % (100 * s) }} %</td><td class="n muted">mean p {{ '%.3f' % t.mean_p[c] }}</td></tr>{% endfor %}</table>
<div>Low confidence (&lt; {{ low }}): {% for m in t.low %}<a class="seek" data-t="{{ m.t }}" title="{{ m.emotion }} {{ '%.2f' % m.confidence }}">{{ '%.1f' % m.t }} s</a> {% else %}<span class="muted">none</span>{% endfor %}{% if t.low_more %} <span class="muted">(+{{ t.low_more }} more frames)</span>{% endif %}</div>
</div>{% endfor %}</div>
{% endblock %}
{% block script %}
var P=document.getElementById('player');function seek(t){if(P){P.currentTime=t;P.scrollIntoView({block:'nearest'});}}
document.querySelectorAll('a.seek').forEach(function(a){a.addEventListener('click',function(){seek(parseFloat(a.getAttribute('data-t')))})});
document.querySelectorAll('svg.timeline').forEach(function(s){s.addEventListener('click',function(ev){
 var r=s.getBoundingClientRect(),x0=parseFloat(s.getAttribute('data-x0')),x1=parseFloat(s.getAttribute('data-x1')),W=parseFloat(s.getAttribute('data-w')),
 d=parseFloat(s.getAttribute('data-duration')),x=(ev.clientX-r.left)*W/r.width;seek(Math.max(0,Math.min(d,(x-x0)/(x1-x0)*d)))})});
{% endblock %}
"""

_INDEX = r"""{% extends "base" %}{% from "facts" import facts, sharebar %}
{% block title %}batchemo: {{ videos|length }} videos{% endblock %}
{% block body %}
<h1>{{ videos|length }} videos</h1>
{{ facts(run_facts) }}
<table class="sortable" id="videos"><thead><tr><th data-key="video">video</th><th data-key="status">status</th><th class="n" data-key="duration">duration (s)</th><th class="n" data-key="tracks">tracks</th><th class="n" data-key="faces">faces</th><th data-key="dominant">dominant</th><th data-key="summary">summary</th></tr></thead><tbody>
{% for v in videos %}<tr><td>{% if v.link %}<a href="{{ v.link|urlq }}">{{ v.source }}</a>{% else %}{{ v.source }}{% endif %}</td><td>{{ v.status }}</td><td class="n">{{ v.duration }}</td><td class="n">{{ v.tracks }}</td><td class="n">{{ v.faces }}</td><td>{{ v.dominant }}</td><td>{{ v.line }}</td></tr>
{% endfor %}</tbody></table>
{% endblock %}
"""

_ENV = jinja2.Environment(loader=jinja2.DictLoader({"base": _BASE, "facts": _FACTS, "folder": _FOLDER,
                                                     "video": _VIDEO, "index": _INDEX}),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
_ENV.filters["urlq"] = lambda p: quote(str(p).replace(os.sep, "/"), safe="/")


def colors(classes: list[str]) -> dict[str, str]:
    extra = iter(_EXTRA * 4)
    return {c: PALETTE.get(c) or next(extra) for c in classes}


def _num(v, fmt="{:g}"):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return fmt.format(v)


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


# --- folder ----------------------------------------------------------------------------------------------------

def write_folder_page(out: Path, root: Path, files: pd.DataFrame, faces: pd.DataFrame, summary: pd.DataFrame,
                      run: dict, classes: list[str], card: dict | None = None, cap: int = GALLERY_CAP,
                      keep_side: int = 640) -> Path:
    """OUT/report.html of a folder run, and its thumbnails under OUT/thumbs/ (the gallery's faces, least confident
    first, at most `cap`). The tables are the ones files.csv, faces.csv and summary.csv were written from."""
    out, root = Path(out), Path(root)
    cols = colors(classes)
    annotated = out / "annotated"
    has_copy = lambda s: (annotated / s).is_file()  # noqa: E731

    def link(source: str) -> str | None:
        return f"annotated/{source}" if has_copy(source) else None

    # Gallery: least confident first, capped; thumbnails cut from the photos at faces.csv's boxes.
    order = faces.sort_values("confidence", kind="stable")
    shown = order.head(cap)
    thumbs = out / "thumbs"
    _fresh_dir(thumbs)
    names = {i: f"thumbs/{i}.jpg" for i in shown.index}
    by_source = shown.groupby("source", sort=False).groups

    def thumbs_of(source):
        done = []
        for _, img, scale in C.photo_images(root, [source], keep_side):
            for i in by_source[source]:
                r = shown.loc[i]
                crop = C.cut(img, (r["x"], r["y"], r["w"], r["h"]), scale, margin=0.15)
                if crop is not None:
                    C.write_jpeg(out / names[i], C.thumbnail(crop))
                    done.append(i)
        return done

    with ThreadPoolExecutor(2) as pool:
        written = {i for d in pool.map(thumbs_of, list(by_source)) for i in d}
    gallery = [{"source": r.source, "face": int(r.face), "emotion": r.emotion, "confidence": float(r.confidence),
                "thumb": names[i] if i in written else None, "link": link(r.source)}
               for i, r in zip(shown.index, shown.itertuples())]
    counts = shown["emotion"].value_counts()
    gallery_counts = [(c, int(counts[c])) for c in classes if counts.get(c, 0)]
    note = (f"Showing the {len(shown)} least confident of {len(faces)} faces; all are in faces.csv."
            if len(faces) > len(shown) else "")

    groups = []
    for _, g in summary.iterrows():
        n = int(g["faces"])
        groups.append({"name": g["group"], "faces": n, "n": {c: int(g[f"n_{c}"]) for c in classes},
                       "share": {c: float(g[f"share_{c}"]) if pd.notna(g[f"share_{c}"]) else 0.0 for c in classes},
                       "bar": _bar(g, classes, cols)})
    status = files["status"].astype(str)
    file_rows = [{"source": r.source, "status": r.status, "faces": int(r.faces), "width": _num(r.width),
                  "height": _num(r.height), "error": "" if pd.isna(r.error) else r.error,
                  "link": link(r.source) if r.status == "ok" else None} for r in files.itertuples()]
    no_face = [f for f in file_rows if f["status"] == "ok" and f["faces"] == 0]
    c = run.get("counts", {})
    facts = _common_facts(run, card)
    facts.insert(2, ("counts", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items())))
    return _write(out, "report.html", "folder", name=Path(run.get("input") or root).name or str(root),
                  run_facts=facts, classes=classes, colors=cols, groups=groups, gallery=gallery,
                  gallery_counts=gallery_counts, gallery_note=note, no_face=no_face, files=file_rows,
                  n_files=len(files), n_ok=int((status == "ok").sum()), n_error=int((status == "error").sum()),
                  n_skipped=int((status == "skipped").sum()), n_faces=len(faces),
                  tables=_tables(out, ["files.csv", "faces.csv", "summary.csv", "run.json", "faces/index.csv"]))


# --- video -----------------------------------------------------------------------------------------------------

def timeline_svg(tl: pd.DataFrame, classes: list[str], cols: dict, duration: float, bin_s: float,
                 width: int = 1000, height: int = 110) -> str:
    """A small SVG of one track's smoothed class shares over the video's duration (timeline.csv's smooth_*)."""
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
                         f'<title>{c}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def _tick_step(duration: float) -> float:
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if duration / s <= 12:
            return float(s)
    return float(math.ceil(duration / 12))


def write_video_page(out: Path, video: Path, frames: pd.DataFrame, timeline: pd.DataFrame, summary: pd.DataFrame,
                     run: dict, classes: list[str], card: dict | None = None, bin_s: float = 1.0) -> Path:
    """OUT/report.html of a video run and its track thumbnails under OUT/thumbs/ (cut from the video at each track's
    highest-confidence row of frames.csv). The tables are the ones frames/timeline/summary.csv were written from."""
    out = Path(out)
    cols = colors(classes)
    v = run.get("video", {})
    fps = v.get("fps_used") or 0
    decoded = run.get("counts", {}).get("frames_decoded", 0)
    duration = decoded / fps if fps else float(frames["time_s"].max() if len(frames) else 0)
    rows = summary[summary["scope"] == "track"]  # the all-faces row has no track
    thumbs = out / "thumbs"
    _fresh_dir(thumbs)
    best = {}
    if len(frames) and len(rows):
        keep = frames[frames["face"].astype(str).isin(rows["face"].astype(str))]
        if len(keep):
            for i in keep.groupby("face")["confidence"].idxmax():
                best.setdefault(int(keep.loc[i, "frame"]), []).append(i)
    thumb_of = {}
    for f, img in C.video_images(video, best):
        for i in best[f]:
            r = frames.loc[i]
            crop = C.cut(img, (r["x"], r["y"], r["w"], r["h"]), margin=0.15)
            if crop is not None:
                name = f"thumbs/track{int(r['face'])}.jpg"
                C.write_jpeg(out / name, C.thumbnail(crop))
                thumb_of[str(int(r["face"]))] = name
    tracks = []
    for _, s in rows.iterrows():
        face = str(s["face"])
        part = frames[frames["face"].astype(str) == face]
        low = part[part["confidence"] < LOW_CONFIDENCE]
        picks = low.iloc[np.unique(np.linspace(0, len(low) - 1, min(LOW_MOMENTS, len(low))).round().astype(int))] \
            if len(low) else low
        tl = timeline[timeline["face"].astype(str) == face] if len(timeline) else timeline
        tracks.append({"face": face, "dominant": s["dominant"], "seconds": _num(s["seconds_on_screen"]),
                       "frames": int(s["frames"]), "first": _num(s["first_s"], "{:.1f}"),
                       "last": _num(s["last_s"], "{:.1f}"), "bar": _bar(s, classes, cols),
                       "mean_p": {c: float(s[f"mean_p_{c}"]) for c in classes},
                       "thumb": thumb_of.get(face),
                       "low": [{"t": float(m.time_s), "emotion": m.emotion, "confidence": float(m.confidence)}
                               for m in picks.itertuples()],
                       "low_more": max(0, len(low) - len(picks)),
                       "svg": timeline_svg(tl, classes, cols, duration, bin_s)})
    c = run.get("counts", {})
    facts = _common_facts(run, card)
    facts[1:1] = [("status", run.get("status")),
                  ("duration", f"{duration:.2f} s at {fps:g} fps, {v.get('width')}x{v.get('height')}"),
                  ("frames analysed", (f"{c.get('frames_analysed')} of {decoded} decoded "
                                       f"(every {v.get('analyse_every')}); {c.get('faces')} faces in "
                                       f"{c.get('tracks')} tracks ({c.get('short_tracks', 0)} short, not shown)"))]
    has_video = (out / "annotated.mp4").is_file()
    return _write(out, "report.html", "video", name=Path(run.get("input") or video).name, run_facts=facts,
                  notes=run.get("notes") or [], video="annotated.mp4" if has_video else None, classes=classes,
                  colors=cols, tracks=tracks, low=LOW_CONFIDENCE,
                  tables=_tables(out, ["frames.csv", "timeline.csv", "summary.csv", "timeline.png", "run.json",
                                       "faces/index.csv"]))


# --- a batch of videos -----------------------------------------------------------------------------------------

def write_index_page(index_dir: Path, items: list[dict], command: str | None = None) -> Path:
    """OUT/index.html of a batch: one row per video. `items`: source, out (its report folder), status, error."""
    index_dir = Path(index_dir)
    videos = []
    for it in items:
        o = Path(it["out"])
        row = {"source": it["source"], "status": it.get("status", ""), "duration": "", "tracks": "", "faces": "",
               "dominant": "", "line": it.get("error") or "", "link": None}
        page = o / "report.html"
        if page.is_file():
            row["link"] = os.path.relpath(page, index_dir)
        try:
            run = json.loads((o / "run.json").read_text())
            s = read_report(o / "summary.csv")
        except (OSError, ValueError):
            videos.append(row)
            continue
        c, vv = run.get("counts", {}), run.get("video", {})
        dur = c.get("frames_decoded", 0) / vv["fps_used"] if vv.get("fps_used") else None
        row.update(duration=_num(dur, "{:.1f}"), tracks=int((s["scope"] == "track").sum()),
                   faces=c.get("faces", ""), status=it.get("status") or run.get("status", ""))
        allrow = s[s["scope"] == "all"]
        if len(allrow) and int(allrow.iloc[0]["frames"]) > 0:
            a = allrow.iloc[0]
            row["dominant"] = a["dominant"]
            shares = sorted(((float(a[k]), k[len("share_"):]) for k in s.columns if k.startswith("share_")),
                            reverse=True)
            row["line"] = ", ".join(f"{n} {100 * p:.0f} %" for p, n in shares[:3] if p > 0)
        elif not row["line"]:
            row["line"] = "no faces"
        videos.append(row)
    facts = [("written", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")), ("command", command)]
    return _write(index_dir, "index.html", "index", videos=videos, run_facts=facts)
