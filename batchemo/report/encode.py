"""Writing the annotated video: H.264 through imageio-ffmpeg's ffmpeg, the input's audio muxed back."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..pipeline.ffmpeg import ffmpeg_exe, ffmpeg_failure


@dataclass
class Encoded:
    """A finished video file: where it is, its codec, and a note for run.json ('' when nothing to say)."""

    path: Path
    codec: str = "h264"
    note: str = ""


class VideoSink:
    """Frames in (BGR uint8), an H.264 MP4 out; falls back to OpenCV's MPEG-4 Part 2 without ffmpeg.
    A context manager: leaving it closes the file, also on errors."""

    def __init__(self, path: Path, width: int, height: int, fps: float):
        self.path = Path(path)
        self.codec = "h264"
        self.note = ""
        exe = ffmpeg_exe()
        self._gen = None
        self._cv = None
        if exe:
            import imageio_ffmpeg

            # Frames go in as yuv420p (what browsers play), converted here by OpenCV: half the bytes through the
            # pipe and no conversion in ffmpeg, 3.4 -> 2.0 ms of CPU a frame at 640x480 (benchmarks/results/
            # speed_levers.md), and closer to the source's colours. yuv420p needs even sides: odd ones are
            # padded by a black pixel rather than rescaled.
            self._pad = (height % 2, width % 2)
            self._gen = imageio_ffmpeg.write_frames(
                str(self.path), (width + width % 2, height + height % 2), pix_fmt_in="yuv420p", fps=fps,
                codec="libx264", macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-preset", "ultrafast", "-crf", "23", "-movflags", "+faststart"])
            self._gen.send(None)
            if width % 2 or height % 2:
                self.note = f"odd size {width}x{height} padded by one pixel to an even size for H.264"
        else:
            self.codec = "mp4v"
            self.note = "no ffmpeg binary: MPEG-4 Part 2 video (not playable in every browser)"
            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))

    def write(self, frame: np.ndarray) -> None:
        if self._gen is not None:
            if any(self._pad):
                frame = cv2.copyMakeBorder(frame, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT, value=0)
            self._gen.send(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420))
        else:
            self._cv.write(frame)

    def close(self) -> Encoded:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        elif self._cv is not None:
            self._cv.release()
            self._cv = None
        return Encoded(self.path, self.codec, self.note)

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LazySink:
    """A VideoSink opened on the first frame written, when the frames' size is known; closing one that saw no
    frame gives None. A context manager: leaving it closes the file, also on errors."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.sink: VideoSink | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.sink is None:
            h, w = frame.shape[:2]
            self.sink = VideoSink(self.path, w, h, self.fps)
        self.sink.write(frame)

    def close(self) -> Encoded | None:
        return self.sink.close() if self.sink is not None else None

    def __enter__(self) -> "LazySink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mux_audio(video: Path, audio_source: Path, out: Path, duration_s: float) -> str:
    """Copy `audio_source`'s first audio stream, up to `duration_s` (the video's length), into `video`, writing
    `out`; returns '' or why it failed."""
    exe = ffmpeg_exe()
    if not exe:
        return "no ffmpeg binary to mux the audio"
    # The audio is cut on reading rather than with -shortest, which ends the file with the audio's last packet
    # and so dropped the video's last frame (354 frames analysed, 353 in annotated.mp4).
    r = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
                        "-t", f"{duration_s:.6f}", "-i", str(audio_source),
                        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac",
                        "-movflags", "+faststart", str(out)], capture_output=True, text=True, errors="replace")
    return ffmpeg_failure(r, "audio not kept")
