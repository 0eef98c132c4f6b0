"""The documentation site builds with no broken link or missing page (`mkdocs build --strict`), and README, the
front door, stays short and keeps its two set-up commands first."""
from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_the_docs_site_builds_strictly(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True,
                       env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    block = lines[lines.index("```bash") + 1:lines.index("```")]
    assert block == ['pip install . && batchemo folder samples/images && batchemo video samples/video/two_faces.mp4',
                     'pip install ".[test,ray]" && python -m pytest -q']
    assert block[1] in (ROOT / ".ci" / "run").read_text()  # CI runs the same command
