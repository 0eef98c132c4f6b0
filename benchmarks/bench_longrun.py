"""Long-run check: a >= 30 min synthetic video and >= 20,000 images; peak RSS and throughput at the start and
at the end of each run, which must not drift.

    python benchmarks/bench_longrun.py [--minutes 30] [--images 20000]   # writes benchmarks/results/longrun.md

Inputs are generated under benchmarks/work/ from the sample photo (faces moving over a canvas). Each job runs
as `python -m batchemo ...` in a child process; its progress bar (stderr) gives throughput over time and /proc
gives the memory of its process tree.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from bench_speed import ENV, RESULTS, ROOT, WORK, tree_rss_mb, write_result


def synthetic_video(path: Path, minutes: float, fps: int = 30, size=(320, 240)) -> Path:
    if path.exists():
        return path
    face = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.png"))[20:260, 100:300]
    face = cv2.resize(face, (80, 96), interpolation=cv2.INTER_AREA)
    w, h = size
    tmp = path.with_name("tmp-" + path.name)
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    n = int(minutes * 60 * fps)
    for i in range(n):
        canvas = np.full((h, w, 3), 150, np.uint8)
        x = int((w - 80) * (0.5 + 0.5 * np.sin(i / 90)))  # drifts left and right
        canvas[60:156, x:x + 80] = face
        out.write(canvas)
    out.release()
    tmp.rename(path)
    return path


def image_folder(path: Path, n: int) -> Path:
    if path.exists():
        return path
    face = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.png"))[20:260, 100:300]
    face = cv2.resize(face, (100, 120), interpolation=cv2.INTER_AREA)
    tmp = path.with_name("tmp-" + path.name)
    rng = np.random.default_rng(0)
    for i in range(n):
        d = tmp / f"{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.full((240, 320, 3), int(rng.integers(90, 200)), np.uint8)
        x, y = int(rng.integers(0, 220)), int(rng.integers(0, 120))
        img[y:y + 120, x:x + 100] = face
        cv2.imwrite(str(d / f"img_{i:05d}.jpg"), img)
    tmp.rename(path)
    return path


def watch(args: list[str], env: dict) -> dict:
    """Run a job; sample (time, units done) from its progress bar and the RSS of its process tree. The job's
    stderr is a pseudo-terminal: to a pipe the bar writes a line only every 30 s (batchemo.progress)."""
    master, slave = pty.openpty()
    # 120 columns: a terminal of none (a fresh pseudo-terminal's size) makes tqdm draw nothing
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    # cwd too: `python -m` puts it first on sys.path, ahead of PYTHONPATH
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave, env=env, cwd=env["PYTHONPATH"])
    os.close(slave)
    progress: list[tuple[float, int, int]] = []
    rss: list[tuple[float, float]] = []
    t0 = time.time()

    def read():
        buf = ""
        while True:
            try:
                ch = os.read(master, 256).decode(errors="replace")
            except OSError:  # EIO: the job has exited and closed the terminal
                ch = ""
            if not ch:
                os.close(master)
                return
            buf += ch
            for part in re.split(r"[\r\n]", buf)[:-1]:
                m = re.search(r"\|\s*(\d+)/(\d+)", part)
                if m:
                    progress.append((time.time() - t0, int(m.group(1)), int(m.group(2))))
            buf = re.split(r"[\r\n]", buf)[-1]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while p.poll() is None:
        rss.append((time.time() - t0, tree_rss_mb(p.pid)))
        time.sleep(1.0)
    reader.join(5)
    return {"progress": progress, "rss": rss, "seconds": time.time() - t0, "exit": p.returncode}


def drift(name: str, unit: str, run: dict) -> dict:
    prog = run["progress"]
    total = prog[-1][2]
    # throughput over the first and the last tenth of the work (start-up excluded from the first)
    def rate(lo, hi):
        pts = [(t, n) for t, n, _ in prog if lo * total <= n <= hi * total]
        return (pts[-1][1] - pts[0][1]) / max(pts[-1][0] - pts[0][0], 1e-9) if len(pts) > 1 else float("nan")

    rss = run["rss"]
    span = rss[-1][0]
    early = max((m for t, m in rss if t <= 0.2 * span), default=float("nan"))
    late = max((m for t, m in rss if t >= 0.8 * span), default=float("nan"))
    return {"job": name, "work": f"{total} {unit}", "minutes": round(run["seconds"] / 60, 1),
            "per_s_first_10%": round(rate(0.02, 0.12), 1), "per_s_last_10%": round(rate(0.88, 0.98), 1),
            "peak_rss_mb_first_20%": round(early), "peak_rss_mb_last_20%": round(late),
            "peak_rss_mb": round(max(m for _, m in rss)), "exit": run["exit"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--images", type=int, default=20000, help="0: no folder run")
    ap.add_argument("--batchemo-root", type=Path, default=ROOT,
                    help="run the jobs with this tree's code (a commit checked out with git worktree add)")
    a = ap.parse_args()
    env = {**ENV, "PYTHONPATH": str(a.batchemo_root.resolve())}
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    video = synthetic_video(WORK / f"synthetic_{a.minutes:g}min.avi", a.minutes)
    tenth = synthetic_video(WORK / f"synthetic_{a.minutes / 10:g}min.avi", a.minutes / 10)
    py = [sys.executable, "-m", "batchemo"]
    tree = "" if a.batchemo_root.resolve() == ROOT else f" ({a.batchemo_root.name} tree)"
    rows = [
        drift(f"video, 1/10 length{tree}", "frames", watch(py + ["video", str(tenth), "--out",
                                                                 str(WORK / "out" / "shortvideo"), "--redo",
                                                                 "--force"], env)),
        drift(f"video{tree}", "frames", watch(py + ["video", str(video), "--out", str(WORK / "out" / "longvideo"),
                                                    "--redo", "--force"], env)),
    ]
    # Memory must be flat with length: peak RSS of the whole video against the one ten times shorter.
    rows[1]["peak_rss_vs_1/10_length_%"] = round(100 * (rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1), 1)
    if a.images:
        images = image_folder(WORK / f"images_{a.images}", a.images)
        rows.append(drift(f"folder{tree}", "images", watch(py + ["folder", str(images), "--out",
                                                                 str(WORK / "out" / "longfolder"), "--redo",
                                                                 "--force"], env)))
    root = f" --batchemo-root {a.batchemo_root}" if tree else ""
    write_result("longrun", f"with `python benchmarks/bench_longrun.py --minutes {a.minutes:g} --images {a.images}"
                 f"{root}`", rows)

if __name__ == "__main__":
    main()
