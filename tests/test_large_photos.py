"""Large JPEGs are decoded at reduced scale for speed and memory; reports stay in full-size pixels."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from batchemo import read_report
from batchemo.jobs.folder import analyze_folder
from batchemo.jobs.options import FolderOptions
from batchemo.pipeline.files import BadInput
from batchemo.pipeline.jpeg import jpeg_size
from batchemo.pipeline.photo import read_photo

from .conftest import SAMPLES


def _canvas(face: np.ndarray, w: int = 4200, h: int = 3000) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A noisy 12.6 MP picture with two faces of known place and size: (image, [(x, y, side)])."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(70, 180, (h, w, 3)).astype(np.uint8), (9, 9), 0)
    placed = []
    for x, y, side in [(500, 700, 640), (2900, 1400, 900)]:
        f = cv2.resize(face, (side, int(side * 1.2)), interpolation=cv2.INTER_CUBIC)
        img[y:y + f.shape[0], x:x + side] = f
        placed.append((x, y, side))
    return img, placed


def _jpeg(img: np.ndarray, exif_orientation: int | None = None) -> bytes:
    from PIL import Image

    im = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    buf = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(buf, "JPEG", exif=exif.tobytes(), quality=90)
    else:
        im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory, face_bgr):
    upright, placed = _canvas(face_bgr)
    root = tmp_path_factory.mktemp("big") / "photos"
    root.mkdir()
    (root / "upright.jpg").write_bytes(_jpeg(upright))
    # Stored turned a quarter, EXIF orientation 6 saying how to turn it upright (what phones write).
    (root / "phone.jpg").write_bytes(_jpeg(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), 6))
    return root, placed


def test_jpeg_size_reads_the_header(big_photo):
    root, _ = big_photo
    assert jpeg_size((root / "upright.jpg").read_bytes()) == (4200, 3000)
    assert jpeg_size((root / "phone.jpg").read_bytes()) == (3000, 4200)  # as stored, before EXIF rotation
    assert jpeg_size(cv2.imencode(".png", np.zeros((5, 5), np.uint8))[1].tobytes()) is None
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00") is None  # cut short: no frame header


def test_reduced_decode_keeps_the_long_side_and_reports_the_full_size(big_photo):
    root, _ = big_photo
    img, size = read_photo(root / "upright.jpg", keep_side=1920)
    assert img.shape[:2] == (1500, 2100) and size == (4200, 3000)
    img, size = read_photo(root / "phone.jpg", keep_side=1920)
    assert img.shape[:2] == (1500, 2100) and size == (4200, 3000)  # upright, like a viewer
    img, size = read_photo(root / "upright.jpg", keep_side=0)
    assert img.shape[:2] == (3000, 4200) and size == (4200, 3000)
    img, size = read_photo(root / "upright.jpg", keep_side=500)
    assert img.shape[:2] == (375, 525)  # 1/8, the smallest scale libjpeg offers


@pytest.mark.parametrize("decode_side", [1920, 0])
def test_boxes_are_in_full_size_pixels(big_photo, tmp_path, model, decode_side):
    root, placed = big_photo
    out = tmp_path / "r"
    opts = FolderOptions(decode_side=decode_side)
    res = analyze_folder(root, out, model, opts, progress=False)
    assert res.errors == 0
    files = read_report(out / "files.csv").set_index("source")
    assert (files.loc["upright.jpg", "width"], files.loc["upright.jpg", "height"]) == (4200, 3000)
    assert (files.loc["phone.jpg", "width"], files.loc["phone.jpg", "height"]) == (4200, 3000)
    faces = read_report(out / "faces.csv")
    for name in ("upright.jpg", "phone.jpg"):
        got = faces[faces["source"] == name].sort_values("x")
        assert len(got) == 2, name
        for (x, y, side), box in zip(placed, got.itertuples()):
            # The Haar box sits inside the pasted face picture, its size a fixed share of the picture's.
            assert x <= box.x and box.x + box.w <= x + side and y <= box.y <= y + 0.6 * side, (name, box)
            assert 0.45 * side <= box.w <= side, (name, box)
    copy = cv2.imread(str(out / "annotated" / "upright.jpg"))
    assert max(copy.shape[:2]) == (2100 if decode_side else 4200)


def test_reduced_and_full_decode_agree(big_photo, tmp_path, model):
    root, _ = big_photo
    a = analyze_folder(root, tmp_path / "a", model, FolderOptions(), progress=False)
    b = analyze_folder(root, tmp_path / "b", model, FolderOptions(decode_side=0), progress=False)
    fa, fb = read_report(a.out / "faces.csv"), read_report(b.out / "faces.csv")
    assert len(fa) == len(fb) == 4
    boxes_a, boxes_b = fa[["x", "y", "w", "h"]].to_numpy(), fb[["x", "y", "w", "h"]].to_numpy()
    assert np.abs(boxes_a - boxes_b).max() <= 0.08 * fb["w"].min()
    assert (fa["emotion"] == fb["emotion"]).mean() >= 0.75


def test_a_reduced_decode_never_raises_the_smallest_face_found(tmp_path):
    """With --detect-size 0 (crowd photos) detection runs at full size, so the JPEG is decoded at full size too:
    at 1/2 a 36 px face would be 18 decoded px, under the cascade's 24 px window, and be missed."""
    from batchemo.jobs.photos import detect_photo
    from batchemo.pipeline.detect import DetectOptions
    from batchemo.pipeline.files import walk

    face = cv2.imread(str(SAMPLES / "images" / "astronaut.png"))[68:160, 179:271]  # the sample's face box
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(90, 160, (800, 1000, 3)).astype(np.uint8), (9, 9), 0)
    img[300:340, 400:440] = cv2.resize(cv2.copyMakeBorder(face, 10, 10, 10, 10, cv2.BORDER_REPLICATE), (40, 40),
                                       interpolation=cv2.INTER_AREA)
    (tmp_path / "crowd.jpg").write_bytes(_jpeg(img))
    sf = walk(tmp_path, {".jpg"})[0][0]
    crowd = FolderOptions(detect=DetectOptions(max_side=0, min_face=30), decode_side=400)
    assert crowd.keep_side == 0 and FolderOptions().keep_side == 1920
    assert FolderOptions(detect=DetectOptions(max_side=2400), decode_side=1920).keep_side == 2400
    found = detect_photo(sf, crowd, 48, keep_image=False)
    assert found.ok and len(found.faces) == 1
    x, y, w, h = found.faces.boxes[0]
    assert abs(x + w / 2 - 420) < 8 and abs(y + h / 2 - 320) < 8 and w < 45


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_the_megapixel_guard_refuses_before_decoding_at_full_size_too(ext, tmp_path, monkeypatch):
    """--accurate decodes at full size (keep_side 0): a huge scan must still be refused from its header, before
    the decoder allocates it (here a 0.06 MP image against a 0.05 MP limit)."""
    import batchemo.pipeline.video as S

    path = tmp_path / f"scan{ext}"
    cv2.imwrite(str(path), np.full((200, 300, 3), 128, np.uint8))

    def no_decode(*a, **k):
        raise AssertionError("decoded before the guard")

    monkeypatch.setattr(S.cv2, "imdecode", no_decode)
    with pytest.raises(S.BadInput, match="image too large: 300x200"):
        read_photo(path, max_megapixels=0.05, keep_side=0)


def test_a_phone_photo_over_the_megapixel_limit_decoded_reduced_is_analysed(tmp_path):
    """The guard is about memory: a 50 MP JPEG decoded at 1/4 is 3 MP; decoded at full size it is refused."""
    path = tmp_path / "phone 50mp.jpg"
    big = np.full((6200, 8200, 3), 128, np.uint8)
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 50])
    img, size = read_photo(path, max_megapixels=40, keep_side=1920)
    assert size == (8200, 6200) and img.shape[:2] == (1550, 2050)
    with pytest.raises(BadInput, match="image too large: 8200x6200"):
        read_photo(path, max_megapixels=40, keep_side=0)
    with pytest.raises(BadInput, match="image too large: 2050x1550"):  # the limit still holds, as decoded
        read_photo(path, max_megapixels=3, keep_side=1920)


def test_a_progressive_jpeg_is_weighed_at_full_size_even_decoded_reduced(tmp_path, monkeypatch):
    """libjpeg holds a progressive JPEG's coefficients for the whole image at any decode scale."""
    import batchemo.pipeline.video as S

    small = np.full((800, 1200, 3), 128, np.uint8)
    for progressive in (0, 1):
        path = tmp_path / f"p{progressive}.jpg"
        cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive])
        if progressive:
            monkeypatch.setattr(S.cv2, "imdecode", lambda *a, **k: pytest.fail("decoded before the guard"))
            with pytest.raises(BadInput, match="image too large: 1200x800 = 1.0 megapixels as a progressive JPEG"):
                read_photo(path, max_megapixels=0.5, keep_side=150)
        else:
            assert read_photo(path, max_megapixels=0.5, keep_side=150)[0].shape[:2] == (100, 150)  # 1/8: 0.015 MP
