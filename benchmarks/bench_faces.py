"""Face-finding benchmark on real footage: batchemo against plain Haar, scored on reference boxes.

    nice python benchmarks/bench_faces.py                       # writes benchmarks/results/faces.{md,json}
    python benchmarks/bench_faces.py --variant fast='--detect-every 60' --variant sf105='--scale-factor 1.05'
    python benchmarks/bench_faces.py --only d3 --only hamilton --no-photos --no-haar   # a quick look

A full run takes about 15 minutes on 2 CPUs (plain Haar and --accurate at full resolution are most of it).
Only a full run (no --only, photos included) writes results/faces.md and faces.json.

Inputs: the 9 videos and 11 photos of ../shared/media/realclips (`--data DIR`; see its README.md) with MTCNN
reference boxes (`<clip>.faces.csv`, `photos.faces.csv`) and BlazeFace second opinions (`*.faces_blazeface.csv`).
Without that folder the script exits 2 and writes nothing.

Systems, run one after another in one run, each clip in its own child process (its time includes start-up):
- plain Haar: OpenCV's haarcascade_frontalface_default on the full-resolution grey image of every frame/photo,
  scaleFactor 1.1, minNeighbors 5, no minimum size (Haar's own 24 px window). No tracks.
- batchemo defaults: `python -m batchemo video CLIP --out WORK/... --no-annotate --redo --no-progress`, and
  `batchemo folder` on a copy of the 11 photos; the working tree's code (or `--batchemo-root DIR`'s) via
  PYTHONPATH; boxes and track ids from frames.csv / faces.csv, read by column name.
- batchemo variants: the same with extra CLI args, `--variant NAME='ARGS'` (repeatable; default
  accurate='--accurate'). Args that the `folder` job rejects leave that variant's photo cells empty.

Scoring, per frame or photo (the recipe of realclips/README.md):
- must-find: MTCNN boxes with score >= 0.95 and w >= 24. Every other reference box (lower MTCNN score, smaller,
  every BlazeFace box) is "ignore".
- hit: a system box matched one-to-one to a must-find box, greedily by IoU (best pair first), IoU >= 0.4.
- false: a system box that overlaps no reference box at all (IoU == 0 with every MTCNN and BlazeFace box). A box
  that overlaps only ignore boxes, or a must-find box that another box won, is neither hit nor false.
- false<.4: a looser count, system boxes that are not hits and reach IoU 0.4 with no reference box (the false
  boxes plus boxes that only graze a face). docs/benchmarks.md quotes the strict count, with this one in
  brackets.
Only analysed frames count (every `analyse_every`-th frame of batchemo's run.json; all frames by default).

Video columns:
- frames: frames analysed; must: must-find boxes on them; hits; recall %: hits / must;
- false, false/100f: false boxes and per 100 analysed frames; false<.4/100f: the looser count per 100 frames;
- tracks>=1s: face ids (frames.csv `face`) whose first-to-last frame span, (last - first + 1) / fps, is >= 1 s;
  blank for plain Haar. ids: all face ids. If frames.csv has a `phantom` or `short_track` column,
  "tracks>=1s unflagged" counts again without the rows where any of those is set.
- people: on screen, by eye (clips.csv `people_by_eye`);
- wall s: the child process's wall time; cpu s: its CPU time, user + system over all threads (steadier than
  wall time on a shared machine); frames/s: frames / wall s; exit: the CLI's exit code, shown when any is not 0
  (1 = a partial video, still scored).
Pooled rows sum the counts of the clips (recall = all hits / all must-find; per 100 frames over all frames).
Photos: "hits / false" per photo and system, the totals, recall, and the looser false count.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchemo.pipeline.track import iou as box_iou  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work" / "faces"
RESULTS = HERE / "results"
DATA = ROOT.parent / "shared" / "media" / "realclips"
HAAR = dict(scaleFactor=1.1, minNeighbors=5)  # no minSize: Haar's own 24 px window
MUST_SCORE, MUST_W, MATCH_IOU = 0.95, 24, 0.4
FLAG_COLUMNS = ("phantom", "short_track")
PHOTO_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Children run the chosen tree's batchemo (default: this working tree), not an installed copy that may be older.
BATCHEMO_ROOT = ROOT


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BATCHEMO_ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}


# ---------------------------------------------------------------- plain Haar (child process)
def haar_child(src: Path, out_csv: Path) -> None:
    """Boxes of full-resolution Haar on every frame of a video, or on each photo of a folder, as a CSV."""
    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    rows = []

    def detect(img, key):
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        for x, y, w, h in np.asarray(casc.detectMultiScale(g, **HAAR)).reshape(-1, 4):
            rows.append((key, int(x), int(y), int(w), int(h)))

    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in PHOTO_EXT)
        for p in files:
            detect(cv2.imread(str(p)), p.name)
        n, key = len(files), "source"
    else:
        cap = cv2.VideoCapture(str(src))
        n, key = 0, "frame"
        while True:
            ok, f = cap.read()
            if not ok:
                break
            detect(f, n)
            n += 1
    pd.DataFrame(rows, columns=[key, "x", "y", "w", "h"]).to_csv(out_csv, index=False)
    Path(str(out_csv) + ".json").write_text(json.dumps({"frames": n}))


# ---------------------------------------------------------------- scoring
def iou(a, b) -> np.ndarray:
    return box_iou(np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4))


def score_unit(boxes, must, ignore) -> tuple[int, int, int, int]:
    """(must-find, hits, false, false<.4) on one frame or photo; boxes as [N, 4] (x, y, w, h)."""
    boxes, must, ignore = (np.asarray(b, float).reshape(-1, 4) for b in (boxes, must, ignore))
    hit = set()
    if len(boxes) and len(must):
        m = iou(boxes, must)
        won = set()
        for k in np.argsort(-m, axis=None, kind="stable"):
            i, j = divmod(int(k), m.shape[1])
            if m[i, j] < MATCH_IOU:
                break
            if i not in hit and j not in won:
                hit.add(i)
                won.add(j)
    refs = np.concatenate([must, ignore])
    best = iou(boxes, refs).max(axis=1) if len(refs) and len(boxes) else np.zeros(len(boxes))
    loose = sum(1 for i in range(len(boxes)) if i not in hit and best[i] < MATCH_IOU)
    return len(must), len(hit), int((best <= 0).sum()), loose


def split_reference(mtcnn: pd.DataFrame, blaze: pd.DataFrame, key: str) -> tuple[dict, dict]:
    """{unit: must-find boxes}, {unit: ignore boxes} from the MTCNN and BlazeFace tables."""
    is_must = (mtcnn["score"] >= MUST_SCORE) & (mtcnn["w"] >= MUST_W)
    xywh = ["x", "y", "w", "h"]
    must = {k: g[xywh].to_numpy(float) for k, g in mtcnn[is_must].groupby(key)}
    ignore = {k: g[xywh].to_numpy(float) for k, g in pd.concat([mtcnn[~is_must], blaze]).groupby(key)}
    return must, ignore


def score_boxes(boxes: pd.DataFrame, units, must: dict, ignore: dict, key: str) -> dict:
    """Summed must, hits, false, false<.4 over the units (frames or photos), and per unit."""
    by = {k: g[["x", "y", "w", "h"]].to_numpy(float) for k, g in boxes.groupby(key)} if len(boxes) else {}
    per = {u: score_unit(by.get(u, ()), must.get(u, ()), ignore.get(u, ())) for u in units}
    tot = np.sum(list(per.values()), axis=0) if per else np.zeros(4, int)
    return {"must": int(tot[0]), "hits": int(tot[1]), "false": int(tot[2]), "loose": int(tot[3]), "per": per}


def long_tracks(faces: pd.DataFrame, fps: float) -> int:
    """Face ids whose first-to-last frame span lasts at least 1 s."""
    if not len(faces) or "face" not in faces:
        return 0
    span = faces.groupby("face")["frame"].agg(lambda f: (f.max() - f.min() + 1) / fps)
    return int((span >= 1.0 - 1e-9).sum())


def flagged(faces: pd.DataFrame) -> pd.Series | None:
    """Rows with any FLAG_COLUMNS set, or None when frames.csv has none of those columns."""
    cols = [c for c in FLAG_COLUMNS if c in faces.columns]
    if not cols:
        return None
    f = pd.Series(False, index=faces.index)
    for c in cols:
        v = faces[c]
        if v.dtype == object:
            v = v.astype(str).str.strip().str.lower().isin({"1", "true", "yes", "y", "t"})
        f |= v.fillna(0).astype(bool)
    return f


# ---------------------------------------------------------------- running the systems
def run_child(args: list[str]) -> dict:
    """Wall s, CPU s (user + system), exit code and stderr's last line of a child process, start-up included."""
    r0, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    # cwd too: `python -m` puts it first on sys.path, ahead of PYTHONPATH
    p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env(),
                       cwd=BATCHEMO_ROOT)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall": wall, "cpu": cpu, "exit": p.returncode, "stderr": p.stderr}


def failed(r: dict, what: str) -> dict:
    print(f"  {what}: exit {r['exit']}\n{r['stderr'][-1500:]}", file=sys.stderr)
    return {**r, "error": (r["stderr"].strip().splitlines() or ["?"])[-1]}


def read_rows(csv: Path) -> pd.DataFrame:
    faces = pd.read_csv(csv)
    return faces[faces["x"].notna()] if "x" in faces else faces


def run_clip(cli_args: list[str] | None, clip: Path, out: Path) -> dict:
    """One system on one clip: its boxes (frames.csv rows), analysed frames, times and exit code."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)  # a crash must not leave an older run's output to be scored
    if cli_args is None:
        csv = Path(str(out) + ".csv")
        r = run_child([sys.executable, __file__, "--haar-child", str(clip), str(csv)])
        if r["exit"] != 0:
            return failed(r, f"plain Haar / {clip.name}")
        n = json.loads(Path(str(csv) + ".json").read_text())["frames"]
        return {**r, "faces": pd.read_csv(csv), "frames": range(n)}
    r = run_child([sys.executable, "-m", "batchemo", "video", str(clip), "--out", str(out), "--no-annotate",
                   "--redo", "--no-progress", *cli_args])
    if r["exit"] not in (0, 1) or not (out / "frames.csv").exists():  # 1: a partial video, still scored
        return failed(r, f"{shlex.join(cli_args)} / {clip.name}")
    faces = read_rows(out / "frames.csv")
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    every = int(run.get("video", {}).get("analyse_every") or 1)
    counts = run.get("counts", {})
    n = int(counts.get("frames_decoded") or (faces["frame"].max() + 1 if len(faces) else 0))
    frames = range(0, n, every)
    if counts.get("frames_analysed") not in (None, len(frames)):
        print(f"  warning: {clip.name}: run.json says {counts['frames_analysed']} frames analysed, scoring "
              f"every {every}th of {n} ({len(frames)})", file=sys.stderr)
    return {**r, "faces": faces, "frames": frames}


def run_photos(cli_args: list[str] | None, photo_dir: Path, out: Path) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    if cli_args is None:
        csv = Path(str(out) + ".csv")
        r = run_child([sys.executable, __file__, "--haar-child", str(photo_dir), str(csv)])
        return failed(r, "plain Haar / photos") if r["exit"] != 0 else {**r, "faces": pd.read_csv(csv)}
    r = run_child([sys.executable, "-m", "batchemo", "folder", str(photo_dir), "--out", str(out), "--no-annotate",
                   "--redo", "--no-progress", *cli_args])
    if r["exit"] not in (0, 1) or not (out / "faces.csv").exists():
        return failed(r, f"{shlex.join(cli_args)} / photos")
    faces = read_rows(out / "faces.csv")
    return {**r, "faces": faces.assign(source=faces["source"].map(lambda s: Path(str(s)).name))}


# ---------------------------------------------------------------- tables
def markdown(df: pd.DataFrame) -> str:
    cells = [[str(c) for c in df.columns]] + [["" if v is None or v != v else str(v) for v in row]
                                              for row in df.to_numpy()]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(df.columns))
    return "\n".join(lines)


def pct(a, b):
    return round(100 * a / b, 1) if b else None


def video_row(system: str, clip: str, s: dict, people=None) -> dict:
    """A table row from counts s (frames, must, hits, false, loose, tracks, ids, unflagged, wall, cpu, exit)."""
    g = s.get
    return {"system": system, "clip": clip, "frames": g("frames"), "must": g("must"), "hits": g("hits"),
            "recall %": pct(g("hits") or 0, g("must")), "false": g("false"),
            "false/100f": pct(g("false"), g("frames")) if g("false") is not None else None,
            "false<.4/100f": pct(g("loose"), g("frames")) if g("loose") is not None else None,
            "tracks>=1s": g("tracks"), "ids": g("ids"), "tracks>=1s unflagged": g("unflagged"), "people": people,
            "wall s": round(s["wall"], 1), "cpu s": round(s["cpu"], 1),
            "frames/s": round(g("frames") / s["wall"], 1) if g("frames") else None, "exit": g("exit")}


def photo_table(photo: dict, names: list[str]) -> pd.DataFrame:
    """One row per photo with a "hits / false" cell per system, then totals, recall and the looser false count."""
    photos = next(iter(photo.values()))["names"]
    rows = []
    for p in photos:
        row = {"photo": p, "must": next(iter(photo.values()))["must_by"][p]}
        for s in names:
            per = photo[s].get("per")
            row[s] = f"{per[p][1]} / {per[p][2]}" if per else ""
        rows.append(row)
    rows.append({"photo": "total", "must": sum(r["must"] for r in rows),
                 **{s: f"{photo[s]['hits']} / {photo[s]['false']}" if "per" in photo[s] else "" for s in names}})
    rows.append({"photo": "recall %", **{s: photo[s].get("recall %") for s in names}})
    rows.append({"photo": "false<.4", **{s: photo[s].get("loose") for s in names}})
    rows.append({"photo": "wall s (cpu s)",
                 **{s: f"{photo[s]['wall s']} ({photo[s]['cpu s']})" for s in names}})
    return pd.DataFrame(rows, dtype=object)


def main() -> None:
    global BATCHEMO_ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the clips, photos and reference boxes")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME='ARGS'",
                    help="a batchemo variant: extra CLI args (repeatable; default: accurate='--accurate')")
    ap.add_argument("--only", action="append", help="only clips whose name contains this (repeatable)")
    ap.add_argument("--no-photos", action="store_true")
    ap.add_argument("--no-haar", action="store_true", help="skip plain Haar (slow: full resolution)")
    ap.add_argument("--no-batchemo", action="store_true", help="plain Haar only (and any --variant)")
    ap.add_argument("--batchemo-root", type=Path, default=ROOT,
                    help="source tree whose batchemo the CLI runs (default: this working tree), e.g. an export of "
                         "a commit: git archive HEAD | tar -x -C /tmp/head")
    ap.add_argument("--haar-child", nargs=2, metavar=("SRC", "OUT_CSV"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.haar_child:
        haar_child(Path(a.haar_child[0]), Path(a.haar_child[1]))
        return

    data = a.data.resolve()
    if not (data / "clips.csv").exists():
        print(f"bench_faces: no clips.csv in {data} (the realclips folder is absent; pass --data DIR)", file=sys.stderr)
        sys.exit(2)
    BATCHEMO_ROOT = a.batchemo_root.resolve()
    if not (BATCHEMO_ROOT / "batchemo" / "__main__.py").exists():
        print(f"bench_faces: no batchemo package under {BATCHEMO_ROOT}", file=sys.stderr)
        sys.exit(2)
    systems: list[tuple[str, list[str] | None]] = [] if a.no_haar else [("plain Haar", None)]
    variants = [] if a.no_batchemo else [("defaults", "")]
    for v in a.variant or ([] if a.no_batchemo else ["accurate=--accurate"]):
        name, sep, args = v.partition("=")
        if not sep or not name.strip() or name.strip() in {n for n, _ in variants}:
            ap.error(f"--variant wants NAME='ARGS' with a new NAME ('defaults' is taken), got {v!r}")
        variants.append((name.strip(), args))
    systems += [(f"batchemo {n}", shlex.split(args)) for n, args in variants]

    clips = pd.read_csv(data / "clips.csv")
    if a.only:
        clips = clips[clips["clip"].map(lambda c: any(s in c for s in a.only))]
    refs = {c: split_reference(pd.read_csv(data / f"{c}.faces.csv"), pd.read_csv(data / f"{c}.faces_blazeface.csv"),
                               "frame") for c in clips["clip"]}
    WORK.mkdir(parents=True, exist_ok=True)
    photo_dir = WORK / "photos_in"  # only the photos: the folder job walks everything under its PATH
    photo_ref = None
    if not a.no_photos and (data / "photos.faces.csv").exists():
        shutil.rmtree(photo_dir, ignore_errors=True)
        photo_dir.mkdir(parents=True)
        names = sorted(p.name for p in data.iterdir() if p.suffix.lower() in PHOTO_EXT)
        for n in names:
            shutil.copy2(data / n, photo_dir / n)
        photo_ref = (names, *split_reference(pd.read_csv(data / "photos.faces.csv"),
                                             pd.read_csv(data / "photos.faces_blazeface.csv"), "file"))

    video_rows, summary, photo = [], [], {}
    report = {"data": str(data), "batchemo_root": str(BATCHEMO_ROOT), "cpus": os.cpu_count(),
              "recipe": {"must_find": f"MTCNN score >= {MUST_SCORE} and w >= {MUST_W}", "hit_iou": MATCH_IOU,
                         "false": "IoU == 0 with every MTCNN and BlazeFace box",
                         "false<.4": f"not a hit and IoU < {MATCH_IOU} with every reference box",
                         "track_min_s": 1.0}, "systems": []}
    keys = ("frames", "must", "hits", "false", "loose", "tracks", "ids", "unflagged", "wall", "cpu")
    for system, cli_args in systems:
        print(f"{system}: {'full-res Haar' if cli_args is None else shlex.join(cli_args) or '(no extra args)'}",
              flush=True)
        tag = system.replace(" ", "_")
        sys_rep = {"system": system, "cli_args": cli_args, "clips": []}
        tot = dict.fromkeys(keys, 0)
        n_failed, any_flags = 0, False
        for c in clips.itertuples():
            r = run_clip(cli_args, data / c.clip, WORK / tag / c.clip)
            if "error" in r:
                n_failed += 1
                row = video_row(system, c.clip, r, c.people_by_eye)
                sys_rep["clips"].append({**row, "error": r["error"]})
            else:
                must, ignore = refs[c.clip]
                s = {**score_boxes(r["faces"], r["frames"], must, ignore, "frame"), "frames": len(r["frames"]),
                     "wall": r["wall"], "cpu": r["cpu"], "exit": r["exit"]}
                if cli_args is not None:
                    s["tracks"], s["ids"] = long_tracks(r["faces"], float(c.fps)), int(r["faces"]["face"].nunique())
                    fl = flagged(r["faces"])
                    if fl is not None:
                        any_flags = True
                        s["unflagged"] = long_tracks(r["faces"][~fl], float(c.fps))
                row = video_row(system, c.clip, s, c.people_by_eye)
                sys_rep["clips"].append(dict(row))
                print(f"  {c.clip}: recall {row['recall %']} %, {row['false']} false, tracks>=1s {row['tracks>=1s']}"
                      f", {r['wall']:.1f} s ({r['cpu']:.1f} s CPU)", flush=True)
            video_rows.append(row)
            for k in keys:
                tot[k] += (r if "error" in r else s).get(k) or 0
        if cli_args is None:
            tot.update(tracks=None, ids=None)
        if not any_flags:
            tot["unflagged"] = None
        pooled = video_row(system, f"pooled ({n_failed} clips failed)" if n_failed else "pooled", tot)
        video_rows.append(pooled)
        sys_rep["pooled"] = pooled

        p = {"wall s": None, "cpu s": None}
        if photo_ref is not None:
            names, must, ignore = photo_ref
            r = run_photos(cli_args, photo_dir, WORK / tag / "photos")
            p = {"names": names, "must_by": {n: len(must.get(n, ())) for n in names}, "exit": r["exit"],
                 "wall s": round(r["wall"], 1), "cpu s": round(r["cpu"], 1)}
            if "error" in r:
                p["error"] = r["error"]
            else:
                sc = score_boxes(r["faces"], names, must, ignore, "source")
                p.update(sc, **{"recall %": pct(sc["hits"], sc["must"])})
                print(f"  photos: recall {p['recall %']} %, {sc['false']} false, {r['wall']:.1f} s", flush=True)
            photo[system] = p
            sys_rep["photos"] = {k: v for k, v in p.items() if k not in ("names", "must_by", "per")}
            if "per" in p:
                sys_rep["photos"]["per_photo"] = {n: dict(zip(("must", "hits", "false", "false<.4"), v))
                                                  for n, v in p["per"].items()}
        report["systems"].append(sys_rep)
        summary.append({"system": system, "args": "" if cli_args is None else shlex.join(cli_args),
                        **{k: pooled[k] for k in ("frames", "recall %", "false/100f", "false<.4/100f",
                                                  "tracks>=1s")},
                        "video wall s": pooled["wall s"], "video cpu s": pooled["cpu s"],
                        "frames/s": pooled["frames/s"], "photo recall %": p.get("recall %"),
                        "photo false": p.get("false"), "photo wall s": p["wall s"]})

    vdf = pd.DataFrame(video_rows, dtype=object)
    if vdf["tracks>=1s unflagged"].isna().all():
        vdf = vdf.drop(columns=["tracks>=1s unflagged"])
    if all(e in (0, None) for e in vdf["exit"]):
        vdf = vdf.drop(columns=["exit"])
    cmd = " ".join(["python benchmarks/bench_faces.py", *(f"--variant {shlex.quote(v)}" for v in a.variant),
                    *(f"--only {shlex.quote(s)}" for s in a.only or []), *(["--no-photos"] if a.no_photos else []),
                    *(["--no-haar"] if a.no_haar else []), *(["--no-batchemo"] if a.no_batchemo else []),
                    *([f"--batchemo-root {BATCHEMO_ROOT}"] if BATCHEMO_ROOT != ROOT else [])])
    md = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPUs (shared machine: compare cpu s "
          f"rather than wall s) with `{cmd}`, {len(clips)} clips and {len(photo_ref[0]) if photo_ref else 0} photos "
          f"of {data.name}/. Must-find: MTCNN score >= {MUST_SCORE}, w >= {MUST_W}; hit: IoU >= {MATCH_IOU}, "
          f"one-to-one; false: overlaps no MTCNN or BlazeFace box; false<.4: no reference box at IoU >= "
          f"{MATCH_IOU}. Columns: the docstring of benchmarks/bench_faces.py.",
          "", "## Pooled", "", markdown(pd.DataFrame(summary, dtype=object)), "", "## Videos", "", markdown(vdf)]
    if photo:
        md += ["", "## Photos (hits / false boxes)", "", markdown(photo_table(photo, list(photo)))]
    text = "\n".join(md) + "\n"
    if a.only or a.no_photos:
        print("(a partial run: results/faces.* not written)")
    else:
        RESULTS.mkdir(exist_ok=True)
        report.update(measured=time.strftime("%Y-%m-%d %H:%M"), command=cmd, summary=summary)
        (RESULTS / "faces.md").write_text(text)
        (RESULTS / "faces.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(text)


if __name__ == "__main__":
    main()
