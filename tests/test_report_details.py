"""Details of the written report that a researcher's numbers rest on: times to the microsecond in long videos,
smoothing over consecutive time bins, no stale crops after a relabelling, crop names within the file-name limit,
and other reports inside an input folder never read as inputs. None of these needs the model."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd

from batchemo.jobs.journal import is_report_folder
from batchemo.jobs.videos import expand_inputs
from batchemo.report import crops as C
from batchemo import report as R
from batchemo.pipeline.files import IMAGE_EXTENSIONS, walk

CLASSES = ["happy", "sad", "neutral"]


def test_seconds_columns_keep_the_microsecond_past_hours_of_video(tmp_path):
    times = [0.0, 12.5, 10800.033333, 10800.066667, 36000.1, np.nan]
    df = pd.DataFrame({"time_s": times, "first_s": times, "p_happy": [1 / 3] * 6, "frame": range(6)})
    R.write_csv(df, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(back["time_s"].to_numpy(), np.asarray(times))
    np.testing.assert_array_equal(back["first_s"].to_numpy(), np.asarray(times))
    assert back["time_s"].dtype == np.float64 and back["p_happy"].iloc[0] == 0.333333  # probabilities: 6 digits
    assert list(back["frame"]) == list(range(6))


def _frames(rows: list[tuple[int, float, str]]) -> pd.DataFrame:
    """(face, time_s, top class) rows, the top class at probability 1."""
    return pd.DataFrame([{"face": f, "time_s": t, **{f"p_{c}": float(c == top) for c in CLASSES}}
                         for f, t, top in rows])


def test_smoothing_spans_consecutive_bins_not_neighbouring_rows():
    # track 0 seen in bins 0, 2 and 4 only (--fps 0.5 with 1 s bins): no bin has a seen neighbour, so each
    # smoothed value is that bin's own mean; track 1, seen every bin, is averaged over three
    tl = R.timeline_table(_frames([(0, 0.2, "happy"), (0, 2.2, "sad"), (0, 4.2, "happy"),
                                   (1, 0.5, "happy"), (1, 1.5, "sad"), (1, 2.5, "neutral")]), CLASSES, 1.0)
    t0 = tl[tl["face"] == 0]
    assert list(t0["bin"]) == [0, 2, 4]
    assert list(t0["dominant_smooth"]) == ["happy", "sad", "happy"]
    np.testing.assert_allclose(t0["smooth_happy"], [1, 0, 1])
    t1 = tl[tl["face"] == 1].set_index("bin")
    np.testing.assert_allclose(t1.loc[1, [f"smooth_{c}" for c in CLASSES]].to_numpy(float), [1 / 3] * 3)
    np.testing.assert_allclose(t1.loc[0, ["smooth_happy", "smooth_sad"]].to_numpy(float), [0.5, 0.5])


def test_smoothing_a_long_track_at_a_tiny_bin_holds_only_its_own_bins():
    # an hour's track at --bin 1e-7 spans 3.6e10 bins; filling them in was a MemoryError (or hours of swapping)
    tl = R.timeline_table(_frames([(0, 0.0, "happy"), (0, 1e-7, "sad"), (0, 3600.0, "sad")]), CLASSES, 1e-7)
    assert list(tl["bin"]) == [0, 1, 36_000_000_000]
    np.testing.assert_allclose(tl[["smooth_happy", "smooth_sad"]].to_numpy(float), [[0.5, 0.5], [0.5, 0.5], [0, 1]])


def test_long_source_paths_give_crop_names_within_the_limit_and_distinct():
    deep = "/".join(["a folder of sessions"] * 20)
    names = {C.crop_name(f"{deep}/{tail}", 123456789, 4321) for tail in ("p1.jpg", "p2.jpg")}
    assert len(names) == 2
    for name in names:
        assert len(f".{name}.0123abcd.tmp".encode()) <= 255
    assert C.crop_name("ok.png", 0, 1) == "ok.png__f0__id1.png"  # short, safe names as before


def _face_rows(source: str, emotions: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"source": source, "frame": 0, "time_s": np.nan, "face": i, "x": 4 + 20 * i, "y": 4,
                          "w": 16, "h": 16, "emotion": e, "confidence": 0.9} for i, e in enumerate(emotions)])


def test_saved_crops_of_relabelled_or_removed_faces_go(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p.png"), np.full((40, 60, 3), 90, np.uint8))
    out = tmp_path / "out"
    C.save_photo_faces(out, photos, _face_rows("p.png", ["happy", "sad"]))
    (out / "faces" / "notes.txt").write_text("mine")
    index = C.save_photo_faces(out, photos, _face_rows("p.png", ["sad"]))  # face 0 now sad, face 1 gone
    on_disk = sorted(p.relative_to(out / "faces").as_posix() for p in (out / "faces").glob("*/*.png"))
    assert on_disk == list(index["file"]) == ["sad/p.png__f0__id0.png"]
    assert not (out / "faces" / "happy").exists() and (out / "faces" / "notes.txt").exists()


def _fake_report(folder, job: str = "folder") -> None:
    (folder / "annotated").mkdir(parents=True)
    cv2.imwrite(str(folder / "annotated" / "face.jpg"), np.zeros((8, 8, 3), np.uint8))
    (folder / "annotated.mp4").write_bytes(b"")
    (folder / "run.json").write_text(json.dumps({"job": job}))


def test_reports_inside_an_input_folder_are_not_inputs(tmp_path):
    root = tmp_path / "photos"
    (root / "day1").mkdir(parents=True)
    cv2.imwrite(str(root / "day1" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    (root / "day1" / "clip.mp4").write_bytes(b"")
    _fake_report(root / "reports" / "photos")
    _fake_report(root / "reports" / "clips" / "clip", job="video")
    under_way = root / "reports" / "other"  # a folder run cut short: only its journal says it is a report
    (under_way / ".journal").mkdir(parents=True)
    (under_way / ".journal" / "analysis.json").write_text("{}")
    cv2.imwrite(str(under_way / "b.jpg"), np.zeros((8, 8, 3), np.uint8))
    (root / "notes").mkdir()
    (root / "notes" / "run.json").write_text("not json")  # a user's own run.json is no report
    cv2.imwrite(str(root / "notes" / "c.jpg"), np.zeros((8, 8, 3), np.uint8))
    images, _ = walk(root, IMAGE_EXTENSIONS, is_report=is_report_folder)
    assert [s.rel for s in images] == ["day1/a.jpg", "notes/c.jpg"]
    assert [v.source for v in expand_inputs([root])] == ["day1/clip.mp4"]


def test_each_frame_lands_in_the_bin_its_time_falls_in():
    """0.3 / 0.1 is 2.9999999999999996 in floating point: a plain floor put the frame at 0.3 s in the bin before."""
    from batchemo import report as R

    classes = ["happy", "sad"]
    times = [round(k / 30, 6) for k in range(300)]  # 10 s at 30 fps
    frames = pd.DataFrame({"face": 0, "frame": range(300), "time_s": times, "p_happy": 0.7, "p_sad": 0.3})
    for bin_s in (0.1, 0.2):
        tl = R.timeline_table(frames, classes, bin_s)
        for t in times:
            row = tl[(tl["start_s"] <= t + 1e-9) & (t + 1e-9 < tl["end_s"])]
            assert len(row) == 1
        assert tl["frames"].sum() == 300 and set(tl["frames"]) == {round(30 * bin_s)}


def test_a_track_of_exactly_the_minimum_length_is_not_short():
    from batchemo.jobs.video import short_tracks

    def track(n, fps, start=0):
        return pd.DataFrame({"face": 0, "time_s": [round((start + i) / fps, 6) for i in range(n)]})

    for n, fps, start in ((12, 24, 0), (15, 30, 11), (30, 60, 1)):  # each spans exactly 0.5 s
        assert not short_tracks(track(n, fps, start), 1 / fps, 0.5).any()
        assert short_tracks(track(n - 1, fps, start), 1 / fps, 0.5).all()


def test_seconds_on_screen_is_kept_to_the_microsecond(tmp_path):
    from batchemo import report as R

    frames = pd.DataFrame({"face": 0, "frame": range(31), "time_s": [i / 30 for i in range(31)], "emotion": "happy",
                           "p_happy": 1.0, "p_sad": 0.0})
    R.write_csv(R.track_summary(frames, ["happy", "sad"], 1 / 30), tmp_path / "summary.csv")
    assert R.read_report(tmp_path / "summary.csv")["seconds_on_screen"].iloc[0] == 1.033333


def test_a_batch_of_failures_still_has_the_per_class_columns(tmp_path):
    from batchemo.jobs.videos import VideoFailure, VideoInput, write_batch_tables

    v = VideoInput(tmp_path / "x.mp4", "x.mp4")
    write_batch_tables([v], [tmp_path / "x"], [VideoFailure(v.path, tmp_path / "x", "not a video")], tmp_path,
                       ["happy", "sad"])
    cols = list(pd.read_csv(tmp_path / "summary.csv").columns)
    assert {"share_happy", "share_sad", "mean_p_happy", "mean_p_sad"} <= set(cols)


def test_the_batch_index_counts_the_faces_its_tracks_count(two_face_clip, tmp_path, model):
    """With --min-track longer than the clip, every track is short: no tracks shown, so no faces counted either."""
    import re

    import batchemo
    from batchemo.jobs.options import VideoOptions

    for name in ("a.avi", "b.avi"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(two_face_clip.read_bytes())
    batchemo.analyze_videos([tmp_path / "in"], tmp_path / "o", model,
                            VideoOptions(annotate=False, min_track_s=7.0), progress=False)
    page = (tmp_path / "o" / "index.html").read_text()
    body = re.search(r"<tbody>(.*)</tbody>", page, re.S)[1]  # the videos' rows; the all-videos row is below
    cells = re.findall(r'<td class="n">[^<]*</td><td class="n">([^<]*)</td><td>[^<]*</td><td class="n">([^<]*)</td>',
                       body)
    assert cells == [("0", "0"), ("0", "0")], cells  # tracks, faces of each video
