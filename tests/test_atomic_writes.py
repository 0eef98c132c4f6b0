"""The atomic writers: a write_csv or write_json that fails half way (the disk full, the writer raising, Ctrl-C)
leaves the earlier file whole under its name, nothing under a name that had no file, and no temp file beside them.
(test_kill_resume kills whole runs; here the failure is put in the middle of one write.)"""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pandas as pd
import pytest

from batchemo import report as R

FAILURES = [OSError(errno.ENOSPC, "No space left on device"), ValueError("the writer broke"), KeyboardInterrupt()]
IDS = ["disk-full", "writer-error", "ctrl-c"]


def _half(text: str) -> str:
    return text[: len(text) // 2]


def _fails_half_way(write, path: Path, failure: BaseException, tmp_path: Path) -> None:
    """write(path) over an earlier file, and write(new) where there was none, each failing half way: the earlier
    file's bytes unchanged, no file under the new name, no temp left."""
    before = path.read_bytes()
    new = path.with_name("new" + path.suffix)
    for target in (path, new):
        with pytest.raises(type(failure)):
            write(target)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("failure", FAILURES, ids=IDS)
def test_a_csv_write_that_fails_half_way_leaves_the_earlier_file_whole(tmp_path, monkeypatch, failure):
    path = tmp_path / "faces.csv"
    R.write_csv(pd.DataFrame({"source": ["a.png", "b.png"], "x": [1, 2]}), path)
    table = pd.DataFrame({"source": [f"photo {i}.png" for i in range(500)], "x": range(500)})
    to_csv = pd.DataFrame.to_csv

    def half_then_fail(df, target, *args, **kwargs):  # what the disk holds when the failure comes
        Path(target).write_text(_half(to_csv(df, None, *args, **kwargs)))
        raise failure

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    _fails_half_way(lambda p: R.write_csv(table, p), path, failure, tmp_path)


@pytest.mark.parametrize("failure", FAILURES, ids=IDS)
def test_a_json_write_that_fails_half_way_leaves_the_earlier_file_whole(tmp_path, monkeypatch, failure):
    path = tmp_path / "run.json"
    R.write_json({"status": "complete"}, path)
    record = {"status": "unfinished", "notes": ["an analysis started here"] * 50}
    write_text = Path.write_text

    def half_then_fail(self, data, *args, **kwargs):
        write_text(self, _half(data), *args, **kwargs)
        raise failure

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    _fails_half_way(lambda p: R.write_json(record, p), path, failure, tmp_path)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"status": "complete"}
