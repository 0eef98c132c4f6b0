"""Speed benchmark: batchemo against decode + full-resolution Haar, side by side in one run.

    python benchmarks/bench_speed.py            # writes benchmarks/results/speed.{csv,md}
    python benchmarks/bench_speed.py --models OLD.keras NEW.keras   # the jobs with each model: models_speed.*
    python benchmarks/bench_speed.py --only folder --lever folder:size480='--detect-size 480'  # a traded lever

Inputs are made under benchmarks/work/: a real face clip looped to >= 1,000 frames (../shared/media's CASME II
clip when present, else the sample video), a generated multi-face clip, the shared Hamilton clip (cuts, a
crowd; real multi-person footage) looped to a third of the frames, the 1080p pedestrian clip (`--only
pedestrians`: its full-resolution reference is slow), and a folder of >= 500 photos of mixed sizes (12-megapixel
ones included) built from the sample photos. Every variant runs in its own process; its wall time (start-up
included for batchemo's own commands), CPU seconds (user + system of its process tree) and peak RSS come from
the OS. x_reference compares wall times, x_reference_cpu CPU seconds (steadier when the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchemo.pipeline.track import iou as box_iou  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Children run the working tree's batchemo, not an installed copy that may be older.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
WORK = HERE / "work"
RESULTS = HERE / "results"
SHARED_CLIP = ROOT.parent / "shared" / "media" / "casme2-EP02_05.avi"
REF = dict(scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))  # the reference that cannot drift


# ---------------------------------------------------------------- inputs
def looped_clip(src: Path, dst: Path, frames: int) -> Path:
    if dst.exists():
        return dst
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    clip = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        clip.append(f)
    h, w = clip[0].shape[:2]
    tmp = dst.with_name("tmp-" + dst.name)  # a killed run must not leave a short clip under the final name
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        # forwards then backwards, so the loop has no jump cut
        k = i % (2 * len(clip) - 2)
        out.write(clip[k if k < len(clip) else 2 * len(clip) - 2 - k])
    out.release()
    tmp.rename(dst)
    return dst


def photo_folder(dst: Path, n: int = 500) -> Path:
    if dst.exists():
        return dst
    final, dst = dst, dst.with_name("tmp-" + dst.name)
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    face = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.png"))[20:260, 100:300]
    sizes = [(4000, 3000)] * 1 + [(1600, 1200)] * 3 + [(1024, 768)] * 4 + [(640, 480)] * 2
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        img = np.empty((h, w, 3), np.uint8)
        img[:] = rng.integers(60, 200, 3)
        img = cv2.GaussianBlur((img + rng.normal(0, 12, img.shape)).clip(0, 255).astype(np.uint8), (5, 5), 0)
        for _ in range(int(rng.integers(0, 4))):
            fw = int(min(w, h) * rng.uniform(0.1, 0.35))  # faces 10-35 % of the short side
            f = cv2.resize(face, (fw, int(fw * 1.2)), interpolation=cv2.INTER_AREA)
            if rng.random() < 0.5:
                f = f[:, ::-1]
            x, y = int(rng.integers(0, w - fw)), int(rng.integers(0, h - f.shape[0]))
            img[y:y + f.shape[0], x:x + fw] = f
        cv2.imwrite(str(dst / f"photo_{i:04d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    dst.rename(final)
    return final


# Real multi-person footage (../shared): the Hamilton clip (cuts, a crowd) and the 1080p pedestrians.
REAL_CLIPS = {"hamilton": SHARED_CLIP.parent / "realclips" / "facerecognition-short_hamilton_clip.mp4",
              "pedestrians": SHARED_CLIP.parent / "realclips" / "facenetpytorch-video.mp4"}
INPUT_KEYS = ("video", "multi", "hamilton", "pedestrians", "folder")


def make_inputs(frames: int, photos: int, keys) -> dict[str, tuple[Path, int]]:
    """The inputs named by `keys`, made under WORK where they are not yet: key -> (path, frames or photos), in
    INPUT_KEYS' order; a real clip ../shared lacks is left out."""
    WORK.mkdir(exist_ok=True)
    sample = ROOT / "samples" / "video" / "two_faces.mp4"
    src = SHARED_CLIP if SHARED_CLIP.exists() else sample
    made = {"video": lambda: (looped_clip(src, WORK / f"{src.stem}_x{frames}.avi", frames), frames),
            "multi": lambda: (looped_clip(sample, WORK / f"two_faces_x{frames // 3}.avi", frames // 3), frames // 3),
            "folder": lambda: (photo_folder(WORK / f"photos_{photos}", photos), photos)}
    for key, n in (("hamilton", frames // 3), ("pedestrians", frames // 10)):
        if REAL_CLIPS[key].exists():
            made[key] = lambda key=key, n=n: (looped_clip(REAL_CLIPS[key], WORK / f"{key}_x{n}.avi", n), n)
    return {k: made[k]() for k in INPUT_KEYS if k in keys and k in made}


def job_of(key: str) -> str:
    return "folder" if key == "folder" else "video"


# ---------------------------------------------------------------- variants (each runs in a child process)
def variant_decode(path: Path) -> dict:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return {"frames": n}


def variant_haar(path: Path, boxes_out: Path) -> dict:
    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = {}
    if path.is_dir():
        files = sorted(path.rglob("*.jpg"))
        for p in files:
            g = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY)
            boxes[p.relative_to(path).as_posix()] = np.asarray(casc.detectMultiScale(g, **REF)).reshape(-1, 4).tolist()
        n = len(files)
    else:
        cap = cv2.VideoCapture(str(path))
        n = 0
        while True:
            ok, f = cap.read()
            if not ok:
                break
            g = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
            boxes[str(n)] = np.asarray(casc.detectMultiScale(g, **REF)).reshape(-1, 4).tolist()
            n += 1
    boxes_out.write_text(json.dumps(boxes))
    return {"frames": n}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (ffmpeg included), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except (OSError, ValueError):
            pass
    return total / 1024


def run_child(args: list[str], tree: Path = ROOT) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS MB of the process tree, exit code, CPU seconds: user + system of the tree) of a
    child process run with `tree`'s batchemo, start-up included. CPU seconds are steadier than wall time on a
    shared machine."""
    t = time.perf_counter()
    before = os.times()
    # cwd too: `python -m` puts it first on sys.path, ahead of PYTHONPATH
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tree,
                         env={**ENV, "PYTHONPATH": str(tree)})
    samples = []
    while p.poll() is None:
        samples.append(tree_rss_mb(p.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - t
    # The peak that lasts two samples: while a process spawns ffmpeg, the child is a copy of it for a moment and
    # the tree's RSS counts it twice (single samples of +90-160 MB, seen in runs of the same job).
    peak = max((min(a, b) for a, b in zip(samples, samples[1:])), default=max(samples, default=0.0))
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    err = p.stderr.read()
    if p.returncode not in (0, 1):
        print(err[-2000:], file=sys.stderr)
    return wall, peak, p.returncode, cpu


# ---------------------------------------------------------------- quality guard
def iou(a, b) -> float:
    """IoU of two (x, y, w, h) boxes, with the tracker's own function."""
    return float(box_iou(np.asarray([a], float), np.asarray([b], float))[0, 0])


def recall(ref: dict, rows, key: str) -> float:
    """Share of the reference boxes matched (IoU >= 0.5) by a box of `rows` on the same frame/file."""
    by = {}
    for r in rows.itertuples():
        by.setdefault(str(getattr(r, key)), []).append((r.x, r.y, r.w, r.h))
    hit = total = 0
    for k, boxes in ref.items():
        for b in boxes:
            total += 1
            hit += any(iou(b, o) >= 0.5 for o in by.get(k, []))
    return hit / total if total else float("nan")


def agreement(a, b, key: str) -> float:
    """Share of faces in `a` matched (IoU >= 0.5) in `b` on the same frame/file with the same emotion."""
    by = {}
    for r in b.itertuples():
        by.setdefault(str(getattr(r, key)), []).append(r)
    same = n = 0
    for r in a.itertuples():
        best = max(by.get(str(getattr(r, key)), []), key=lambda o: iou((r.x, r.y, r.w, r.h), (o.x, o.y, o.w, o.h)),
                   default=None)
        if best is not None and iou((r.x, r.y, r.w, r.h), (best.x, best.y, best.w, best.h)) >= 0.5:
            n += 1
            same += best.emotion == r.emotion
    return same / n if n else float("nan")


# ---------------------------------------------------------------- the run
def bench(kind: str, name: str, path: Path, units: int, extra: list[str],
          variants: dict[str, list[str]] | None = None, base: Path | None = None) -> list[dict]:
    import pandas as pd

    py = sys.executable
    out = WORK / "out" / name
    rows = []
    ref_boxes = WORK / f"{name}.ref.json"
    plan = []
    if kind == "video":
        plan.append(("decode only", [py, __file__, "--variant", "decode", str(path)], None))
    plan.append(("decode + full-res Haar (reference)", [py, __file__, "--variant", "haar", str(path), str(ref_boxes)],
                 None))
    job = "video" if kind == "video" else "folder"
    plan.append(("straightforward pipeline (full-res Haar every frame, 1 face per model call)",
                 [py, "-m", "batchemo", job, str(path), "--out", str(out / "straight"), "--accurate",
                  "--batch-size", "1", "--no-progress", "--redo", "--force"], out / "straight"))
    plan.append(("batchemo defaults, all outputs",
                 [py, "-m", "batchemo", job, str(path), "--out", str(out / "default"), "--no-progress", "--redo",
                  "--force", *extra], out / "default"))
    if base is not None:  # the same job by another tree's code (a commit checked out with git worktree add)
        plan.append((f"batchemo defaults, all outputs, {base.name} tree",
                     [py, "-m", "batchemo", job, str(path), "--out", str(out / "base"), "--no-progress", "--redo",
                      "--force", *extra], out / "base"))
    for label, args in (variants or {}).items():  # levers that trade answers for speed, behind options
        plan.append((f"batchemo {label}", [py, "-m", "batchemo", job, str(path), "--out", str(out / label),
                                           "--no-progress", "--redo", "--force", *extra, *args], out / label))
    for label, args, report in plan:
        wall, rss, code, cpu = run_child(args, base.resolve() if report == out / "base" else ROOT)
        rows.append({"input": name, "variant": label, "seconds": round(wall, 2), "cpu_s": round(cpu, 1),
                     "per_second": round(units / wall, 1), "peak_rss_mb": round(rss), "exit": code, "report": report})
    base = next(r for r in rows if "reference" in r["variant"])
    ref = json.loads(ref_boxes.read_text())
    key = "frame" if kind == "video" else "source"
    straight = None
    for r in rows:
        r["x_reference"] = round(r["per_second"] / base["per_second"], 2)
        r["x_reference_cpu"] = round(base["cpu_s"] / r["cpu_s"], 2) if r["cpu_s"] else None
        rep = r.pop("report")
        if rep is not None:
            faces = pd.read_csv(rep / ("frames.csv" if kind == "video" else "faces.csv"))
            r["face_recall"] = round(recall(ref, faces, key), 4)
            if straight is None:
                straight = faces
            else:
                r["emotion_agreement"] = round(agreement(straight, faces, key), 4)
    return rows


def compare_models(inputs: list[tuple[str, str, Path, int]], models: list[str], rounds: int = 2) -> list[dict]:
    """The default job on each input with each model, alternating models within each round (noise hits both)."""
    rows = []
    for rnd in range(1, rounds + 1):
        for job, name, path, units in inputs:
            for model in models:
                out = WORK / "out" / "models" / Path(model).stem / name
                wall, rss, code, _ = run_child([sys.executable, "-m", "batchemo", job, str(path), "--out", str(out),
                                                "--model", model, "--no-progress", "--redo", "--force"])
                rows.append({"input": name, "model": model, "round": rnd, "seconds": round(wall, 2),
                             "per_second": round(units / wall, 1), "peak_rss_mb": round(rss), "exit": code})
    return rows


def _head(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def write_result(name: str, how: str, rows: list[dict]) -> None:
    """results/NAME.md (and .csv): when and how it was measured, then the table; printed too."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df.to_csv(RESULTS / f"{name}.csv", index=False)
    table = markdown(df.drop(columns=["exit"], errors="ignore"))
    md = f"Measured {time.strftime('%Y-%m-%d %H:%M')} {how}.\n\n{table}\n"
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


def markdown(df) -> str:
    cells = [[str(c) for c in df.columns]] + [["" if v != v else str(v) for v in row] for row in df.to_numpy()]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(df.columns))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant")
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--only", choices=INPUT_KEYS, action="append",
                    help="inputs to run (repeatable); default: all but pedestrians (1080p: its reference is slow)")
    ap.add_argument("--lever", action="append", default=[], metavar="JOB:NAME=ARGS",
                    help="also run the default job with extra options, e.g. folder:size480='--detect-size 480'")
    ap.add_argument("--base-root", type=Path, help="also run the default jobs with this tree's code (before/after)")
    ap.add_argument("--models", nargs=2, metavar="MODEL", help="compare two models' speed in the default jobs")
    a = ap.parse_args()
    if a.variant == "decode":
        print(json.dumps(variant_decode(Path(a.paths[0]))))
        return
    if a.variant == "haar":
        print(json.dumps(variant_haar(Path(a.paths[0]), Path(a.paths[1]))))
        return
    RESULTS.mkdir(exist_ok=True)
    todo = a.only or ["video", "multi", "folder", *(["hamilton"] if REAL_CLIPS["hamilton"].exists() else [])]
    inputs = make_inputs(a.frames, a.photos, todo)
    variants: dict[str, dict[str, list[str]]] = {}
    for v in a.lever:
        job, _, rest = v.partition(":")
        label, _, args = rest.partition("=")
        variants.setdefault(job, {})[label] = shlex.split(args)
    if a.models:
        write_result("models_speed", f"on {os.cpu_count()} CPUs with `python benchmarks/bench_speed.py --frames "
                     f"{a.frames} --photos {a.photos} --models {' '.join(a.models)}`",
                     compare_models([(job_of(k), p.stem, p, n) for k, (p, n) in inputs.items()], a.models))
        return
    rows = []
    for key, (path, units) in inputs.items():
        rows += bench(job_of(key), path.stem, path, units, [], variants.get(job_of(key)), a.base_root)
    command = " ".join(["python benchmarks/bench_speed.py", f"--frames {a.frames}", f"--photos {a.photos}",
                        *(f"--only {o}" for o in a.only or []), *(f"--lever {shlex.quote(v)}" for v in a.lever),
                        *([f"--base-root <worktree at {_head(a.base_root)}>"] if a.base_root else [])])
    write_result("speed", f"on {os.cpu_count()} CPUs with `{command}`", rows)


if __name__ == "__main__":
    main()
