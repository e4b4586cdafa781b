"""Issue 12 item 7 (images): decoded pixels are bounded by ``max_pixels`` /
``HUB_MAX_IMAGE_PIXELS``, read from the file's header *before* decoding (a 329 KB 16-bit
13000 x 13000 PNG took 4.9 GB); arrays and tensors are bounded too; Pillow's
decompression-bomb refusal still holds. Item 12: batch sizes of the vision helpers."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import hub
from hub.errors import InvalidInputError
from hub_vision.images import DEFAULT_MAX_PIXELS, to_pil
from tests.vision.helpers import TINY_RESNET, make_timm, photo

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int, *, bit_depth: int = 16) -> bytes:
    """A valid all-black grayscale PNG, compressed row by row (never held decoded)."""
    row = b"\0" * (1 + width * bit_depth // 8)  # filter byte + pixels
    packer = zlib.compressobj(6)
    data = b"".join(packer.compress(row * min(100, height - done)) for done in range(0, height, 100))
    data += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb_13000(tmp_path_factory):
    path = tmp_path_factory.mktemp("png") / "huge16.png"
    path.write_bytes(huge_png(13000, 13000))
    return path


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    make_timm(folder, num_classes=4, labels=["a", "b", "c", "d"], **TINY_RESNET)
    return hub.load("image-classify", model=str(folder), device="cpu")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail if Pillow decodes any image: the size check must come first."""
    def load(self):
        raise AssertionError("the image was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_the_reported_16_bit_png_is_refused_from_its_header(pipe, bomb_13000, no_decoding):
    assert bomb_13000.stat().st_size < 1_000_000  # small on disk, 338 MB as pixels, GBs when converted
    with pytest.raises(InvalidInputError) as info:
        pipe([photo(0), str(bomb_13000)])
    message = str(info.value)
    for part in ("input 1", "13000 x 13000 = 169.0 megapixels", f"max_pixels={DEFAULT_MAX_PIXELS:,}",
                 "max_pixels=169000000", "HUB_MAX_IMAGE_PIXELS"):
        assert part in message, part
    with pytest.raises(InvalidInputError, match="13000 x 13000"):  # bytes too
        pipe(bomb_13000.read_bytes())


def test_a_lazy_pil_image_is_checked_before_it_loads(bomb_13000, no_decoding):
    with pytest.raises(InvalidInputError, match="the PIL image is 13000 x 13000"):
        to_pil(Image.open(bomb_13000), 0, "image-classify")


def test_pillows_decompression_bomb_check_still_holds(tmp_path):
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # 400 MP > 2 x Image.MAX_IMAGE_PIXELS
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        _chunk(b"IEND", b"")
    for limit in (None, 10**9):  # Pillow refuses at open, whatever our own limit
        with pytest.raises(InvalidInputError, match="input 0: the 69 bytes is too large.*400000000 pixels.*"
                                                    "decompression bombs.*MAX_IMAGE_PIXELS"):
            to_pil(data, 0, "image-classify", max_pixels=limit)


def test_limit_is_adjustable_by_keyword_and_environment(pipe, monkeypatch, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo(0, (60, 50))).save(path)  # 3000 pixels
    with pytest.raises(InvalidInputError, match="50 x 60 = 0.0 megapixels, more than max_pixels=2,999"):
        pipe(str(path), max_pixels=2999)
    assert len(pipe(str(path), max_pixels=3000)) == 4
    monkeypatch.setenv("HUB_MAX_IMAGE_PIXELS", "2999")
    with pytest.raises(InvalidInputError, match="max_pixels=2,999"):
        pipe(str(path))
    assert len(pipe(str(path), max_pixels=3000)) == 4  # the keyword wins
    with pytest.raises(InvalidInputError, match="max_pixels must be an integer >= 1"):
        pipe(str(path), max_pixels=0)


def test_arrays_and_tensors_are_bounded_before_any_conversion(pipe):
    array = np.zeros((300, 200, 3), np.float64)  # would be scaled and copied to uint8
    with pytest.raises(InvalidInputError, match=r"input 0: the array of shape \(300, 200, 3\) is 200 x 300"):
        pipe(array, max_pixels=10_000)
    tensor = torch.zeros(3, 300, 200, dtype=torch.bfloat16)  # would be copied to float32
    with pytest.raises(InvalidInputError, match=r"the tensor of shape \(3, 300, 200\) is 200 x 300"):
        pipe([photo(0), tensor], max_pixels=60_000 - 1)
    assert len(pipe(tensor.float(), max_pixels=60_000)) == 4


def test_sixteen_bit_conversion_unchanged():
    """16-bit grayscale still maps 0..65535 onto 0..255 exactly (now in float32, in place)."""
    values = np.arange(0, 65536, 7, dtype=np.uint16)[:9000].reshape(90, 100)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    got = np.asarray(to_pil(image, 0, mode="L"))
    expected = (np.clip(values.astype(np.float64) / 65535, 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("size", [0, -2, 1.5])
def test_non_positive_batch_sizes_refused_by_every_vision_entry(pipe, size):
    for call in (lambda: pipe(photo(0), batch_size=size),
                 lambda: pipe([photo(0)] * 3, batch_size=size),
                 lambda: pipe.feature_maps(photo(0), batch_size=size),
                 lambda: pipe.logits([photo(0)], batch_size=size)):
        with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
            call()


def test_long_lists_still_chunked_with_one_progress_bar(pipe, capsys):
    images = [photo(i % 3, (40, 40)) for i in range(9)]
    chunked = pipe(images, batch_size=1, progress=True)  # 9 > 1 x 8 images: decoded eight at a time
    assert capsys.readouterr().err.count("image-classify") >= 1
    whole = pipe(images, batch_size=16)
    assert [[p["label"] for p in r] for r in chunked] == [[p["label"] for p in r] for r in whole]
    assert np.allclose([[p["score"] for p in r] for r in chunked], [[p["score"] for p in r] for r in whole],
                       atol=1e-6)
    with pytest.raises(InvalidInputError, match="input 8"):  # the index in the whole list, not the chunk
        pipe(images[:8] + [np.zeros((10, 10, 7), np.uint8)], batch_size=1)


@pytest.mark.parametrize("indices", ["a", 1.5, 0, -2, [], [0, "b"], True, 99, [0, 99]])
def test_bad_feature_map_indices_are_clear_errors(pipe, indices):
    """A sibling: a string or float was a raw TypeError, an absent level timm's AssertionError."""
    with pytest.raises(InvalidInputError, match="indices"):
        pipe.feature_maps(photo(0), indices=indices)
    assert len(pipe.feature_maps(photo(0), indices=2)) == 2
