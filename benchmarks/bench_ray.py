"""Ray scale-out: the same folder job on a 1-node and a 2-node Ray cluster made on this machine.

    python benchmarks/bench_ray.py [--photos 500]     # writes benchmarks/results/ray.md

`ray start --head` with one CPU, the job, then a second `ray start --address=...` node with its own CPU, the
job again (`--redo`): images/s with 1 and 2 nodes. A plain local run is measured beside them. Needs the extra:
pip install "batchemo[ray]".
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench_speed import WORK, photo_folder, write_result

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
    a = ap.parse_args()
    photos = photo_folder(WORK / f"photos_{a.photos}", a.photos)
    job = [sys.executable, "-m", "batchemo", "folder", str(photos), "--no-progress", "--redo", "--force"]
    # Ray >= 2.5x refuses a second node without an auth token: make one and use it on every node.
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{PORT}", "RAY_AUTH_MODE": "token"}
    subprocess.run(["ray", "get-auth-token", "--generate"], env=env, capture_output=True)
    rows = []
    secs = timed(job + ["--out", str(WORK / "out" / "ray-local")], dict(os.environ))
    rows.append({"runner": "local threads (no Ray)", "nodes": 1, "cpus": os.cpu_count(), "seconds": round(secs, 1),
                 "images_per_s": round(a.photos / secs, 1)})
    try:
        ray("stop", "--force")
        ray("start", "--head", "--port", PORT, "--num-cpus", "1", "--include-dashboard", "false",
            "--disable-usage-stats", env=env)
        secs = timed(job + ["--out", str(WORK / "out" / "ray-1"), "--ray", "auto"], env)
        rows.append({"runner": "Ray", "nodes": 1, "cpus": 1, "seconds": round(secs, 1),
                     "images_per_s": round(a.photos / secs, 1)})
        ray("start", "--address", f"127.0.0.1:{PORT}", "--num-cpus", "1", "--disable-usage-stats", env=env)
        time.sleep(5)  # let the second node register before the job asks for resources
        secs = timed(job + ["--out", str(WORK / "out" / "ray-2"), "--ray", "auto"], env)
        rows.append({"runner": "Ray", "nodes": 2, "cpus": 2, "seconds": round(secs, 1),
                     "images_per_s": round(a.photos / secs, 1)})
    finally:
        ray("stop", "--force")
    write_result("ray", f"with `python benchmarks/bench_ray.py --photos {a.photos}` on one {os.cpu_count()}-CPU "
                 "machine (the two Ray nodes share it)", rows)


if __name__ == "__main__":
    main()
