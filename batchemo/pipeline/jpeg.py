"""Reading a JPEG's or PNG's header without decoding it: the size (the megapixel guard refuses a huge scan before
it is decoded), whether it is progressive, whether its data ends (libjpeg decodes a truncated file silently)."""
from __future__ import annotations

import struct

def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, before EXIF rotation, without decoding; None if not found."""
    frame = _jpeg_frame(data)
    return None if frame is None else frame[1:]


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(start-of-frame marker, width, height) of a JPEG, None if not found."""
    i, n = 2, len(data)
    while i + 9 < n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
            return (marker, w, h) if w and h else None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def jpeg_progressive(data: bytes) -> bool:
    """Is the JPEG progressive (its start-of-frame marker SOF2, 6, 10 or 14)?"""
    frame = _jpeg_frame(data)
    return frame is not None and frame[0] in (0xC2, 0xC6, 0xCA, 0xCE)


def jpeg_complete(data: bytes) -> bool:
    """Does the JPEG's own structure reach its end-of-image marker? Read from the markers, not from the file's
    tail: phone photos carry data after the image (a "motion photo"'s whole MP4, camera trailers), which is
    no reason to refuse them, while a file cut inside its scan data must be refused."""
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            # Stray bytes before a marker: libjpeg skips them to the next 0xFF ("extraneous bytes before
            # marker") and decodes the whole image, so they are no reason to refuse it.
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return False
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xDA:
            continue
        # Entropy-coded data after a start of scan: it ends at the first 0xFF that is neither a stuffed
        # 0xFF00 nor a restart marker.
        while True:
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= n:
                return False
            nxt = data[i + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                i += 1 if nxt == 0xFF else 2
                continue
            break
    return False


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's or PNG's header, None for other formats or an unreadable header: lets the
    megapixel guard refuse a huge scan before decoding it, which is what the guard is for (memory)."""
    if data[:2] == b"\xff\xd8":
        return jpeg_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None
