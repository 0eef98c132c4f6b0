"""The resume journal of a folder run: finished photos' rows in small atomic chunks under OUT/.journal."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd

from ..report import faces_frame, files_frame, read_report, read_record, write_csv, write_json


class Journal:
    """Resume bookkeeping: finished files' rows land in small atomic chunk files under OUT/.journal.

    A killed run leaves whole chunks only; the next run reads them (and the last final report) back, keeps the
    newest record of every source, and skips sources already done.
    """

    def __init__(self, out: Path):
        self.dir = Path(out) / ".journal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = uuid.uuid4().hex[:8]
        self.count = 0
        self.fresh = False  # the final report in OUT predates this journal's run (a --redo): not read back

    MARKER = ".journal/analysis.json"  # under OUT: the run's settings (`analysis`) and `fresh`, until it completes

    @property
    def marker(self) -> Path:
        return self.dir.parent / self.MARKER

    def begin(self, settings: dict, fresh: bool) -> None:
        """Record this run's settings; `fresh` for a --redo, and kept when an interrupted --redo is resumed,
        so a report of the run before it never mixes in."""
        if not fresh and self.marker.exists():
            fresh = bool(json.loads(self.marker.read_text()).get("fresh"))
        self.fresh = fresh
        write_json({"analysis": settings, "fresh": fresh}, self.marker)

    def chunks(self) -> list[Path]:
        # Named <time_ns>-<run>-<n>: sorting by name is sorting by when they were written.
        return sorted(self.dir.glob("*.files.csv"))

    def append(self, files: pd.DataFrame, faces: pd.DataFrame) -> None:
        if files.empty:
            return
        self.count += 1
        stem = f"{__import__('time').time_ns():020d}-{self.run}-{self.count:06d}"
        # faces first: a files chunk (which marks sources done) never exists without its faces chunk.
        write_csv(faces, self.dir / f"{stem}.faces.csv")
        write_csv(files, self.dir / f"{stem}.files.csv")

    def load(self, out: Path, files_name: str, faces_name: str,
             classes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(files, faces) of everything recorded so far, newest record per source winning."""
        parts_files, parts_faces = [], []
        final_files, final_faces = Path(out) / files_name, Path(out) / faces_name
        pairs = []
        if final_files.exists() and final_faces.exists() and not self.fresh:
            pairs.append((final_files, final_faces))
        for f in self.chunks():
            faces = f.with_name(f.name.replace(".files.csv", ".faces.csv"))
            if faces.exists():
                pairs.append((f, faces))
        for rank, (fp, ap) in enumerate(pairs):
            fdf = read_report(fp)
            adf = read_report(ap)
            fdf["_rank"] = rank
            adf["_rank"] = rank
            parts_files.append(fdf)
            parts_faces.append(adf)
        if not parts_files:
            return files_frame([]), faces_frame([], classes)
        files = pd.concat(parts_files, ignore_index=True)
        faces = pd.concat(parts_faces, ignore_index=True)
        newest = files.groupby("source")["_rank"].max()
        files = files[files["_rank"].values == newest.reindex(files["source"]).values]
        faces = faces[faces["_rank"].values == newest.reindex(faces["source"]).values]
        return (files.drop(columns="_rank").reset_index(drop=True),
                faces.drop(columns="_rank").reset_index(drop=True))

    def clear(self) -> None:
        # The marker last: a kill in between leaves it with fewer chunks (work redone), never chunks without it.
        for p in sorted(self.dir.glob("*"), key=lambda p: p == self.marker):
            p.unlink()
        self.dir.rmdir()


def is_report_folder(folder: Path) -> bool:
    """Does `folder` hold a batchemo report (the run.json of a folder or video job, or the journal of one under
    way)? Its annotated copies, thumbnails and crops are pictures of faces already counted, never inputs."""
    folder = Path(folder)
    return (folder / Journal.MARKER).is_file() or \
        (read_record(folder / "run.json") or {}).get("job") in ("folder", "video")
