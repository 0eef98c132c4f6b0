"""Every numeric option is checked before any work starts: one line naming the option, exit 2, nothing written;
the library's option classes refuse the same values."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from batchemo.cli import app
from batchemo.jobs.options import FolderOptions, VideoOptions
from batchemo.pipeline.detect import DetectOptions

from .conftest import SAMPLES

runner = CliRunner()
VIDEO = str(SAMPLES / "video" / "two_faces.mp4")
PHOTOS = str(SAMPLES / "images")
BAD = [
    ("video", "--batch-size", "0"), ("video", "--bin", "0"), ("video", "--bin", "-1"), ("video", "--fps", "0"),
    ("video", "--fps", "-5"), ("video", "--every", "0"), ("video", "--detect-every", "0"),
    ("video", "--detect-size", "-5"), ("video", "--min-track", "-1"), ("video", "--split-frames", "-1"),
    ("folder", "--batch-size", "-3"), ("folder", "--workers", "0"), ("folder", "--scale-factor", "1.0"),
    ("folder", "--min-face", "0"), ("folder", "--max-megapixels", "0"), ("folder", "--decode-side", "-1"),
]


@pytest.mark.parametrize("job,flag,value", BAD, ids=[f"{j} {f} {v}" for j, f, v in BAD])
def test_out_of_range_option_is_one_line_exit_2_and_nothing_written(job, flag, value, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, [job, VIDEO if job == "video" else PHOTOS, "--out", str(out), "--no-progress",
                            flag, value])
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and flag in r.output and "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("make", [lambda: VideoOptions(batch_size=0), lambda: VideoOptions(bin_s=-1),
                                  lambda: VideoOptions(every=0), lambda: FolderOptions(workers=0),
                                  lambda: DetectOptions(scale_factor=1.0), lambda: DetectOptions(min_face=0)])
def test_library_options_refuse_the_same_values(make):
    with pytest.raises(ValueError, match="must be"):
        make()
