"""How fast can the jobs get while giving the same answers? The CPU of the work those answers need, against the
time a speed target allows, for bench_speed's inputs.

    python benchmarks/speed_floor.py                 # writes benchmarks/results/speed_floor.md
    python benchmarks/speed_floor.py --only folder   # one input (printed, not written)

For each input, in this one process:
- the reference of bench_speed.py (decode + full-resolution Haar, OpenCV on its default threads): its wall time
  per frame or photo, and what a target ratio allows: reference / target;
- the batchemo job with default options (all outputs), OpenCV on one thread so that every cascade call's CPU lands
  on the thread that made it (OpenCV on one thread costs the job no CPU: results/speed_levers.md); per-thread CPU
  (time.thread_time) of every Haar call (full frames, windows, profile, eyes), every model invoke
  (mirror-averaged crops), every annotated photo written or video frame handed to ffmpeg (with ffmpeg's own
  CPU) and, for photos, every decode; for video, decoding is timed alone beforehand;
- the floor: (Haar + model + decode + encode CPU) / the machine's cores. That is the wall time per unit if those
  four (nothing else: no tracking, no crops, no tables, no start-up) kept every core busy. Where it is above what
  the target allows, no way of scheduling the same work reaches the target: only less Haar, a cheaper model, less
  decoding or less encoding can, and each of those changes the answers or the outputs
  (results/speed_levers.md).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import bench_speed as B  # noqa: E402  (the same inputs and reference as bench_speed)
from batchemo.jobs import folder as folder_job  # noqa: E402
from batchemo.jobs import photos as photo_steps  # noqa: E402
from batchemo.jobs.video import analyze_video  # noqa: E402
from batchemo.pipeline import detect, model  # noqa: E402
from batchemo.report import encode  # noqa: E402

TARGETS = {"folder": 5.0, "multi": 6.0, "hamilton": 6.0}  # bench_speed's inputs of issue 38's targets
CPU = defaultdict(float)  # seconds of thread CPU by part


def _account(owner, name: str, part: str) -> None:
    """Wrap owner.name so that the CPU of the thread calling it is added to CPU[part]."""
    inner = getattr(owner, name)

    def timed(*args, **kwargs):
        t = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            CPU[part] += time.thread_time() - t

    setattr(owner, name, timed)


def instrument() -> None:
    _account(detect, "_scan", "haar")
    _account(detect, "has_eyes", "haar")
    _account(model._LitePredictor, "_invoke", "model")
    _account(photo_steps, "read_photo", "decode")
    _account(photo_steps, "write_image", "encode")
    _account(encode.VideoSink, "write", "encode")


def reference_wall(path: Path) -> tuple[float, int]:
    """Wall seconds of bench_speed's reference on `path`, and its frames or photos."""
    cv2.setNumThreads(-1)  # OpenCV's default threads, as the reference runs
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        units = B.variant_haar(path, Path(tmp) / "boxes.json")["frames"]
        return time.perf_counter() - t, units


def decode_cpu(path: Path) -> float:
    cv2.setNumThreads(1)
    t = time.process_time()
    B.variant_decode(path)
    return time.process_time() - t


def run_job(path: Path, out: Path) -> float:
    """Process CPU seconds of the job with default options."""
    cv2.setNumThreads(1)
    t, ffmpeg = time.process_time(), _children_cpu()
    if path.is_dir():
        folder_job.analyze_folder(path, out=out, progress=False, redo=True)
    else:
        analyze_video(path, out=out, progress=False, redo=True)
    CPU["encode"] += _children_cpu() - ffmpeg  # the encoder runs in an ffmpeg child process
    return time.process_time() - t + _children_cpu() - ffmpeg


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(key: str, path: Path, cores: int) -> dict:
    ref_wall, units = reference_wall(path)
    CPU.clear()
    if not path.is_dir():
        CPU["decode"] = decode_cpu(path)
    with tempfile.TemporaryDirectory() as tmp:
        job_cpu = run_job(path, Path(tmp) / "out")
    target = TARGETS[key]
    allowed = ref_wall / units / target
    floor = (CPU["haar"] + CPU["model"] + CPU["decode"] + CPU["encode"]) / cores / units
    ms = lambda s: round(1000 * s / units, 2)  # noqa: E731
    return {"input": path.stem, "units": units, "reference wall ms": ms(ref_wall), "target": f"{target:g}x",
            "allowed wall ms": round(1000 * allowed, 2), "job CPU ms": ms(job_cpu), "Haar CPU ms": ms(CPU["haar"]),
            "model CPU ms": ms(CPU["model"]), "decode CPU ms": ms(CPU["decode"]), "encode CPU ms": ms(CPU["encode"]),
            "cores": cores,
            "floor wall ms": round(1000 * floor, 2), "floor / allowed": round(floor / allowed, 2),
            "reachable with these answers": "no" if floor > allowed else "not ruled out"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=list(TARGETS), help="inputs to run (repeatable)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores the floor may use")
    args = ap.parse_args()
    inputs = B.make_inputs(3000, 500, args.only or list(TARGETS))  # bench_speed's default sizes
    missing = [key for key in args.only or [] if key not in inputs]
    if missing:
        sys.exit(f"speed_floor.py: {', '.join(missing)} needs {B.REAL_CLIPS['hamilton']} (../shared beside the "
                 "project)")
    instrument()
    rows = []
    for key, (path, _) in inputs.items():
        rows.append(measure(key, path, args.cores))
        print(rows[-1], flush=True)
    table = "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                      + ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows])
    print(table)
    if not args.only:
        when = time.strftime("%Y-%m-%d %H:%M")
        B.RESULTS.joinpath("speed_floor.md").write_text(
            f"Measured {when} on {os.cpu_count()} CPUs with `python benchmarks/speed_floor.py` (what each column "
            f"is: the script's docstring). Per frame or photo.\n\n{table}\n")


if __name__ == "__main__":
    main()
