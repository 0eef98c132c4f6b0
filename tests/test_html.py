"""report.html (folder, video, batch index) and --save-faces: the pages' content parsed with html.parser, links
that resolve inside the output folder, no network resources, crops that map back to CSV rows and read as a
training folder; headless Chromium (skipped where it is not installed, failed in CI)."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app
from batchemo.jobs.options import FolderOptions, VideoOptions
from batchemo.report import html as H
from batchemo.report.crops import crop_name

from .conftest import SAMPLES, need

runner = CliRunner()
ODD = 'group/odd <b>&"name"#1.png'  # a file name that is markup, an entity, a quote and a URL fragment


class Page(HTMLParser):
    """Elements with their attributes and the text inside, flat: enough to count rows, cards and links."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag not in ("img", "meta", "br", "link", "input", "source", "circle", "line", "rect", "polyline"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def links(self) -> list[str]:
        return [a[k] for _, a in self.elements for k in ("src", "href") if a.get(k)]


def parse(path: Path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    return text, Page(text)


def rows_of(text: str, table_id: str) -> list[str]:
    body = text.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>.*?</tr>", body, flags=re.DOTALL)


def index_links(page: Page) -> tuple[list[str], list[str]]:
    """A batch index's links, unquoted and sorted: (to the video pages, from the videos table; to track cards on
    them, from the episode counts)."""
    links = sorted(unquote(a["href"]) for a in page.find("a"))
    return [x for x in links if "#" not in x], [x for x in links if "#" in x]


def check_offline_and_links(out: Path, text: str, page: Page) -> None:
    """No http(s) resource anywhere (src, href, url()); every relative link resolves to a file in `out`."""
    for link in page.links():
        assert not link.startswith(("http://", "https://", "//")), link
        assert urlparse(link).scheme == "", link
        target = (out / unquote(link.split("#")[0])).resolve()
        assert target.is_file(), f"{link} -> {target} is not there"
        assert target.is_relative_to(out.resolve()), link
    assert not re.search(r"url\(\s*['\"]?https?:", text)
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", text)
    assert "http://" not in text and "https://" not in text


@pytest.fixture(scope="module")
def folder_report(tmp_path_factory, model):
    src = tmp_path_factory.mktemp("photos") / "photos"
    shutil.copytree(SAMPLES / "images", src)
    shutil.copy(src / "astronaut.png", src / ODD)
    (src / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
    out = tmp_path_factory.mktemp("fr") / "report"
    batchemo.analyze_folder(src, out=out, model=model, options=FolderOptions(save_faces=True), progress=False,
                            log=lambda m: None)
    return src, out


@pytest.fixture(scope="module")
def video_report(tmp_path_factory, model):
    out = tmp_path_factory.mktemp("vr") / "report"
    res = batchemo.analyze_video(SAMPLES / "video" / "two_faces.mp4", out=out, model=model,
                                 options=VideoOptions(save_faces=True), progress=False)
    return out, res


def test_folder_page_rows_numbers_gallery_and_links(folder_report):
    _, out = folder_report
    text, page = parse(out / "report.html")
    files = batchemo.read_report(out / "files.csv")
    faces = batchemo.read_report(out / "faces.csv")
    summary = pd.read_csv(out / "summary.csv")
    run = json.loads((out / "run.json").read_text())

    assert len(rows_of(text, "files")) == len(files)  # one row per file, the bad one included
    assert "broken.jpg" in text and files.loc[files["source"] == "broken.jpg", "status"].item() == "error"
    words = "".join(page.text)
    for s in files["source"]:
        assert s in words  # as text (unescaped by the parser)
    assert "<b>" not in text and "&lt;b&gt;" in text  # the odd name is escaped, not markup
    summary_rows = rows_of(text, "summary")
    assert len(summary_rows) == len(summary)
    for row, (_, s) in zip(summary_rows, summary.iterrows()):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
        assert cells[0] == str(s["group"]) and cells[1] == str(s["faces"])
        for k, c in enumerate(run["model"]["classes"]):
            assert cells[2 + k].startswith(str(s[f"n_{c}"]))
            if s["faces"]:
                assert f"({100 * s[f'share_{c}']:.1f} %)" in cells[2 + k]
    figures = [a for a in page.find("figure")]
    assert len(figures) == len(faces)
    conf = [float(f["data-confidence"]) for f in figures]
    assert conf == sorted(conf)  # least confident first
    imgs = [a for a in page.find("img") if a.get("src", "").startswith("thumbs/")]
    assert len(imgs) == len(faces) and all(a.get("loading") == "lazy" for a in imgs)
    assert "no face/rocket.jpg" in "".join(re.findall(r'id="noface".*?</ul>', text, flags=re.DOTALL))
    check_offline_and_links(out, text, page)
    assert any(unquote(link) == f"annotated/{ODD}" for link in page.links())  # URL-quoted, and it resolves


def test_folder_gallery_is_capped_least_confident_first(folder_report, model, tmp_path):
    src, shared = folder_report
    out = tmp_path / "report"  # a copy: the module's report stays whole for the tests after this one
    shutil.copytree(shared, out)
    faces = batchemo.read_report(out / "faces.csv")
    run = json.loads((out / "run.json").read_text())
    H.write_folder_page(out, src, batchemo.read_report(out / "files.csv"), faces, pd.read_csv(out / "summary.csv"),
                        run, classes=model.classes, card=model.card, cap=3)
    text, page = parse(out / "report.html")
    conf = [float(f["data-confidence"]) for f in page.find("figure")]
    assert conf == sorted(faces["confidence"])[:3]
    assert f"Showing the 3 least confident of {len(faces)} faces" in text
    assert len(list((out / "thumbs").glob("*.jpg"))) == 3  # old thumbnails go
    check_offline_and_links(out, text, page)


def test_video_page_cards_timeline_and_player(video_report):
    out, res = video_report
    text, page = parse(out / "report.html")
    summary = batchemo.read_report(out / "summary.csv")
    tracks = summary[summary["scope"] == "track"]
    assert len(tracks) == 2
    cards = [a for t, a in page.elements if t == "div" and a.get("class") == "card"]
    assert len(cards) == len(tracks)
    assert len(page.find("svg")) == len(tracks)
    assert page.find("video", src="annotated.mp4")
    for _, t in tracks.iterrows():
        card = text.split(f'id="track-{t["face"]}"', 1)[1].split('<div class="card"', 1)[0]
        assert f"{t['seconds_on_screen']:.1f} s on screen ({t['frames']} frames)" in card
        assert f"track {t['face']}: {t['dominant']}" in card
        assert f'src="thumbs/track{t["face"]}.jpg"' in card
    words = "".join(page.text)
    assert f"{res.frames_analysed} of {res.frames_decoded} decoded" in words
    check_offline_and_links(out, text, page)


def test_video_page_lists_low_confidence_moments(tmp_path, model):
    """Each at its time, seeking the player to its frame: a variable-rate original (here paused 0.5 s after
    frame 4) runs ahead of annotated.mp4, which plays its frames at a constant rate."""
    times = [i / 5 + 0.5 * (i > 4) for i in range(10)]
    frames = pd.DataFrame({"source": "v.mp4", "frame": range(10), "time_s": times, "face": 0,
                           "x": 0, "y": 0, "w": 10, "h": 10, "emotion": "happy",
                           "confidence": [0.9] * 7 + [0.3, 0.4, 0.45]})
    for c in model.classes:
        frames[f"p_{c}"] = frames["confidence"] if c == "happy" else (1 - frames["confidence"]) / 6
    from batchemo import report as R

    summary = R.track_summary(frames, model.classes, 0.2)
    timeline = R.timeline_table(frames, model.classes, 1.0)
    run = {"input": "v.mp4", "counts": {"frames_decoded": 10, "frames_analysed": 10}, "video": {"fps_used": 5.0}}
    H.write_video_page(tmp_path, tmp_path / "missing.mp4", frames, timeline, summary, run, classes=model.classes)
    text, page = parse(tmp_path / "report.html")
    moments = page.find("a", **{"class": "seek"})
    assert [float(a["data-t"]) for a in moments] == pytest.approx([7.5 / 5, 8.5 / 5, 9.5 / 5])
    assert re.findall(r'class="seek"[^>]*>([\d.]+ s)</a>', text) == ["1.9 s", "2.1 s", "2.3 s"]
    assert not page.find("video")  # no annotated.mp4: no player, no dead link
    check_offline_and_links(tmp_path, text, page)


def test_no_html_writes_no_page(tmp_path):
    r = runner.invoke(app, ["folder", str(SAMPLES / "images"), "--out", str(tmp_path / "f"), "--no-html",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "f" / "report.html").exists() and not (tmp_path / "f" / "thumbs").exists()
    r = runner.invoke(app, ["video", str(SAMPLES / "video" / "two_faces.mp4"), "--out", str(tmp_path / "v"),
                            "--no-html", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "v" / "report.html").exists() and (tmp_path / "v" / "summary.csv").exists()
    assert not (tmp_path / "v" / "faces").exists()  # --save-faces is off by default


def test_batch_index_links_each_video_page(tmp_path, model):
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a.mp4", "b & <c>.mp4"):
        shutil.copy(SAMPLES / "video" / "two_faces.mp4", vids / name)
    (vids / "broken.mp4").write_bytes(b"not a video")
    results = batchemo.analyze_videos([vids], out=tmp_path / "out", model=model, progress=False)
    assert len(results) == 3
    text, page = parse(tmp_path / "out" / "index.html")
    assert len(rows_of(text, "videos")) == 3
    pages, cards = index_links(page)
    assert pages == ["a/report.html", "b & <c>/report.html"]
    assert cards and {c.split("#")[0] for c in cards} == set(pages)  # both videos' tracks have episodes
    for name in ("a", "b & <c>"):
        # The row's top emotion and its share of the faces shown, counted here from the video's own frames.csv
        frames = batchemo.read_report(tmp_path / "out" / name / "frames.csv")
        shares = frames.loc[~frames["short_track"], "emotion"].value_counts(normalize=True)
        row = next(r for r in rows_of(text, "videos") if html.escape(f"{name}.mp4") in r)
        assert f"{shares.index[0]} {100 * shares.iloc[0]:.0f} %" in row, row
    check_offline_and_links(tmp_path / "out", text, page)


def test_the_batch_index_is_this_runs_own(tmp_path, model):
    """A video that fails this time shows its error, not the report an earlier run left in its folder; a batch
    that shrank to one video gets an index of that one; `$` in a name is text, not mathtext, in every title."""
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a.mp4", "b.mp4", "c$\\q$.mp4"):
        shutil.copy(SAMPLES / "video" / "two_faces.mp4", vids / name)
    opts = VideoOptions(annotate=False)
    results = batchemo.analyze_videos([vids], out=tmp_path / "out", model=model, options=opts, progress=False)
    assert [r.status for r in results] == ["complete"] * 3
    figures = re.compile(r'<td class="n">([^<]*)</td>')  # the index's number cells: duration, tracks, faces
    b = next(r for r in rows_of(parse(tmp_path / "out" / "index.html")[0], "videos") if "b.mp4" in r)
    assert all(figures.findall(b))  # what an index row of b's earlier report shows
    (vids / "b.mp4").write_bytes((SAMPLES / "video" / "two_faces.mp4").read_bytes()[:5000])
    batchemo.analyze_videos([vids], out=tmp_path / "out", model=model, options=opts, progress=False)
    text, page = parse(tmp_path / "out" / "index.html")
    b = next(r for r in rows_of(text, "videos") if "b.mp4" in r)
    assert "failed" in b and "not a readable video" in b
    assert figures.findall(b) and not any(figures.findall(b)), b  # none of the earlier report's figures
    pages, cards = index_links(page)
    assert pages == ["a/report.html", "c$\\q$/report.html"] and {c.split("#")[0] for c in cards} == set(pages)
    for name in ("b.mp4", "c$\\q$.mp4"):
        (vids / name).unlink()
    batchemo.analyze_videos([vids], out=tmp_path / "out", model=model, options=opts, progress=False)
    text, page = parse(tmp_path / "out" / "index.html")
    assert len(rows_of(text, "videos")) == 1 and index_links(page)[0] == ["a/report.html"]


def test_the_video_page_says_whether_short_tracks_are_shown(tmp_path, model):
    for keep, said in ((True, "2 short, kept"), (False, "2 short, not shown")):
        out = tmp_path / str(keep)
        batchemo.analyze_video(SAMPLES / "video" / "two_faces.mp4", out, model,
                               VideoOptions(annotate=False, min_track_s=10, keep_short_tracks=keep), progress=False)
        assert said in parse(out / "report.html")[0]


def test_the_batch_index_names_the_short_tracks_files_csv_counts(tmp_path, model):
    """files.csv counts every track, the index (like summary.csv) those shown: the index says how many are short."""
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(SAMPLES / "video" / "two_faces.mp4", vids / name)
    for keep, said in ((True, "2, kept"), (False, "2, not shown")):
        out = tmp_path / str(keep)
        opts = VideoOptions(annotate=False, min_track_s=10, keep_short_tracks=keep)
        batchemo.analyze_videos([vids], out=out, model=model, options=opts, progress=False)
        files = pd.read_csv(out / "files.csv")
        assert list(files["short_tracks"]) == [2, 2] and list(files["tracks"]) == [2, 2]
        rows = rows_of(parse(out / "index.html")[0], "videos")
        cells = [re.findall(r'<td class="n">([^<]*)</td><td>([^<]*)</td>', r)[0] for r in rows]
        assert cells == [("2" if keep else "0", said)] * 2, cells


def test_batch_links_stay_inside_out_through_a_symlinked_reports_folder(tmp_path, model, monkeypatch):
    (tmp_path / "real").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "reports").symlink_to(tmp_path / "real")
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(SAMPLES / "video" / "two_faces.mp4", vids / name)
    monkeypatch.chdir(work)
    batchemo.analyze_videos([vids], model=model, options=VideoOptions(annotate=False), progress=False)
    files = pd.read_csv(work / "reports" / "vids" / "files.csv")
    assert list(files["report"]) == ["a", "b"]
    _, page = parse(work / "reports" / "vids" / "index.html")
    pages, cards = index_links(page)
    assert pages == ["a/report.html", "b/report.html"] and {c.split("#")[0] for c in cards} == set(pages)


def test_saved_faces_map_to_rows_and_read_as_training_folder(folder_report, video_report):
    from batchemo.training.data import list_labelled

    _, out = folder_report
    faces = batchemo.read_report(out / "faces.csv")
    index = pd.read_csv(out / "faces" / "index.csv")
    assert len(index) == len(faces)  # one crop per face
    merged = index.merge(faces, on=["source", "frame", "face"], suffixes=("", "_row"), validate="1:1")
    assert (merged["emotion"] == merged["emotion_row"]).all()
    for r in merged.itertuples():
        assert r.file == f"{r.emotion}/{crop_name(r.source, r.frame, r.face)}"
        assert (out / "faces" / r.file).is_file()
    data = list_labelled(out / "faces")
    assert len(data.paths) == len(faces)
    assert sorted(set(data.classes)) == sorted(set(faces["emotion"]))

    vout, _ = video_report
    frames = batchemo.read_report(vout / "frames.csv")
    index = pd.read_csv(vout / "faces" / "index.csv")
    for face, part in frames.groupby("face"):
        saved = index[index["face"] == face]
        # the most confident row (the CSVs keep 6 digits: ties there may pick another frame than in memory)
        assert saved["confidence"].max() >= part["confidence"].max() - 1e-5
        assert len(saved) >= part["time_s"].max() // 1  # about one per second
        assert len(saved) <= part["time_s"].max() + 2
    assert list_labelled(vout / "faces").paths


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars"]


@pytest.fixture(scope="module")  # as the reports, and set up before them: no browser, no reports made
def chromium() -> str:
    """The browser's command."""
    path = _chromium()
    need(path is not None, "headless check needs Chromium (Debian: apt-get install chromium)")
    return path


def test_chromium_runs_the_scripts_and_sorts(chromium, folder_report, video_report):
    _, out = folder_report
    r = subprocess.run([chromium, *CHROMIUM_FLAGS, "--dump-dom",
                        (out / "report.html").as_uri() + "#sort=faces-desc"],
                       capture_output=True, text=True, timeout=120, check=False)
    dom = r.stdout
    assert 'data-js="ok"' in dom, r.stderr[-2000:]  # the script ran to its end without an error
    body = dom.split('id="files"', 1)[1].split("</tbody>", 1)[0]
    counts = [int(n) for n in re.findall(r'<td class="n">(\d+)</td><td class="n">', body)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 3  # sorted by the script, faces descending
    assert dom.count("<figure") == len(batchemo.read_report(out / "faces.csv"))
    vout, _ = video_report
    r = subprocess.run([chromium, *CHROMIUM_FLAGS, "--dump-dom", (vout / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
    assert 'data-js="ok"' in r.stdout, r.stderr[-2000:]


def test_tiny_train_reads_relabelled_saved_faces(folder_report, tmp_path):
    """The re-labelling workflow: copy OUT/faces, move some crops to another class folder, train on it."""
    _, out = folder_report
    data = tmp_path / "faces"
    shutil.copytree(out / "faces", data)
    (data / "relabelled").mkdir()
    moved = sorted(data.glob("*/variants__*.png"))
    assert moved
    for p in moved:
        p.rename(data / "relabelled" / p.name)
    model = tmp_path / "tiny.keras"
    r = runner.invoke(app, ["train", str(data), "--out", str(model), "--alpha", "0.25", "--size", "32", "--epochs", "1",
                            "--head-epochs", "0", "--base-weights", "none", "--batch-size", "4", "--val-split", "0.25",
                            "--seed", "3"])
    assert r.exit_code == 0, r.output
    card = json.loads(model.with_suffix(".json").read_text())
    assert "relabelled" in card["classes"] and len(card["classes"]) >= 2


def test_crop_names_of_different_sources_never_collide():
    names = {crop_name(src, 0, 0) for src in ("a b.png", "a_b.png", "a/b.png", "a__b.png", "ü.png", "u.png")}
    assert len(names) == 6 and all("/" not in n for n in names)


def test_a_video_page_reads_its_length_from_run_json_old_and_new():
    from batchemo.report.html import _run_duration

    # write_reports records the length once; a run.json from before that field gives it from the same numbers.
    assert _run_duration({"video": {"duration_s": 3.25, "fps_used": 30.0}, "counts": {"frames_decoded": 999}}) == 3.25
    assert _run_duration({"video": {"fps_used": 25.0}, "counts": {"frames_decoded": 100}}) == 4.0
    assert _run_duration({"video": {}, "counts": {"frames_decoded": 100}}) is None
