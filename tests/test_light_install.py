"""`pip install .` without the train extra: the folder and video jobs never need TensorFlow or Keras, and a model
that would need them says which extra brings them."""
from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT, SAMPLES

# Python with tensorflow and keras made unimportable, as in an install without the train extra.
WITHOUT_TF = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"No module named {name!r} (blocked: no train extra)")
sys.meta_path.insert(0, Block())
"""


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TF + code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_the_main_jobs_run_without_tensorflow(tmp_path):
    r = _run(f"""
import batchemo
res = batchemo.analyze_folder({str(SAMPLES / 'images')!r}, out="out", progress=False)
vid = batchemo.analyze_video({str(SAMPLES / 'video' / 'two_faces.mp4')!r}, out="v", progress=False, annotate=False)
assert res.faces > 0 and vid.faces > 0
assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)
print("ok")
""", tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_a_model_without_its_twin_names_the_extra(tmp_path):
    model = tmp_path / "m.keras"
    for suffix in (".keras", ".json"):
        model.with_suffix(suffix).write_bytes((ROOT / "models" / f"emotion{suffix}").read_bytes())
    r = _run(f"""
from batchemo.pipeline.model import EmotionModel
EmotionModel.load({str(model)!r})
""", tmp_path)
    assert r.returncode != 0
    assert 'pip install "batchemo[train]"' in r.stderr.strip().splitlines()[-1]


def test_the_commands_say_which_extra_in_one_line(tmp_path):
    model = tmp_path / "m.keras"
    for suffix in (".keras", ".json"):
        model.with_suffix(suffix).write_bytes((ROOT / "models" / f"emotion{suffix}").read_bytes())
    r = _run(f"""
from batchemo.cli import app
app(["folder", {str(SAMPLES / 'images')!r}, "--out", "out", "--model", {str(model)!r}, "--no-progress"],
    prog_name="batchemo")
""", tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and 'pip install "batchemo[train]"' in r.stderr
