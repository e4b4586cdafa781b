"""Image inputs of every kind give the same result as the equivalent PIL image; modes,
transparency and EXIF orientation are converted correctly; bad inputs name their index."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import hub
from hub.errors import InputTypeError, InvalidInputError
from hub_vision.images import to_pil
from tests.vision.helpers import TINY_RESNET, make_timm, photo


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    make_timm(folder, num_classes=4, labels=["a", "b", "c", "d"], **TINY_RESNET)
    return hub.load("image-classify", model=str(folder), device="cpu")


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def same(a: list[dict], b: list[dict]) -> bool:
    return [x["label"] for x in a] == [x["label"] for x in b] and np.allclose(
        [x["score"] for x in a], [x["score"] for x in b], atol=1e-6)


def test_every_input_kind_equals_the_pil_image(pipe, tmp_path):
    array = photo(0)
    image = Image.fromarray(array)
    path = tmp_path / "photo.png"
    image.save(path)
    expected = pipe(image, top_k=None)
    assert len(expected) == 4 and abs(sum(p["score"] for p in expected) - 1) < 1e-5
    inputs = [str(path), path, path.read_bytes(), bytearray(path.read_bytes()), array, array / 255.0,
              torch.from_numpy(array).permute(2, 0, 1), torch.from_numpy(array).permute(2, 0, 1) / 255.0]
    results = pipe(inputs, top_k=None, batch_size=3)
    assert len(results) == len(inputs)
    for kind, result in zip(inputs, results):
        assert same(result, expected), type(kind)
    assert same(pipe(array, top_k=None), expected)  # one input: one result, not a list of one


def test_modes_convert_as_documented():
    rgb = Image.fromarray(photo(1))
    gray = rgb.convert("L")
    assert np.array_equal(np.asarray(to_pil(gray, 0)), np.asarray(gray.convert("RGB")))
    # transparency goes over white, in RGBA, LA and palette images alike
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)
    assert (np.asarray(to_pil(rgba, 0)) == 255).all()
    half = np.asarray(rgb).astype(np.float64)
    rgba.putalpha(128)
    blended = np.asarray(to_pil(rgba, 0)).astype(np.float64)
    assert np.abs(blended - (half * 128 / 255 + 255 * 127 / 255)).max() <= 1.0
    la = gray.convert("LA")
    la.putalpha(0)
    assert (np.asarray(to_pil(la, 0)) == 255).all()
    palette = rgb.convert("P")
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    out = np.asarray(to_pil(palette, 0))
    assert (out[0, 0] == 255).all() and out.shape == (70, 90, 3)
    cmyk = rgb.convert("CMYK")
    assert np.array_equal(np.asarray(to_pil(cmyk, 0)), np.asarray(cmyk.convert("RGB")))
    deep = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # 16-bit grayscale
    assert deep.mode.startswith("I")
    assert np.abs(np.asarray(to_pil(deep, 0), dtype=int) - np.asarray(gray.convert("RGB"), dtype=int)).max() <= 1
    assert to_pil(rgb, 0, mode="L").mode == "L"


def test_exif_orientation_is_honoured(pipe):
    upright = Image.fromarray(photo(2))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": undoes the counter-clockwise ROTATE_90 above
    data = png_bytes(stored, exif=exif)
    restored = to_pil(data, 0)
    assert np.array_equal(np.asarray(restored), np.asarray(upright))
    assert same(pipe(data, top_k=None), pipe(upright, top_k=None))


def test_bad_inputs_name_their_index(pipe, tmp_path):
    good = photo(3)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    truncated = png_bytes(Image.fromarray(good))[:200]
    cases = [
        (b"\x89PNG garbage", InvalidInputError, "input 2: .*not an image"),
        (str(tmp_path / "missing.png"), InvalidInputError, "input 2: .*missing"),
        (str(tmp_path), InvalidInputError, "input 2: .*folder"),
        (str(text), InvalidInputError, "input 2: .*not an image"),
        (truncated, InvalidInputError, "input 2: .*(decoded|truncated)"),
        (b"", InvalidInputError, "input 2: empty bytes"),
        (42, InputTypeError, "input 2 is a int"),
        (np.zeros((5, 5, 2), np.uint8), InvalidInputError, "input 2: .*HWC"),
        (torch.zeros(7, 5, 5), InvalidInputError, "input 2: .*CHW"),
        (np.full((5, 5, 3), 2.0), InvalidInputError, r"input 2: .*\[0, 1\]"),
        (np.zeros((5, 5, 3), np.int64), InvalidInputError, "input 2: .*dtype"),
    ]
    for bad, error, message in cases:
        with pytest.raises(error, match=message):
            pipe([good, good, bad])
    assert pipe([]) == []  # issue 13: as transformers' pipeline (was an "empty list" error)
    with pytest.raises(InvalidInputError, match="top_k"):
        pipe(good, top_k=0)


def test_long_lists_are_chunked_and_errors_keep_the_global_index(pipe):
    images = [photo(i, (20, 24)) for i in range(4)]
    many = images * 5  # 20 inputs, batch_size 2: chunks of 16
    results = pipe(many, batch_size=2, top_k=1)
    assert len(results) == 20
    assert all(same(results[i], results[i % 4]) for i in range(20))
    with pytest.raises(InputTypeError, match="input 18 "):
        pipe(many[:18] + [None] + many[:1], batch_size=2)
