"""Writing report files so that a kill never leaves half a file under a final name: temp file, then rename; and
reading a run's record (run.json) back."""
from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd


ATOMIC_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # write_atomic's temp names: .NAME.XXXXXXXX.tmp


def remove_atomic_temps(out: Path, subfolders: tuple[str, ...] = ("annotated", "thumbs", "faces", ".journal")
                        ) -> None:
    """Delete the temp files write_atomic calls left in a report folder when a killed run cut them short: at
    its top and under the folders the jobs write (not elsewhere: --out may hold other files). They are never
    final names, and nothing else is named like them."""
    out = Path(out)
    found = list(out.glob(".*.tmp")) + [p for sub in subfolders for p in (out / sub).rglob(".*.tmp")]
    for p in found:
        if ATOMIC_TEMP.match(p.name) and p.is_file():
            p.unlink()


def write_atomic(path: Path, write) -> None:
    """Call write(tmp_path), then rename onto `path`: a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _seconds_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """The seconds columns (`time_s`, `first_s`, ... `seconds_on_screen`) as fixed-point text to the microsecond:
    '%.6g', right for probabilities, keeps six digits in all, so 10800.0333 s would be written 10800 and, past
    2.8 hours of video, three frames at 30 fps would share one `time_s`."""
    cols = [c for c in df.columns if isinstance(c, str) and (c.endswith("_s") or c.startswith("seconds_"))
            and pd.api.types.is_float_dtype(df[c])]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        v = df[c].to_numpy(dtype=float, na_value=np.nan)
        text = np.char.rstrip(np.char.rstrip(np.char.mod("%.6f", v), "0"), ".")
        df[c] = np.where(np.isnan(v), "", text)
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    out = _seconds_as_text(df)
    write_atomic(path, lambda tmp: out.to_csv(tmp, index=False, float_format="%.6g"))


def write_json(obj: dict, path: Path) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def read_record(path: Path) -> dict | None:
    """A run.json (or a journal's analysis.json) as a dict; None where it is missing or unreadable, as a killed
    or foreign one may be."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
