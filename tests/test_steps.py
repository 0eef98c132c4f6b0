"""The pipeline's steps on their own: detection on a known photo, the tracker's rules, the batched classify
helper, and the package layering (the main jobs never import training code)."""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from batchemo.pipeline.detect import (
    DetectOptions,
    detect_faces,
    detect_scored,
    drop_contained,
    face_score,
    has_eyes,
    refine_faces,
)
from batchemo.pipeline.faces import Faces, classify, crop_faces
from batchemo.pipeline.follow import face_template, follow_template
from batchemo.pipeline.shots import ShotBoundaries
from batchemo.pipeline.video import Frame
from batchemo.report import face_rows
from batchemo.pipeline.track import Tracker, iou

from .conftest import ROOT, SAMPLES

# The astronaut's face in samples/images/astronaut.png (512x512), as drawn by hand around the face: left,
# top, right, bottom. Any box Haar reports for it must sit on this face.
ASTRONAUT_FACE = (170, 55, 285, 170)


@pytest.fixture(scope="module")
def astronaut_grey() -> np.ndarray:
    return cv2.imread(str(SAMPLES / "images" / "astronaut.png"), cv2.IMREAD_GRAYSCALE)


def _on_face(box) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    x0, y0, x1, y1 = ASTRONAUT_FACE
    return x0 < cx < x1 and y0 < cy < y1 and 0.5 * (x1 - x0) < w < 1.5 * (x1 - x0)


@pytest.mark.parametrize("opts", [DetectOptions(), DetectOptions().accurate, DetectOptions(max_side=256)],
                         ids=["default", "accurate", "downscaled"])
def test_detect_faces_finds_the_one_face_of_a_known_photo(astronaut_grey, opts):
    boxes = detect_faces(astronaut_grey, opts)
    assert boxes.dtype == np.int32 and boxes.shape == (1, 4)
    assert _on_face(boxes[0]), boxes


def test_detect_faces_on_a_blank_image_finds_nothing():
    assert detect_faces(np.full((300, 400), 128, np.uint8)).shape == (0, 4)


def test_detect_faces_boxes_are_in_the_pixels_of_the_image_given(astronaut_grey):
    """A box found on a 2x upscaled copy is the same face at twice the coordinates."""
    big = cv2.resize(astronaut_grey, None, fx=2, fy=2)
    b1 = detect_faces(astronaut_grey, DetectOptions().accurate)[0]
    b2 = detect_faces(big, DetectOptions().accurate)[0]
    assert iou(b1[None] * 2, b2[None])[0, 0] > 0.7


def test_refine_faces_refinds_a_moved_face_and_nothing_where_there_is_none(astronaut_grey):
    face = detect_faces(astronaut_grey)[0]
    shifted = face + np.array([12, -8, 0, 0])  # last frame's box, the face has moved since
    empty = np.array([380, 380, 90, 90])  # a patch of space suit and sky
    found = refine_faces(astronaut_grey, np.stack([shifted, empty]), profile=True)
    box, score, how = found[0]
    assert _on_face(box) and iou(box[None], face[None])[0, 0] > 0.7 and how == "detected" and 0 < score <= 1
    assert found[1] is None


def test_face_scores_eyes_and_contained_boxes(astronaut_grey):
    boxes, scores = detect_scored(astronaut_grey)
    assert len(boxes) == 1 and 0.5 < scores[0] <= 1  # a clear frontal face scores high
    assert face_score(4.0) == pytest.approx(0.5) and face_score(1.0) < 0.1 < 0.9 < face_score(8.0)
    assert has_eyes(astronaut_grey, boxes[0])
    assert not has_eyes(np.full((300, 300), 128, np.uint8), (50, 50, 100, 100))
    big, mouth, other = [100, 100, 100, 100], [130, 160, 40, 30], [400, 100, 90, 90]
    assert list(drop_contained(np.array([mouth, big, other]), np.array([0.2, 0.9, 0.5]))) == [1, 2]
    # A loose box round a face, reaching above it (as the cascade's loose boxes do): holding more of the face than
    # drop_contained's share (its default, a tuning choice), the two are one face and the higher score stays;
    # holding less, they are two. Scores: face_score at the median level weights of boxes on no face (2.6) and on
    # faces (7.2).
    share = inspect.signature(drop_contained).parameters["share"].default
    weak, clear = face_score(2.6), face_score(7.2)
    x, y, side = 300, 240, 120  # the face; the loose box is 10 px wider, with the same right edge
    above, below = (1 + share) / 2, share / 2
    cases = ((above, [weak, clear], [1]), (above, [clear, weak], [0]), (below, [weak, clear], [0, 1]))
    for inside, scores, kept in cases:
        loose = [x - 10, y + round(side * inside) - (side + 10), side + 10, side + 10]
        assert list(drop_contained(np.array([loose, [x, y, side, side]]), np.array(scores))) == kept, (inside, scores)


def test_follow_template_finds_the_moved_face_and_not_a_blank(astronaut_grey):
    face = detect_faces(astronaut_grey)[0]
    template = face_template(astronaut_grey, face)
    moved = np.roll(astronaut_grey, (9, -14), axis=(0, 1))  # the face moved 14 px left and 9 px down
    box, match = follow_template(moved, face, template)
    assert match > 0.9 and abs(box[0] - (face[0] - 14)) <= 2 and abs(box[1] - (face[1] + 9)) <= 2
    noise = np.random.default_rng(0).integers(0, 256, astronaut_grey.shape).astype(np.uint8)
    assert follow_template(noise, face, template)[1] < 0.5


def _cuts(frames: list[np.ndarray], interval: float = 0.1) -> list[bool]:
    shots = ShotBoundaries(interval)
    return [shots.is_cut(f, cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)) for f in frames]


def test_scene_cut_is_a_jump_not_a_light_change(astronaut_grey):
    a = cv2.cvtColor(astronaut_grey, cv2.COLOR_GRAY2BGR)
    assert _cuts([a, cv2.convertScaleAbs(a, alpha=1.1, beta=8)]) == [False, False]
    assert _cuts([a, 255 - a]) == [False, True]


# ---------------------------------------------------------------- tracker
def _box(x, y, s=50):
    return np.array([[x, y, s, s]])


def _step(t: Tracker, boxes, step: int, **kw):
    """A detection step as FaceFinder takes one: match the boxes, then ask which faces to report."""
    t.update(boxes, step, **kw)
    return t.live(step)


def test_tracker_keeps_ids_of_overlapping_boxes_and_counts_up_in_order_of_appearance():
    t = Tracker(iou_threshold=0.3, max_gap=5, coast=1)
    ids, _ = _step(t, np.concatenate([_box(10, 10), _box(300, 10)]), 0)
    assert list(ids) == [0, 1]
    ids, boxes = _step(t, np.concatenate([_box(305, 12), _box(14, 10)]), 1)  # order of detection is irrelevant
    assert dict(zip(ids, boxes[:, 0])) == {0: 14, 1: 305}
    ids, _ = _step(t, np.concatenate([_box(18, 10), _box(310, 12), _box(600, 300)]), 2)
    assert list(ids) == [0, 1, 2]  # a new face gets the next id


def test_tracker_matches_a_fast_move_by_centre_distance_when_boxes_no_longer_overlap():
    t = Tracker(iou_threshold=0.3, max_gap=5, coast=1)
    t.update(_box(100, 100), 0)
    ids, _ = _step(t, _box(140, 100), 1)  # moved most of a box side: IoU 0.11, centres 40 px apart
    assert list(ids) == [0]
    ids, boxes = _step(t, _box(400, 100), 2)  # far away: someone else (track 0 coasts on its last box)
    assert dict(zip(ids, boxes[:, 0])) == {0: 140, 1: 400}


def test_tracker_coasts_a_missed_face_then_drops_it_then_forgets_its_id():
    t = Tracker(iou_threshold=0.3, max_gap=3, coast=1)
    t.update(_box(100, 100), 0)
    ids, _ = _step(t, np.zeros((0, 4)), 1)  # seen once only: a misfire is never held
    assert len(ids) == 0
    t.update(_box(100, 100), 2)
    ids, boxes = _step(t, np.zeros((0, 4)), 3)  # seen twice, missed once: the last box is carried
    assert list(ids) == [0] and boxes[0, 0] == 100
    ids, _ = _step(t, np.zeros((0, 4)), 4)  # missed longer than `coast`: not reported, still alive
    assert len(ids) == 0
    ids, _ = _step(t, _box(102, 100), 5)  # back within max_gap: same id
    assert list(ids) == [0]
    t.update(np.zeros((0, 4)), 6)
    ids, _ = _step(t, _box(102, 100), 10)  # gone longer than max_gap: a new track
    assert list(ids) == [1]


def test_tracker_reports_a_weak_new_box_only_once_found_again_and_numbers_in_reporting_order():
    t = Tracker(iou_threshold=0.3, max_gap=5, coast=1, confirm_hits=2)
    ids, _ = _step(t, np.concatenate([_box(10, 10), _box(300, 10)]), 0, trusted=np.array([False, True]))
    assert list(ids) == [0]  # the trusted face only, and it is number 0
    ids, boxes = _step(t, np.concatenate([_box(12, 10), _box(302, 10)]), 1, trusted=np.array([False, True]))
    assert dict(zip(ids, boxes[:, 0])) == {0: 302, 1: 12}  # found again: reported, next number
    t.update(_box(600, 300), 2, trusted=np.array([False]))
    ids, _ = _step(t, np.zeros((0, 4)), 3)
    assert 2 not in ids  # a one-off weak box never becomes a face


def test_tracker_tracks_refound_between_detections_move_and_the_others_coast():
    t = Tracker(iou_threshold=0.3, max_gap=5, coast=1)
    t.update(np.concatenate([_box(10, 10), _box(300, 10)]), 0)
    t.update(np.concatenate([_box(10, 10), _box(300, 10)]), 1)
    assert [tr.id for tr in t.unseen(2)] == [0, 1]  # both are worth looking for at the next step
    a, _ = t.unseen(2)
    a.seen(a.box + [5, 0, 0, 0], 2, "profile", 0.9)  # re-found by the profile cascade; the other one is not
    ids, boxes = t.live(2)
    assert list(ids) == [0, 1] and list(boxes[:, 0]) == [15, 300]  # track 1 coasts on its last box
    assert [tr.how for tr in t.live_tracks(2)] == ["profile", "detected"] and t.live_tracks(2)[0].score == 0.9
    a.seen(a.box + [5, 0, 0, 0], 3, "detected", 0.9)
    ids, _ = t.live(3)
    assert list(ids) == [0]  # missed past `coast`
    t.expire(10)  # unseen for longer than max_gap
    assert t.tracks == []


def test_tracker_tells_a_box_taken_by_another_track_on_this_step():
    t = Tracker(iou_threshold=0.3, max_gap=5, coast=1)
    t.update(np.concatenate([_box(10, 10), _box(40, 10)]), 0)  # two people side by side, overlapping boxes
    a, b = t.tracks
    b.seen(b.box, 1, "detected", 0.9)
    assert t.taken(_box(42, 10), 1, a) and not t.taken(_box(42, 10), 1, b)  # b's own face is b's to take
    assert not t.taken(_box(200, 10), 1, a) and not t.taken(_box(42, 10), 2, a)  # elsewhere, or another step


def _finder(**kw):
    import batchemo.jobs.video_pass as VP
    from batchemo.jobs.options import VideoOptions

    opts = VideoOptions(detect_every=100, **kw)
    return VP.FaceFinder(opts, VP.Schedule.of(10.0, opts), 48)


def test_a_scene_cut_gives_the_face_of_the_new_shot_a_new_id(astronaut_grey):
    """Shot / reverse shot: after a cut, a face at the spot of the old shot's face is someone else until shown
    otherwise, so it must not inherit the old id."""
    x, y, w, h = detect_faces(astronaut_grey)[0]
    m = w // 2
    other_shot = np.full_like(astronaut_grey, 255)  # the same spot, all else changed: a cut by the thumbnails
    other_shot[y - m:y + h + m, x - m:x + w + m] = astronaut_grey[y - m:y + h + m, x - m:x + w + m]
    assert _cuts([cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) for im in (astronaut_grey, other_shot)]) == [False, True]
    finder = _finder()
    ids = [finder.find("clip.mp4", Frame(i, i / 10, cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))).ids.tolist()
           for i, img in enumerate([astronaut_grey, astronaut_grey, other_shot, other_shot])]
    assert ids == [[0], [0], [1], [1]]


def test_a_track_looking_again_never_takes_its_neighbours_face(astronaut_grey, monkeypatch):
    """Two faces; between detections the window search of track 0 'finds' track 1's face (as in a crowd, one
    person behind another): track 1 keeps its face, and no two rows share one box."""
    import batchemo.jobs.video_pass as VP

    two = cv2.cvtColor(np.concatenate([astronaut_grey, astronaut_grey], axis=1), cv2.COLOR_GRAY2BGR)
    finder = _finder()
    first = finder.find("clip.mp4", Frame(0, 0.0, two))
    assert first.ids.tolist() == [0, 1]
    right = first.boxes[1]
    monkeypatch.setattr(VP, "refine_faces", lambda grey, boxes, *a, **k: [(right, 0.9, "detected")] * len(boxes))
    second = finder.find("clip.mp4", Frame(1, 0.1, two))
    assert second.ids.tolist() == [1] and second.boxes.tolist() == [right.tolist()]


def test_face_finder_follows_a_face_the_cascades_miss_and_holds_no_misfire(astronaut_grey, monkeypatch):
    """Frames of a face moving right; on frames 3-5 the cascades 'miss' it (as behind a hand): it is followed
    by its look, keeps its id, and its rows say so."""
    import batchemo.jobs.video_pass as VP
    from batchemo.jobs.options import VideoOptions

    opts = VideoOptions(detect_every=100)
    finder = VP.FaceFinder(opts, VP.Schedule.of(10.0, opts), 48)
    real = VP.refine_faces
    seen = []
    for i in range(8):
        img = cv2.cvtColor(np.roll(astronaut_grey, 3 * i, axis=1), cv2.COLOR_GRAY2BGR)
        monkeypatch.setattr(VP, "refine_faces", (lambda *a, **k: [None] * len(a[1])) if 3 <= i <= 5 else real)
        seen.append(finder.find("clip.mp4", Frame(i, i / 10, img)))
    assert [len(f) for f in seen] == [1] * 8 and {int(f.ids[0]) for f in seen} == {0}
    assert [f.found_by[0] for f in seen[3:6]] == ["followed"] * 3
    centre = [f.boxes[0, 0] + f.boxes[0, 2] / 2 for f in seen]  # the face's centre moves 3 px a frame
    assert all(abs(c - (centre[0] + 3 * i)) <= 4 for i, c in enumerate(centre)), centre


def test_short_tracks_are_flagged_by_their_span():
    import pandas as pd

    from batchemo.jobs.video import short_tracks

    frames = pd.DataFrame({"face": [0, 0, 0, 1, 1], "time_s": [0.0, 0.4, 0.9, 2.0, 2.1]})
    assert list(short_tracks(frames, 0.1, 0.5)) == [False, False, False, True, True]


# ---------------------------------------------------------------- classify
def test_classify_in_one_batch_gives_the_rows_of_one_image_at_a_time(model, astronaut_grey):
    rng = np.random.default_rng(0)
    face = detect_faces(astronaut_grey)
    records = []
    for k in range(5):  # 0, 1 or 2 faces per record, some jittered
        boxes = np.concatenate([face + rng.integers(-6, 7, (1, 4)) * [1, 1, 0, 0] for _ in range(k % 3)]) \
            if k % 3 else np.zeros((0, 4), np.int32)
        records.append(Faces(f"img{k}.png", boxes=boxes, crops=crop_faces(astronaut_grey, boxes, model.image_size)))
    alone = []
    for r in records:
        single = Faces(r.source, boxes=r.boxes, crops=r.crops)
        classify([single], model, batch_size=64)
        alone.append(face_rows(single, model.classes))
    classify(records, model, batch_size=3)  # batches cut across records
    for r, rows in zip(records, alone):
        assert r.probs.shape == (len(r), len(model.classes))
        got = face_rows(r, model.classes)
        assert [(g["source"], g["face"], g["x"], g["emotion"]) for g in got] == \
            [(a["source"], a["face"], a["x"], a["emotion"]) for a in rows]
        for g, a in zip(got, rows):
            assert g["confidence"] == pytest.approx(a["confidence"], abs=1e-5)
    assert sum(len(face_rows(r, model.classes)) for r in records) == sum(len(r) for r in records) > 0


def test_faces_from_rows_round_trips_boxes_ids_and_labels(model, astronaut_grey):
    boxes = np.concatenate([detect_faces(astronaut_grey), _box(10, 10, 60)])
    f = Faces("a.mp4", 7, 0.28, boxes, np.array([3, 5]), crop_faces(astronaut_grey, boxes, model.image_size))
    classify([f], model, 64)
    from batchemo.report import faces_frame, faces_from_rows

    back = faces_from_rows(faces_frame(face_rows(f, model.classes), model.classes), model.classes)
    assert (back.boxes == f.boxes).all() and list(back.ids) == [3, 5] and back.frame == 7
    assert [e for e, _ in back.labels(model.classes)] == [e for e, _ in f.labels(model.classes)]
    assert [c for _, c in back.labels(model.classes)] == pytest.approx([c for _, c in f.labels(model.classes)])


# ---------------------------------------------------------------- layering
def test_main_jobs_start_without_training_code_or_tensorflow():
    code = ("import sys, batchemo, batchemo.cli, batchemo.jobs.folder, batchemo.jobs.videos, batchemo.jobs.ranges;"
            "bad = [m for m in sys.modules if m.startswith(('batchemo.training.train', 'batchemo.training.evaluate',"
            " 'batchemo.training.data', 'tensorflow', 'keras'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def _imports(path: Path, package: str) -> set[str]:
    """batchemo modules `path` imports, at any level (function-level imports count: a cycle is a cycle)."""
    out = set()
    here = package.split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from ..pipeline import report`
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("batchemo"):
            out.add(node.module)
    return out


def test_no_import_cycles_and_each_layer_imports_only_those_below_it():
    pkg = ROOT / "batchemo"
    modules = {}
    for p in pkg.rglob("*.py"):
        rel = p.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = p
    graph = {}
    for name, p in modules.items():
        package = name if p.name == "__init__.py" else name.rsplit(".", 1)[0]
        graph[name] = {m for m in _imports(p, package) if m in modules and m != name}
    # pipeline (the steps) < report (the outputs) < jobs < cli; training beside the jobs, never imported by them.
    above = {"batchemo.pipeline": ("batchemo.report", "batchemo.jobs", "batchemo.training", "batchemo.cli"),
             "batchemo.report": ("batchemo.jobs", "batchemo.training", "batchemo.cli"),
             "batchemo.jobs": ("batchemo.training", "batchemo.cli")}
    for name, deps in graph.items():
        for layer, forbidden in above.items():
            if name.startswith(layer + ".") or name == layer:
                assert not any(d.startswith(forbidden) for d in deps), (name, deps)
    # Depth-first search for a cycle among modules (package __init__ files re-export lazily and are left out).
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in graph.get(n, ()):
            if d.count(".") and modules[d].name == "__init__.py":
                continue
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in graph:
        if n not in state and modules[n].name != "__init__.py":
            visit(n, [n])
