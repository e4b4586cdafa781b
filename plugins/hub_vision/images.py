"""Image inputs -> RGB (or L) PIL images, whatever form a caller hands them in.

Accepted: a file path (str / PathLike), encoded bytes, a PIL image, a NumPy array (HWC or
HW; uint8 0-255 or float 0-1) or a torch tensor (CHW or HW; uint8 or float 0-1).
EXIF orientation is applied (phones store photos sideways plus a rotation tag);
transparency is composited onto white (so a transparent icon does not turn into black
pixels, which a bare ``convert("RGB")`` would give); palette, CMYK, 16-bit and float modes
are converted. A file that is missing, corrupt or not an image raises
:class:`~hub.errors.InvalidInputError` naming the input's index.

Size limit: an image may hold at most ``max_pixels`` pixels (width x height; default
:data:`DEFAULT_MAX_PIXELS`, or the environment variable ``HUB_MAX_IMAGE_PIXELS``). A file's
size is read from its header *before* it is decoded, so a small file that would decode to
gigabytes (a 329 KB 16-bit PNG of 13000 x 13000 takes 4.9 GB) is refused at once; arrays
and tensors are checked before any conversion. Pillow's own decompression-bomb check
(``PIL.Image.MAX_IMAGE_PIXELS``, refusing above twice that, about 179 MP) applies as well.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from hub.errors import InputTypeError, InvalidInputError
from hub.validate import resolve_limit

ACCEPTED = "a file path, image bytes, a PIL image, a NumPy array (HWC) or a torch tensor (CHW)"
#: the most pixels (width x height) one image may have unless ``max_pixels=`` or the
#: environment variable :data:`MAX_PIXELS_ENV` says otherwise (an 8000 x 8000 photo; about
#: 200 MB decoded as RGB)
DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "HUB_MAX_IMAGE_PIXELS"


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The pixel limit in force: ``max_pixels`` if given, else ``HUB_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`."""
    return resolve_limit("max_pixels", max_pixels, MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def check_pixels(width: int, height: int, limit: int, where: str, what: str) -> None:
    """Refuse an image of more than ``limit`` pixels, saying how to allow it."""
    if width * height > limit:
        raise InvalidInputError(
            f"{where}: {what} is {width} x {height} = {width * height / 1e6:.1f} megapixels, more than "
            f"max_pixels={limit:,}; downscale it, or pass max_pixels={width * height} (or set "
            f"{MAX_PIXELS_ENV}) to read it anyway.")


def to_pil(item: Any, index: int, task: str = "vision", mode: str = "RGB", *,
           max_pixels: int | None = None) -> Any:
    """One input -> a loaded PIL image in ``mode`` ("RGB" or "L"), at most ``max_pixels``
    pixels (see :func:`max_image_pixels`), checked before decoding."""
    from PIL import Image, ImageOps

    limit = max_image_pixels(max_pixels)
    where = f"{task}: input {index}"
    if isinstance(item, (str, os.PathLike)):
        path = Path(item).expanduser()
        if not path.is_file():
            what = "a folder" if path.is_dir() else "missing"
            raise InvalidInputError(f"{where}: {str(path)!r} is {what}; pass an image file.")
        image = _open(lambda: Image.open(path), where, repr(str(path)), limit)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        if not len(item):
            raise InvalidInputError(f"{where}: empty bytes; pass the encoded image (PNG, JPEG, ...).")
        image = _open(lambda: Image.open(io.BytesIO(bytes(item))), where, f"the {len(item)} bytes", limit)
    elif isinstance(item, Image.Image):
        image = _open(lambda: item, where, "the PIL image", limit)
    else:
        image = _from_array(item, where, limit)
    if image.getexif().get(0x0112, 1) != 1:  # EXIF Orientation: rotate/flip as the camera meant
        image = ImageOps.exif_transpose(image)
    return _convert(image, mode)


def _open(opener: Any, where: str, what: str, limit: int) -> Any:
    """Open lazily (Pillow reads only the header), check the size, then decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = opener()
        if isinstance(image, Image.Image):
            width, height = image.size
            if width * height <= limit:
                image.load()  # decode now: truncated or corrupt data fails here, not later
    except UnidentifiedImageError:
        raise InvalidInputError(f"{where}: {what} is not an image Pillow can read (corrupt file or "
                                "not an image format).") from None
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"{where}: {what} is too large ({exc}). Pillow refuses images over "
                                f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels as decompression bombs; raise "
                                "PIL.Image.MAX_IMAGE_PIXELS as well as max_pixels to read it.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {what} cannot be decoded: {exc} (truncated or corrupt image?).") from None
    if isinstance(image, Image.Image) and width * height > limit:
        if what != "the PIL image":
            image.close()  # the file Pillow holds open for the lazy decode
        check_pixels(width, height, limit, where, what)
    return image


def _from_array(item: Any, where: str, limit: int) -> Any:
    """NumPy HWC / HW or torch CHW / HW -> PIL (uint8 as is, floats taken as 0..1)."""
    import numpy as np
    from PIL import Image

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(item, torch.Tensor):
        if item.ndim in (2, 3):  # before any copy (to the CPU, to float)
            check_pixels(item.shape[-1], item.shape[-2], limit, where, f"the tensor of shape {tuple(item.shape)}")
        tensor = item.detach().cpu()
        if tensor.ndim == 3:
            if tensor.shape[0] not in (1, 3, 4):
                raise InvalidInputError(f"{where}: a tensor must be CHW with 1, 3 or 4 channels, got shape "
                                        f"{tuple(tensor.shape)}.")
            tensor = tensor.permute(1, 2, 0)
        array = tensor.float().numpy() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor.numpy()
    elif isinstance(item, np.ndarray):
        array = item
        if array.ndim in (2, 3):
            check_pixels(array.shape[1], array.shape[0], limit, where, f"the array of shape {array.shape}")
    else:
        raise InputTypeError(f"{where} is a {type(item).__name__}; expected {ACCEPTED}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise InvalidInputError(f"{where}: an array must be HW or HWC with 1, 3 or 4 channels, got shape "
                                f"{tuple(array.shape)}.")
    if array.dtype == np.uint8:
        pass
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{where}: the array holds NaN or infinite values.")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidInputError(f"{where}: float pixels must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                                    "pass uint8 0-255 or scale to 0-1.")
        array = (array * 255.0).round().astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    else:
        raise InvalidInputError(f"{where}: pixel dtype {array.dtype} is not supported; pass uint8 (0-255) "
                                "or float (0-1).")
    return Image.fromarray(np.ascontiguousarray(array))


def _convert(image: Any, mode: str) -> Any:
    """Any PIL mode -> ``mode``; alpha (RGBA, LA, PA, P with transparency) over white."""
    from PIL import Image

    if image.mode == mode:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit grayscale: scale to 8 bits
        import numpy as np

        # float32 (exact for 16-bit values) and in place: one copy of the pixels, not five in float64
        array = np.array(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        np.divide(array, top, out=array)
        np.clip(array, 0, 1, out=array)
        np.multiply(array, 255, out=array)
        image = Image.fromarray(np.rint(array, out=array).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def load_images(items: list[Any], task: str, mode: str = "RGB", *, max_pixels: int | None = None) -> list[Any]:
    """Every input as a PIL image; the error names the first bad one by index."""
    limit = max_image_pixels(max_pixels)
    return [to_pil(item, index, task, mode, max_pixels=limit) for index, item in enumerate(items)]
