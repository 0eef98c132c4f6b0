"""Ray scale-out: the same folder and video jobs on a 1-node and a 2-node Ray cluster made on this machine.

    python benchmarks/bench_ray.py [--photos 500] [--frames 3000]     # writes benchmarks/results/ray.md

`ray start --head` with one CPU, the jobs, then a second `ray start --address=...` node with its own CPU, the
jobs again (`--redo`): images/s and frames/s with 1 and 2 nodes. Plain local runs are measured beside them. The
video is one long clip cut into frame ranges (`--split-frames`). Needs the extra: pip install "batchemo[ray]".
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench_speed import ENV, ROOT, SHARED_CLIP, WORK, looped_clip, photo_folder, write_result

PORT = "6391"


def ray(*args: str, env=None) -> None:
    subprocess.run(["ray", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def timed(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    r = subprocess.run(args, env=env, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise RuntimeError(r.stderr[-2000:])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--frames", type=int, default=3000)
    a = ap.parse_args()
    photos = photo_folder(WORK / f"photos_{a.photos}", a.photos)
    src = SHARED_CLIP if SHARED_CLIP.exists() else ROOT / "samples" / "video" / "two_faces.mp4"
    clip = looped_clip(src, WORK / f"{src.stem}_x{a.frames}.avi", a.frames)
    py = [sys.executable, "-m", "batchemo"]
    jobs = [("folder", f"{a.photos} photos", a.photos, "images_per_s",
             py + ["folder", str(photos), "--no-progress", "--redo", "--force"]),
            ("video", f"{a.frames} frames", a.frames, "frames_per_s",
             py + ["video", str(clip), "--no-progress", "--redo", "--force", "--split-frames", str(a.frames // 8)])]
    # Ray >= 2.5x refuses a second node without an auth token: make one and use it on every node.
    env = {**ENV, "RAY_ADDRESS": f"127.0.0.1:{PORT}", "RAY_AUTH_MODE": "token"}
    subprocess.run(["ray", "get-auth-token", "--generate"], env=env, capture_output=True)
    rows = []

    def run_all(runner: str, nodes: int, cpus: int, extra: list[str], run_env: dict) -> None:
        for name, work, units, unit, args in jobs:
            secs = timed(args + ["--out", str(WORK / "out" / f"ray-{name}-{runner}-{nodes}")] + extra, run_env)
            rows.append({"job": f"{name} ({work})", "runner": runner, "nodes": nodes, "cpus": cpus,
                         "seconds": round(secs, 1), unit: round(units / secs, 1)})

    run_all("local threads (no Ray)", 1, os.cpu_count(), [], dict(ENV))
    try:
        ray("stop", "--force")
        ray("start", "--head", "--port", PORT, "--num-cpus", "1", "--include-dashboard", "false",
            "--disable-usage-stats", env=env)
        run_all("Ray", 1, 1, ["--ray", "auto"], env)
        ray("start", "--address", f"127.0.0.1:{PORT}", "--num-cpus", "1", "--disable-usage-stats", env=env)
        time.sleep(5)  # let the second node register before the job asks for resources
        run_all("Ray", 2, 2, ["--ray", "auto"], env)
    finally:
        ray("stop", "--force")
    write_result("ray", f"with `python benchmarks/bench_ray.py --photos {a.photos} --frames {a.frames}` on one "
                 f"{os.cpu_count()}-CPU machine (the two Ray nodes share it)", rows)


if __name__ == "__main__":
    main()
