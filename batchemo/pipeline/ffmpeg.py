"""FFmpeg (the binary imageio-ffmpeg ships) as the pipeline asks it about a video file: its duration, whether it
has sound, its frames' timestamps, without decoding them."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


def ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # no wheel binary for this platform and none on PATH
        return None


def ffmpeg_failure(r: subprocess.CompletedProcess, what: str) -> str:
    """'' for an ffmpeg run that succeeded, else `what` and the last line ffmpeg printed."""
    if r.returncode == 0:
        return ""
    return f"{what}: " + (r.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]


def _ffmpeg_info(path: Path) -> str:
    """What `ffmpeg -i` says about a file ('' without ffmpeg)."""
    exe = ffmpeg_exe()
    if not exe:
        return ""
    return subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          errors="replace").stderr


@dataclass(frozen=True)
class MediaFacts:
    """What FFmpeg reads from a file's container, asked once per video (each `ffmpeg -i` is a process)."""

    duration_s: float | None  # the container's duration (None where it gives none)
    has_audio: bool


def media_facts(path: Path) -> MediaFacts:
    """A file's MediaFacts from one `ffmpeg -i`."""
    info = _ffmpeg_info(path)
    m = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", info)
    return MediaFacts(int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None, "Audio:" in info)


def frame_times(path: Path) -> list[float] | None:
    """The video stream's shown frames' timestamps in seconds, in display order, read from its packets without
    decoding them (`ffmpeg -c copy -f framecrc`: a fraction of a second for an hour of video); None without
    ffmpeg or where the stream's time base or timestamps cannot be read."""
    packets = _packet_times(path)
    return None if packets is None else packets[1]


def preroll_frames(path: Path) -> int:
    """How many of the stream's packets are decoded but never shown: a clip cut with `-c copy` keeps the frames
    from the keyframe before the cut, timestamped before 0, which the player (and OpenCV) drop. Containers count
    them in their frame count."""
    packets = _packet_times(path)
    return 0 if packets is None else packets[0]


def _packet_times(path: Path) -> tuple[int, list[float]] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if _LAST_TIMES[0] != key:  # the analysis pass asks, then the crops and thumbnails cut from the same video
        _LAST_TIMES[:] = [key, _read_frame_times(Path(path))]
    return _LAST_TIMES[1]


_LAST_TIMES: list = [None, None]  # (key, times) of the last video asked about: one, so memory stays flat


def _read_frame_times(path: Path) -> tuple[int, list[float]] | None:
    """(packets before time 0, the others' timestamps in seconds)."""
    exe = ffmpeg_exe()
    if not exe:
        return None
    r = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                        "-f", "framecrc", "-"], capture_output=True, text=True, errors="replace")
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", r.stdout, re.M)
    if r.returncode != 0 or not tb or int(tb[2]) == 0:
        return None
    try:  # packet lines: stream, dts, pts, duration, size, checksum
        pts = sorted(int(line.split(",")[2]) for line in r.stdout.splitlines() if line and line[0] != "#")
    except (IndexError, ValueError):
        return None
    shown = [p for p in pts if p >= 0] or pts  # a stream all before 0 is shown as it is
    return len(pts) - len(shown), [p * int(tb[1]) / int(tb[2]) for p in shown]


def has_audio(path: Path) -> bool:
    return media_facts(path).has_audio
