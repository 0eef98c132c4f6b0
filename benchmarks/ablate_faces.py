"""What each face-finding rule buys: the video job's detect → track step (`jobs.video_pass.FaceFinder`) run
in-process on the real clips with one rule turned off at a time, scored as bench_faces.py scores (must-find
recall, false boxes per 100 frames, tracks of >= 1 s on the one-person clips). No classification and no files:
a quick loop for tuning; bench_faces.py measures the whole job.

    python benchmarks/ablate_faces.py                 # every variant, pooled over the 9 clips
    python benchmarks/ablate_faces.py --per-clip      # and per clip

Writes benchmarks/results/ablate_faces.md.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_faces import long_tracks, markdown, score_boxes, split_reference  # noqa: E402

import batchemo.jobs.video_pass as VP  # noqa: E402
import batchemo.pipeline.detect as DT  # noqa: E402
from batchemo.jobs.options import VideoOptions  # noqa: E402
from batchemo.pipeline.video import open_video, read_frames  # noqa: E402

DATA = HERE.parent.parent / "shared" / "media" / "realclips"


@contextmanager
def patched(module, name: str, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def find_all(clip: Path, opts: VideoOptions) -> tuple[pd.DataFrame, int, float]:
    """(rows frame, face, x, y, w, h, found_by; frames; fps) of one clip."""
    rows = []
    with open_video(clip) as (cap, info):
        finder = VP.FaceFinder(opts, VP.Schedule.of(info.fps, opts), 48)
        n = 0
        for frame in read_frames(cap, info.fps):
            faces = finder.find(clip.name, frame)
            rows += [(frame.index, int(i), *map(int, b), how) for i, b, how in zip(faces.ids, faces.boxes,
                                                                                   faces.found_by)]
            n += 1
    return pd.DataFrame(rows, columns=["frame", "face", "x", "y", "w", "h", "found_by"]), n, info.fps


def score(df: pd.DataFrame, n: int, fps: float, must: dict, ignore: dict) -> dict:
    s = score_boxes(df, range(n), must, ignore, "frame")
    return {"frames": n, "must": s["must"], "hits": s["hits"], "false": s["false"], "tracks_1s": long_tracks(df, fps)}


@contextmanager
def patches_applied(patches):
    with ExitStack() as stack:
        for module, name, value in patches:
            stack.enter_context(patched(module, name, value))
        yield


def variants():
    no_profile = lambda g, b, o, profile=False: DT.refine_faces(g, b, o, profile=False)  # noqa: E731
    keep_all = lambda b, s, share=0.6: np.arange(len(b))  # noqa: E731
    return {
        "all rules (defaults)": (VideoOptions(), []),
        "no profile cascade in the window": (VideoOptions(), [(VP, "refine_faces", no_profile)]),
        "no following by template": (VideoOptions(follow_s=0), []),
        "no evidence rule for new boxes": (VideoOptions(min_new_score=0), []),
        "no dropping of boxes inside a face": (VideoOptions(), [(DT, "drop_contained", keep_all)]),
        "no scene-cut detection": (VideoOptions(), [(VP.ShotBoundaries, "is_cut", lambda self, bgr, grey: False)]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--per-clip", action="store_true")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder (../shared/media/realclips)")
    clips = sorted(p for p in args.data.iterdir() if p.suffix in (".mp4", ".mov"))
    refs = {c: split_reference(pd.read_csv(f"{c}.faces.csv"), pd.read_csv(f"{c}.faces_blazeface.csv"), "frame")
            for c in clips}
    out = []
    for name, (opts, patches) in variants().items():
        per = []
        with patches_applied(patches):
            for clip in clips:
                df, n, fps = find_all(clip, opts)
                per.append({"variant": name, "clip": clip.name, **score(df, n, fps, *refs[clip])})
        d = pd.DataFrame(per)
        one = d[~d["clip"].str.contains("hamilton|facenetpytorch")]
        row = {"variant": name, "recall %": round(100 * d.hits.sum() / d.must.sum(), 1),
               "false/100f": round(100 * d.false.sum() / d.frames.sum(), 2),
               "tracks>=1s per clip of 0-1 person": " ".join(map(str, one.tracks_1s))}
        print(row, flush=True)
        out.append(row)
        if args.per_clip:
            print(d.to_string(index=False), flush=True)
    table = pd.DataFrame(out)
    md = markdown(table) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "ablate_faces.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
