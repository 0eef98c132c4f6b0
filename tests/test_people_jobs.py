"""--people in the jobs (batchemo/jobs/people.py, descriptors.py): the `person` column of faces.csv / frames.csv,
people.csv, the person cards, the numbering across a batch's videos and on Ray, reuse of the descriptors on a re-run
and a resumed folder, what a run without it leaves (nothing new), and the one-line message without the extra. Real
clips of ../shared at the end: the pyfeat man in two videos and a photo, three liveportrait clips of three people.

The generated inputs show one woman only (the samples' astronaut, public domain): two copies of her face seen on
one frame or photo are kept apart (two faces at once are two people), every other face of hers the quality gate
passes joins one of those."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import batchemo
from batchemo.cli import app
from batchemo.jobs import descriptors as D
from batchemo.pipeline import identity as I

from .conftest import SAMPLES, SHARED, moving_faces_video, need, need_people, needs_shared

runner = CliRunner()
QUIET = dict(annotate=False, html=False)  # where only the rows are read: no extra outputs to wait for
FPS = 10.0
REALCLIPS = ("media", "realclips")




def one_face_video(path: Path, face: np.ndarray, *, frames: int = 20, mirrored: bool = False,
                   size: tuple[int, int] = (100, 120), grey: int = 160) -> Path:
    """One face sliding left to right on a plain canvas (one track): `face` resized to `size`, mirrored if asked."""
    w, h = 480, 320
    small = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small[:, ::-1]) if mirrored else small
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    for i in range(frames):
        canvas = np.full((h, w, 3), grey, np.uint8)
        x = 20 + int(200 * i / frames)
        canvas[60:60 + size[1], x:x + size[0]] = small
        writer.write(canvas)
    writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_bgr) -> dict[str, Path]:
    """a.avi: her face alone; b.avi: mirrored, larger, on another grey; two.avi: two copies of it on screen together
    (tests/conftest.py's moving_faces_video)."""
    d = tmp_path_factory.mktemp("people_clips")
    moving_faces_video(d / "two.avi", face_bgr, 20, FPS)
    return {"a": one_face_video(d / "a.avi", face_bgr),
            "b": one_face_video(d / "b.avi", face_bgr, mirrored=True, size=(130, 156), grey=120),
            "two": d / "two.avi"}


def embed_counter(monkeypatch) -> list[int]:
    """A list that gets the number of faces of every embed_faces call the jobs make."""
    calls: list[int] = []
    real = I.embed_faces

    def counted(image, boxes, **kw):
        calls.append(len(np.asarray(boxes).reshape(-1, 4)))
        return real(image, boxes, **kw)

    monkeypatch.setattr(I, "embed_faces", counted)
    return calls


def without_person(path: Path) -> list[str]:
    """A CSV's lines without their next-to-last field (the `person` column, before `uncertain`, the last, #40; no
    field of these tables holds a comma here)."""
    return [",".join(f[:-2] + f[-1:]) for f in (line.split(",") for line in path.read_text().splitlines())]


# ---------------------------------------------------------------- photos

@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, model):
    need_people()
    out = tmp_path_factory.mktemp("people_folder") / "report"
    res = batchemo.analyze_folder(SAMPLES / "images", out, model, progress=False, annotate=False, people=True)
    return res


def test_folder_numbers_every_face_the_gate_passes(folder_run):
    faces = folder_run.table()
    assert list(faces.columns)[-2:] == ["person", "uncertain"] and faces["person"].dtype == "Int64"
    group = faces[faces["source"] == "group/three_faces.jpg"]
    # three copies of one face on one photo: three people, as two faces at once always are
    assert len(group) == 3 and group["person"].notna().all() and group["person"].nunique() == 3
    # no other person in the samples: every other face the gate passes is one of those three numbers
    small = faces["w"] < I.MIN_EMBED_SIDE
    assert small.any()  # astronaut_small.jpg's face: too small to describe, so no number
    assert faces.loc[small, "person"].isna().all()
    others = faces[~small & (faces["source"] != "group/three_faces.jpg")]
    assert len(others) == 3 and set(others["person"]) <= set(group["person"])
    assert set(faces["person"].dropna()) == {0, 1, 2}  # numbered 0, 1, 2 in faces.csv's order
    assert faces["person"].dropna().drop_duplicates().tolist() == [0, 1, 2]


def test_folder_people_csv_sums_each_persons_faces(folder_run):
    faces, people = folder_run.table(), batchemo.read_report(folder_run.out / "people.csv")
    assert people["person"].dtype == "Int64" and people["faces"].dtype == "int64"
    assert people["first_source"].dtype == "string" and people["mean_p_happy"].dtype == "float64"
    assert people["person"].tolist() == [0, 1, 2]
    for p in people.itertuples():
        mine = faces[faces["person"] == p.person]
        assert p.faces == len(mine) and p.photos == mine["source"].nunique()
        assert (p.first_source, p.last_source) == (mine["source"].iloc[0], mine["source"].iloc[-1])
        assert p.mean_p_happy == pytest.approx(mine["p_happy"].mean(), abs=1e-6)
        assert p.share_happy == pytest.approx((mine["emotion"] == "happy").mean(), abs=1e-6)
        assert p.dominant == mine["emotion"].value_counts().idxmax()
    run = json.loads((folder_run.out / "run.json").read_text())
    assert run["options"]["people"] is True
    assert run["people"]["threshold"] == I.PEOPLE_THRESHOLD and run["people"]["persons"] == 3


def test_folder_page_has_a_card_per_person_with_their_picture(folder_run):
    page = (folder_run.out / "report.html").read_text()
    for p in (0, 1, 2):
        assert f'id="person-{p}"' in page and f'src="thumbs/person{p}.jpg"' in page
        picture = cv2.imread(str(folder_run.out / "thumbs" / f"person{p}.jpg"))
        assert picture is not None and min(picture.shape[:2]) > 40
    assert 'href="people.csv"' in page


def test_resumed_folder_describes_only_the_faces_it_lacks(tmp_path, model, monkeypatch):
    need_people()
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "images" / "astronaut.png", photos)
    calls = embed_counter(monkeypatch)
    batchemo.analyze_folder(photos, tmp_path / "out", model, progress=False, people=True, **QUIET)
    assert sum(calls) == 1
    shutil.copy(SAMPLES / "images" / "variants" / "astronaut_grey.jpg", photos)
    calls.clear()
    res = batchemo.analyze_folder(photos, tmp_path / "out", model, progress=False, people=True, **QUIET)
    assert res.skipped_done == 1 and sum(calls) == 1  # the new photo's face only
    assert res.table()["person"].tolist() == [0, 0]  # one woman, in colour and in grey
    calls.clear()
    batchemo.analyze_folder(photos, tmp_path / "out", model, progress=False, people=True, redo=True, **QUIET)
    assert sum(calls) == 2  # --redo describes every face again


# ---------------------------------------------------------------- one video

@pytest.fixture(scope="module")
def two_run(clips, tmp_path_factory, model):
    need_people()
    out = tmp_path_factory.mktemp("people_video") / "two"
    return batchemo.analyze_video(clips["two"], out, model, progress=False, people=True)


def test_two_faces_on_screen_are_two_people(two_run):
    frames = two_run.table()
    assert list(frames.columns)[-2:] == ["person", "uncertain"] and frames["person"].dtype == "Int64"
    assert frames["face"].nunique() == 2 and frames["person"].notna().all()
    per_track = frames.groupby("face")["person"].agg(["nunique", "first"])
    assert (per_track["nunique"] == 1).all()  # every row of a track has its track's number
    assert per_track["first"].tolist() == [0, 1]  # on one frame together: never one person; numbered by track id


def test_video_people_csv_is_the_tracks_summed(two_run):
    people = batchemo.read_report(two_run.out / "people.csv")
    summary, frames = two_run.table("summary"), two_run.table()
    assert people["person"].tolist() == [0, 1] and people["seconds_on_screen"].dtype == "float64"
    for p in people.itertuples():
        faces = frames.loc[frames["person"] == p.person, "face"].unique()
        tracks = summary[(summary["scope"] == "track") & summary["face"].isin(faces)]
        assert (p.tracks, p.videos) == (len(faces), 1)
        assert p.first_source == p.last_source == two_run.source.name
        assert p.seconds_on_screen == pytest.approx(tracks["seconds_on_screen"].sum(), abs=1e-6)
        assert p.first_seen_s == pytest.approx(tracks["first_s"].min(), abs=1e-6)
        assert p.last_seen_s == pytest.approx(tracks["last_s"].max(), abs=1e-6)
        assert p.faces == int((frames["person"] == p.person).sum())


def test_video_page_links_people_and_tracks(two_run):
    page = (two_run.out / "report.html").read_text()
    for p in (0, 1):
        assert f'id="person-{p}"' in page and (two_run.out / "thumbs" / f"person{p}.jpg").is_file()
        assert f'<a href="#track-{p}">{p}</a>' in page  # the person's card links their track's card...
        assert f'<a href="#person-{p}">person {p}</a>' in page  # ...and the track's card back
    run = json.loads((two_run.out / "run.json").read_text())
    assert run["people"]["persons"] == 2 and run["people"]["threshold"] == I.PEOPLE_THRESHOLD


def test_rerun_reuses_descriptors_and_redo_describes_again(clips, tmp_path, model, monkeypatch):
    need_people()
    calls = embed_counter(monkeypatch)
    out = tmp_path / "a"
    first = batchemo.analyze_video(clips["a"], out, model, progress=False, people=True, **QUIET)
    assert sum(calls) > 0 and (out / "people.npz").is_file()
    frames_before = (out / "frames.csv").read_bytes()
    calls.clear()
    again = batchemo.analyze_video(clips["a"], out, model, progress=False, people=True, **QUIET)
    assert again.status == "skipped" and calls == []  # people.npz's descriptors, nothing described
    assert (out / "frames.csv").read_bytes() == frames_before
    batchemo.analyze_video(clips["a"], out, model, progress=False, people=True, redo=True, **QUIET)
    assert sum(calls) > 0
    assert first.table()["person"].eq(0).all()


def test_a_batch_killed_before_its_pages_resumes_without_analysing_again(clips, tmp_path, model):
    """With --people each video's page waits for the run's numbers: a run stopped before them leaves finished
    videos without report.html, and the same command must take them as done (the page comes at the end)."""
    need_people()
    videos = tmp_path / "in"
    videos.mkdir()
    for name in ("a", "b"):
        shutil.copy(clips[name], videos / f"{name}.avi")
    out = tmp_path / "out"
    opts = dict(people=True, annotate=False)
    batchemo.analyze_videos(videos, out=out, model=model, progress=False, **opts)
    (out / "a" / "report.html").unlink()  # as a kill between the videos and their pages leaves it
    again = batchemo.analyze_videos(videos, out=out, model=model, progress=False, **opts)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert (out / "a" / "report.html").is_file()


def test_a_run_without_people_takes_their_numbers_out(clips, tmp_path, model):
    need_people()
    out = tmp_path / "two"
    batchemo.analyze_video(clips["two"], out, model, progress=False, people=True, annotate=False)
    assert "person-0" in (out / "report.html").read_text()
    res = batchemo.analyze_video(clips["two"], out, model, progress=False, annotate=False)
    assert res.status == "skipped"
    assert "person" not in res.table().columns
    assert not (out / "people.csv").exists() and not (out / "people.npz").exists()
    assert "person-" not in (out / "report.html").read_text()
    assert "people" not in json.loads((out / "run.json").read_text())
    # --people again on the report it left: described from the video again, the same numbers
    back = batchemo.analyze_video(clips["two"], out, model, progress=False, people=True, annotate=False)
    assert back.status == "skipped" and back.table().groupby("face")["person"].first().tolist() == [0, 1]


# ---------------------------------------------------------------- a batch

def test_one_person_gets_one_number_across_a_batchs_videos(clips, tmp_path, model):
    need_people()
    # two.avi: her face and its mirror image on screen together (two people for --people); a.avi: the face alone;
    # b.avi: the mirror image, larger, on another grey. Numbered per video, a.avi and b.avi would both be 0.
    results = batchemo.analyze_videos([clips["two"], clips["a"], clips["b"]], tmp_path / "batch", model,
                                      progress=False, people=True, annotate=False)
    two, a, b = (r.table() for r in results)
    assert two.groupby("face")["person"].first().tolist() == [0, 1]
    assert a["person"].eq(0).all() and b["person"].eq(1).all()
    people = batchemo.read_report(tmp_path / "batch" / "people.csv")
    assert people["person"].tolist() == [0, 1]
    assert people["tracks"].tolist() == [2, 2] and people["videos"].tolist() == [2, 2]
    assert people["first_source"].tolist() == ["two.avi", "two.avi"]
    assert people["last_source"].tolist() == ["a.avi", "b.avi"]
    track_seconds = {(r.source.name, int(s.face)): s.seconds_on_screen
                     for r in results for s in r.table("summary").query("scope == 'track'").itertuples()}
    assert people["seconds_on_screen"].tolist() == pytest.approx(
        [track_seconds[("two.avi", 0)] + track_seconds[("a.avi", 0)],
         track_seconds[("two.avi", 1)] + track_seconds[("b.avi", 0)]], abs=1e-6)
    assert people["last_seen_s"].tolist() == pytest.approx([a["time_s"].max(), b["time_s"].max()], abs=1e-6)
    index = (tmp_path / "batch" / "index.html").read_text()
    assert 'id="person-0"' in index and 'id="person-1"' in index
    assert 'href="two/report.html#track-1"' in index and 'href="b/report.html#track-0"' in index
    assert 'src="two/thumbs/person0.jpg"' in index or 'src="a/thumbs/person0.jpg"' in index
    every = batchemo.read_report(tmp_path / "batch")  # every video's frames.csv together, typed
    assert every["person"].dtype == "Int64" and every["person"].notna().all()


def test_people_on_ray_are_the_local_numbers(clips, tmp_path, model, monkeypatch):
    need_people()
    try:
        import ray
    except ModuleNotFoundError as e:  # only Ray itself missing is the extra not installed; else a broken install
        need(e.name != "ray", "the Ray extra is not installed (pip install 'batchemo[ray]')")
        raise
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        inputs = [clips["two"], clips["a"]]
        batchemo.analyze_videos(inputs, tmp_path / "local", model, progress=False, people=True, **QUIET)
        calls = embed_counter(monkeypatch)  # the driver's: Ray's tasks run in processes of their own
        batchemo.analyze_videos(inputs, tmp_path / "ray", model, progress=False, people=True, ray="local", **QUIET)
        assert calls == []  # the tasks described their videos (people.npz); the driver only numbered them
    finally:
        ray.shutdown()
    for name in ("people.csv", "two/frames.csv", "two/people.csv", "a/frames.csv", "a/people.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    local = batchemo.read_report(tmp_path / "local")
    # two.avi's two tracks and a.avi's one: two people, a.avi's face one of them
    assert local["person"].nunique() == 2 and local["person"].notna().all()


# ---------------------------------------------------------------- without --people

def test_without_people_the_reports_are_as_before(clips, sample_tree, tmp_path, model):
    need_people()
    inputs = [clips["a"], clips["two"]]
    batchemo.analyze_videos(inputs, tmp_path / "plain", model, progress=False)
    batchemo.analyze_videos(inputs, tmp_path / "people", model, progress=False, people=True)
    batchemo.analyze_folder(sample_tree, tmp_path / "plain_photos", model, progress=False, annotate=False)
    batchemo.analyze_folder(sample_tree, tmp_path / "people_photos", model, progress=False, annotate=False,
                            people=True)
    plain_files = {p.relative_to(tmp_path / "plain").as_posix() for p in (tmp_path / "plain").rglob("*")}
    assert not any("people" in f or "person" in f for f in plain_files)
    for f in ("a/frames.csv", "two/frames.csv"):
        assert "person" not in (tmp_path / "plain" / f).read_text().splitlines()[0]
        # the same rows, byte for byte, with the person column taken off
        assert without_person(tmp_path / "people" / f) == (tmp_path / "plain" / f).read_text().splitlines()
    for f in ("a/summary.csv", "a/timeline.csv", "two/summary.csv", "two/timeline.csv", "files.csv", "summary.csv",
              "a/thumbs/track0.jpg"):
        assert (tmp_path / "people" / f).read_bytes() == (tmp_path / "plain" / f).read_bytes(), f
    for page in ("a/report.html", "index.html"):
        assert "person-" not in (tmp_path / "plain" / page).read_text()
    run = json.loads((tmp_path / "plain" / "a" / "run.json").read_text())
    assert "people" not in run and run["options"]["people"] is False
    plain, people = tmp_path / "plain_photos", tmp_path / "people_photos"
    assert not (plain / "people.csv").exists() and not (plain / "people.npz").exists()
    assert without_person(people / "faces.csv") == (plain / "faces.csv").read_text().splitlines()
    for f in ("files.csv", "summary.csv"):
        assert (people / f).read_bytes() == (plain / f).read_bytes()
    assert "person-" not in (plain / "report.html").read_text()


@pytest.mark.parametrize("command", ["folder", "video"])
def test_without_the_extra_people_says_how_to_get_it(command, clips, tmp_path, monkeypatch):
    def missing() -> None:
        raise I.PeopleUnavailable(f"--people needs dlib and its face models (dlib does not import): "
                                  f"{I.INSTALL_HINT}")

    monkeypatch.setattr(I, "require_people", missing)
    target = str(SAMPLES / "images") if command == "folder" else str(clips["a"])
    out = tmp_path / "out"
    r = runner.invoke(app, [command, target, "--out", str(out), "--people", "--no-progress"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [f"error: --people needs dlib and its face models (dlib does not "
                                             f"import): {I.INSTALL_HINT}"]
    assert not out.exists()  # refused before any work


def test_the_library_refuses_people_without_the_extra_before_any_work(clips, tmp_path, monkeypatch):
    monkeypatch.setattr(I, "require_people", lambda: (_ for _ in ()).throw(I.PeopleUnavailable("no dlib")))
    for job, target in ((batchemo.analyze_folder, SAMPLES / "images"), (batchemo.analyze_video, clips["a"]),
                        (batchemo.analyze_videos, [clips["a"], clips["b"]])):
        with pytest.raises(I.PeopleUnavailable):
            job(target, tmp_path / "out", people=True, progress=False)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- real clips (../shared)

def _group_means(out: Path) -> dict[tuple[str, int], np.ndarray]:
    """The mean descriptor of each track (or photo face) in a report's people.npz."""
    stored = D.load_descriptors(out / D.DESCRIPTORS_FILE)
    groups: dict[tuple[str, int], list[np.ndarray]] = {}
    for key, d in stored.items():
        if np.isfinite(d).all():
            groups.setdefault((key[0], key[2]), []).append(d)
    return {k: np.mean(v, axis=0) for k, v in groups.items()}


@needs_shared(*REALCLIPS, "pyfeat-noface_face.mov")
@needs_shared(*REALCLIPS, "liveportrait-d3.mp4")
def test_the_pyfeat_man_is_one_person_in_two_videos_and_a_photo(tmp_path, model):
    need_people()
    # a woman's clip first: the man is person 1 in both of his videos, one number across the batch (numbered per
    # video he would be 0 in each)
    names = ("liveportrait-d3.mp4", "pyfeat-face_noface.mov", "pyfeat-noface_face.mov")
    clips = [SHARED.joinpath(*REALCLIPS, n) for n in names]
    results = batchemo.analyze_videos(clips, tmp_path / "videos", model, progress=False, people=True, **QUIET)
    frames = pd.concat([r.table() for r in results[1:]], ignore_index=True)
    numbered = frames[frames["person"].notna()]
    # one man in both clips (a cartoon title is all else: no face the gate passes)
    assert set(numbered["source"]) == set(names[1:]) and set(numbered["person"]) == {1}
    people = batchemo.read_report(tmp_path / "videos" / "people.csv")
    assert people["person"].tolist() == [0, 1] and people["videos"].tolist() == [1, 2]
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SHARED.joinpath(*REALCLIPS, "pyfeat-single_face.jpg"), photos)
    folder = batchemo.analyze_folder(photos, tmp_path / "photo", model, progress=False, people=True, **QUIET)
    assert folder.table()["person"].tolist() == [0]
    # the photo's face within the threshold of both videos' tracks of him: his number in one run with them
    photo = next(iter(_group_means(folder.out).values()))
    for r in results[1:]:
        for mean in _group_means(r.out).values():
            assert np.linalg.norm(photo - mean) <= I.PEOPLE_THRESHOLD


@needs_shared(*REALCLIPS, "liveportrait-d9.mp4")
def test_three_liveportrait_clips_are_three_people(tmp_path, model):
    need_people()
    clips = [SHARED.joinpath(*REALCLIPS, f"liveportrait-{d}.mp4") for d in ("d3", "d6", "d9")]
    results = batchemo.analyze_videos(clips, tmp_path / "batch", model, progress=False, people=True, **QUIET)
    numbers = []
    for r in results:
        counted = r.table()
        counted = counted[~counted["short_track"]]
        assert counted["person"].notna().all() and counted["person"].nunique() == 1  # one woman, or one man, each
        numbers.append(int(counted["person"].iloc[0]))
    assert numbers == [0, 1, 2]  # three people, numbered in input order
    people = batchemo.read_report(tmp_path / "batch" / "people.csv")
    assert people["person"].tolist() == [0, 1, 2] and people["videos"].tolist() == [1, 1, 1]
