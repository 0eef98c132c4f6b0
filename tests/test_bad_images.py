"""The bad-image corpus: every case is analysed or refused with one line naming the file, and the batch goes on."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from batchemo.report import read_report

from .conftest import ROOT, SAMPLES


def _jpeg(img: np.ndarray, params: list[int] | None = None) -> bytes:
    return cv2.imencode(".jpg", img, params or [])[1].tobytes()


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def _bad_crc_png(face: np.ndarray) -> bytes:
    data = bytearray(_png(face))
    i = data.find(b"IDAT") + 4 + 20  # inside the first image-data chunk: its CRC no longer matches
    data[i] ^= 0xFF
    return bytes(data)


def _cmyk_jpeg(face: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(cv2.cvtColor(face, cv2.COLOR_BGR2RGB)).convert("CMYK").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _exif_rotated(face: np.ndarray) -> bytes:
    """Pixels stored turned 90 degrees, EXIF orientation 6 saying how to turn them upright."""
    from PIL import Image

    stored = cv2.rotate(face, cv2.ROTATE_90_COUNTERCLOCKWISE)
    im = Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=92)
    return buf.getvalue()


def _rgba_transparent(face: np.ndarray) -> bytes:
    h, w = face.shape[:2]
    canvas = np.zeros((h + 80, w + 80, 4), np.uint8)  # transparent black all round
    canvas[40:40 + h, 40:40 + w, :3] = face
    canvas[40:40 + h, 40:40 + w, 3] = 255
    return _png(canvas)


# name -> (bytes maker, expected status, expected faces or a fragment of the reason)
CASES = {
    "zero byte.jpg": (lambda f: b"", "error", "empty file"),
    "truncated.jpg": (lambda f: _jpeg(f)[: len(_jpeg(f)) // 2], "error", "truncated JPEG"),
    "cut in its scan data, 2 MB after.jpg": (lambda f: _jpeg(f)[: len(_jpeg(f)) * 2 // 3] + bytes(2_000_000),
                                              "error", "truncated JPEG"),
    "motion photo.jpg": (lambda f: _jpeg(f) + b"\x00\x00\x00\x18ftypmp42" + bytes(2_000_000), "ok", 1),
    "progressive with trailer.jpg": (lambda f: _jpeg(f, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]) + b"TRAILER" * 500, "ok", 1),
    "truncated.png": (lambda f: _png(f)[: len(_png(f)) // 2], "error", "not a decodable image"),
    "text.jpg": (lambda f: b"just some words, not a picture\n", "error", "not a decodable image"),
    "page.jpg": (lambda f: b"<!DOCTYPE html><html><body>404</body></html>", "error", "<!DOCTYPE"),
    "bad crc.png": (_bad_crc_png, "error", "not a decodable image"),
    "one pixel.png": (lambda f: _png(np.zeros((1, 1, 3), np.uint8)), "error", "too small"),
    "one by n.png": (lambda f: _png(np.zeros((1, 300, 3), np.uint8)), "error", "too small"),
    "huge 50mp.png": (lambda f: _png(np.full((7100, 7100), 128, np.uint8)), "error", "too large"),
    "deep 16bit.png": (lambda f: _png(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257), "ok", 1),
    "grey.png": (lambda f: _png(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)), "ok", 1),
    "cmyk.jpg": (_cmyk_jpeg, "ok", 1),
    "rgba transparent.png": (_rgba_transparent, "ok", 1),
    "exif rotated.jpg": (_exif_rotated, "ok", 1),
    "ünïcödé 表情 face.jpg": (lambda f: _jpeg(f), "ok", 1),
    "stray bytes before a marker.jpg": (lambda f: _jpeg(f).replace(b"\xff\xdb", b"\x00\x00\xff\xdb", 1), "ok", 1),
    "IMG_0001.HEIC": (lambda f: b"\x00\x00\x00\x18ftypheic" + bytes(64), "error", "HEIC images are not supported"),
    "animated.gif": (lambda f: b"GIF89a" + bytes(64), "error", "GIF images are not supported"),
    ("long " + "x" * 200 + ".JPEG"): (lambda f: _jpeg(f), "ok", 1),
}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, face_bgr, model):
    root = tmp_path_factory.mktemp("corpus") / "bad photos"
    (root / "cases").mkdir(parents=True)
    for name, (make, _, _) in CASES.items():
        (root / "cases" / name).write_bytes(make(face_bgr))
    (root / "good").mkdir()
    (root / "good" / "astronaut.png").write_bytes((SAMPLES / "images" / "astronaut.png").read_bytes())
    (root / "good" / "notes.txt").write_text("not an image")
    os.symlink("..", root / "good" / "loop")  # a folder link back up: the walk must not follow it forever
    out = root.parent / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "batchemo", "folder", str(root), "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    return root, out, r


def test_run_finishes_with_exit_code_1(corpus_run):
    _, out, r = corpus_run
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert (out / "faces.csv").exists() and (out / "files.csv").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_case(corpus_run, name):
    _, out, r = corpus_run
    status, expect = CASES[name][1], CASES[name][2]
    files = read_report(out / "files.csv").set_index("source")
    row = files.loc[f"cases/{name}"]
    assert row["status"] == status
    if status == "error":
        assert expect in row["error"] and "\n" not in row["error"]
        lines = [line for line in r.stderr.splitlines() if line.startswith(f"cases/{name}: ")]
        assert len(lines) == 1 and expect in lines[0]
    else:
        assert row["faces"] == expect and row["error"] == ""


def test_exif_rotation_puts_the_box_on_the_face_as_seen(corpus_run, face_bgr):
    _, out, _ = corpus_run
    files = read_report(out / "files.csv").set_index("source")
    h, w = face_bgr.shape[:2]
    row = files.loc["cases/exif rotated.jpg"]
    assert (row["width"], row["height"]) == (w, h)  # upright, as a viewer shows it
    faces = read_report(out / "faces.csv")
    box = faces[faces["source"] == "cases/exif rotated.jpg"].iloc[0]
    # the same face box as on the upright original (within a few pixels)
    from batchemo.pipeline.detect import detect_faces

    ref = detect_faces(cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY))[0]
    assert np.abs(np.array([box.x, box.y, box.w, box.h]) - ref).max() <= 0.1 * ref[2]


def test_other_files_unaffected(corpus_run):
    _, out, _ = corpus_run
    files = read_report(out / "files.csv").set_index("source")
    assert files.loc["good/astronaut.png", "faces"] == 1 and files.loc["good/astronaut.png", "status"] == "ok"
    assert files.loc["good/notes.txt", "status"] == "skipped"
    assert not any(s.startswith("good/loop/") for s in files.index)
    annotated = out / "annotated"
    assert (annotated / "good" / "astronaut.png").exists()
    assert (annotated / "cases" / "ünïcödé 表情 face.jpg").exists()
    assert not (annotated / "cases" / "text.jpg").exists()


def test_unreadable_file(tmp_path, model, monkeypatch):
    """A file we may not read: one error row naming the reason (simulated when running as root)."""
    import batchemo
    from batchemo.pipeline import photo

    d = tmp_path / "p"
    d.mkdir()
    (d / "a.png").write_bytes((SAMPLES / "images" / "astronaut.png").read_bytes())
    (d / "locked.jpg").write_bytes(b"\xff\xd8 whatever")
    if os.geteuid() == 0:  # root reads everything: make the read fail the way it does for other users
        real = Path.read_bytes

        def read_bytes(self):
            if self.name == "locked.jpg":
                raise PermissionError(13, "Permission denied")
            return real(self)

        monkeypatch.setattr(photo.Path, "read_bytes", read_bytes)
    else:
        (d / "locked.jpg").chmod(0)
    res = batchemo.analyze_folder(d, out=tmp_path / "o", model=model, progress=False, log=lambda m: None)
    files = read_report(res.out / "files.csv").set_index("source")
    assert files.loc["locked.jpg", "status"] == "error" and files.loc["locked.jpg", "error"] == "permission denied"
    assert files.loc["a.png", "faces"] == 1


def test_output_folder_of_another_input_is_refused(tmp_path, sample_tree, model):
    from typer.testing import CliRunner

    from batchemo.cli import app

    out = tmp_path / "shared-out"
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes((SAMPLES / "images" / "astronaut.png").read_bytes())
    runner = CliRunner()
    assert runner.invoke(app, ["folder", str(sample_tree), "--out", str(out), "--no-progress",
                               "--no-annotate"]).exit_code == 0
    r = runner.invoke(app, ["folder", str(other), "--out", str(out), "--no-progress"])
    assert r.exit_code == 2 and "holds the report of" in r.output
    r = runner.invoke(app, ["folder", str(other), "--out", str(out), "--no-progress", "--force", "--redo"])
    assert r.exit_code == 0
    assert list(pd.read_csv(out / "files.csv")["source"]) == ["a.png"]


def test_unwritable_output_is_a_clear_error(tmp_path, sample_tree, model):
    from typer.testing import CliRunner

    from batchemo.cli import app

    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    r = CliRunner().invoke(app, ["folder", str(sample_tree), "--out", str(blocker / "report"), "--no-progress"])
    assert r.exit_code == 2 and "cannot write the report here" in r.output and "Traceback" not in r.output


def test_nothing_is_written_outside_out(tmp_path, sample_tree, model):
    import batchemo

    before = {p: p.stat().st_mtime_ns for p in sample_tree.rglob("*")}
    batchemo.analyze_folder(sample_tree, out=tmp_path / "o", model=model, progress=False)
    assert {p: p.stat().st_mtime_ns for p in sample_tree.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "photos"]


def test_names_that_are_not_text_are_reported_and_the_rest_analysed(tmp_path, face_bgr):
    root = tmp_path / "names"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.jpg")).write_bytes(_jpeg(face_bgr))  # a Latin-1 name from an old zip
    (root / "new\nline.jpg").write_bytes(_jpeg(face_bgr)[:300])
    (root / "ok.jpg").write_bytes(_jpeg(face_bgr))
    (root / "Screen 10.00\u202fAM.jpg").write_bytes(_jpeg(face_bgr))  # macOS puts U+202F before AM: a fine name
    (root / os.fsdecode(b"r\xe9sum\xe9.txt")).write_bytes(b"notes")  # not a photo, whatever its name: skipped
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "batchemo", "folder", str(root), "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    files = read_report(out / "files.csv").set_index("source")
    assert files.loc["ok.jpg", "status"] == "ok" and files.loc["ok.jpg", "faces"] == 1
    assert files.loc["new\nline.jpg", "status"] == "error"  # the name as it is in the table
    assert "not valid UTF-8" in files.loc["caf\\xe9.jpg", "error"]
    assert files.loc["Screen 10.00\u202fAM.jpg", "status"] == "ok"  # the name as it is, to join on
    assert files.loc["r\\xe9sum\\xe9.txt", "status"] == "skipped"
    assert list(files["status"]).count("error") == 2
    assert "4 files (0 already done), 2 faces, 2 errors, 1 non-image file skipped" in r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert any(line.startswith("caf\\xe9.jpg: the file name is not valid UTF-8") for line in lines)
    assert any(line.startswith("new\\nline.jpg: truncated JPEG") for line in lines)  # one line, escaped
