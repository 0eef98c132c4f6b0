"""What report.html costs: the folder page and the video page written again from a finished run's tables, timed
next to the run itself, with the pages' sizes (moved out of the test suite, where it timed and asserted nothing).

    python benchmarks/bench_report_html.py      # prints one line, writes benchmarks/results/report_html.md

Inputs: the sample photos (plus a copy under a name that is markup, and a file that is no JPEG, as the page tests
use) with --save-faces, and the sample video with --save-faces, analysed under benchmarks/work/report_html/.
Exits 1 when a page passes PAGE_BUDGET bytes: thumbnails are files beside the page, never inlined.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import batchemo  # noqa: E402
from batchemo.jobs.options import FolderOptions, VideoOptions  # noqa: E402
from batchemo.report import html as H  # noqa: E402
from batchemo.pipeline.model import EmotionModel  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
WORK = HERE / "work" / "report_html"
RESULTS = HERE / "results"
PAGE_BUDGET = 200_000  # bytes per page


def main() -> int:
    model = EmotionModel.load()
    shutil.rmtree(WORK, ignore_errors=True)
    src = WORK / "photos"
    shutil.copytree(SAMPLES / "images", src)
    shutil.copy(src / "astronaut.png", src / 'group/odd <b>&"name"#1.png')
    (src / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")

    t0 = time.perf_counter()
    out = batchemo.analyze_folder(src, WORK / "folder", model, FolderOptions(save_faces=True), progress=False,
                                  log=lambda m: None).out
    run_s = time.perf_counter() - t0
    args = (batchemo.read_report(out / "files.csv"), batchemo.read_report(out / "faces.csv"),
            batchemo.read_report(out / "summary.csv"), json.loads((out / "run.json").read_text()))
    t0 = time.perf_counter()
    page = H.write_folder_page(out, src, *args, classes=model.classes, card=model.card)
    folder_s = time.perf_counter() - t0

    video = SAMPLES / "video" / "two_faces.mp4"
    res = batchemo.analyze_video(video, WORK / "video", model, VideoOptions(save_faces=True), progress=False)
    vout = res.out
    t0 = time.perf_counter()
    vpage = H.write_video_page(vout, video, batchemo.read_report(vout / "frames.csv"),
                               batchemo.read_report(vout / "timeline.csv"), batchemo.read_report(vout / "summary.csv"),
                               json.loads((vout / "run.json").read_text()), classes=model.classes, card=model.card)
    video_s = time.perf_counter() - t0

    rows = pd.DataFrame([
        {"page": "folder (sample photos)", "write_ms": round(folder_s * 1000), "bytes": page.stat().st_size,
         "run_s": round(run_s, 2)},
        {"page": "video (two_faces.mp4)", "write_ms": round(video_s * 1000), "bytes": vpage.stat().st_size,
         "run_s": round(res.seconds, 2)}])
    print(f"report.html: folder page {rows.write_ms[0]} ms, {rows.bytes[0]} bytes (run {rows.run_s[0]:.2f} s); "
          f"video page {rows.write_ms[1]} ms, {rows.bytes[1]} bytes (run {rows.run_s[1]:.2f} s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_html.md").write_text(
        "# report.html: cost of writing the pages\n\n`python benchmarks/bench_report_html.py`: each page written "
        "again from its run's tables (thumbnails included), next to the run that made them.\n\n"
        + "\n".join(["| page | write (ms) | bytes | run (s) |", "|---|---|---|---|"]
                    + [f"| {r.page} | {r.write_ms} | {r.bytes} | {r.run_s} |" for r in rows.itertuples()]) + "\n")
    over = rows[rows["bytes"] > PAGE_BUDGET]
    for r in over.itertuples():
        print(f"{r.page}: {r.bytes} bytes, over the {PAGE_BUDGET} budget", file=sys.stderr)
    return 1 if len(over) else 0


if __name__ == "__main__":
    sys.exit(main())
