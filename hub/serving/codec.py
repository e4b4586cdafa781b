"""Between HTTP and the pipelines: JSON inputs in, JSON results out, and the per-request checks
that keep a bad request out of a batch.

Inputs. Text is JSON strings. Files (images, audio, anything a pipeline reads from bytes) are
``{"b64": "<base64 of the file>"}`` in JSON or multipart uploads; audio samples may also be
``{"array": [...], "sampling_rate": N}``. For the vision and audio tasks a JSON *string* is
refused: in Python it would name a file, and over HTTP that would be a file on the server.

Checks before batching: the pipeline's own ``validate_inputs(items)`` when it has one; else a
task-agnostic check (no ``null``; non-empty strings for text tasks; no strings for vision and
audio). What passes may still fail inside the pipeline; the batcher then retries each request
alone, so the failure stays with its request.

Results are the pipelines' own dicts and lists made JSON-ready (tensors and NumPy values as
lists and numbers, tuples as lists, non-finite floats as ``null``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

from hub.errors import InputTypeError, InvalidInputError

#: modalities whose pipelines read a string input as a file path
FILE_MODALITIES = frozenset({"vision", "audio"})


def decode_item(item: Any, index: int, task: str) -> Any:
    """One JSON input as the pipeline takes it: ``{"b64": ...}`` -> bytes, ``{"array": [...],
    "sampling_rate": N}`` -> a float32 NumPy array with its rate; anything else unchanged."""
    if isinstance(item, Mapping):
        if set(item) == {"b64"}:
            return decode_b64(item["b64"], index, task)
        if "array" in item and set(item) <= {"array", "sampling_rate"}:
            import numpy as np

            try:
                array = np.asarray(item["array"], dtype=np.float32)
            except (TypeError, ValueError):
                raise InvalidInputError(f"{task}: input {index}: 'array' must be a list of numbers.") from None
            return {"array": array, "sampling_rate": item.get("sampling_rate")} if "sampling_rate" in item \
                else array
    return item


def decode_b64(text: Any, index: int, task: str) -> bytes:
    """Base64 text -> bytes, a clear error naming the input when it is not base64."""
    if not isinstance(text, str):
        raise InputTypeError(f"{task}: input {index}: 'b64' must be a base64 string, got {type(text).__name__}.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{task}: input {index}: 'b64' is not valid base64 (standard alphabet, with "
                                "padding).") from None


def check_items(items: list[Any], *, task: str, modality: str | None, pipeline: Any) -> None:
    """Refuse a request's inputs that cannot be right, before they join a batch.

    Args:
        items: the decoded inputs.
        task: for messages.
        modality: the task's modality (decides the generic checks).
        pipeline: its ``validate_inputs(items)``, if it has one, is used instead.

    Raises:
        InvalidInputError, InputTypeError: naming the input index and the problem.
    """
    validate = getattr(pipeline, "validate_inputs", None)
    if callable(validate):
        validate(items)
        return
    for index, item in enumerate(items):
        if item is None:
            raise InputTypeError(f"{task}: input {index} is null; pass an input.")
        if modality == "text":
            if not isinstance(item, str):
                raise InputTypeError(f"{task}: input {index} is {json_type(item)}; expected a string.")
            if not item.strip():
                raise InvalidInputError(f"{task}: input {index} is an empty string; pass some text.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"{task}: input {index} is not valid Unicode (it holds a lone surrogate "
                                        "escape such as \\ud800); send UTF-8 text.") from None
        elif modality in FILE_MODALITIES and isinstance(item, str):
            raise InputTypeError(f"{task}: input {index} is a string, which would name a file on the server; send "
                                 "the file itself: {\"b64\": \"<base64 of its bytes>\"} in JSON, or a multipart "
                                 "upload.")


def json_type(value: Any) -> str:
    """A value's JSON type with its article ("a number", "an object"), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, int, float, bool, None).

    Args:
        value: a result, its metadata, or anything inside them.

    Returns:
        The same data with tensors/NumPy values as lists or numbers, tuples and sets as lists,
        other objects as strings and non-finite floats as ``None``.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist"):  # tensors, NumPy arrays and scalars
        return to_json(value.tolist())
    if hasattr(value, "item"):
        return to_json(value.item())
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def result_metadata(result: Any) -> dict[str, Any]:
    """A result's ``.metadata`` (``{}`` when it has none), JSON-ready."""
    return to_json(getattr(result, "metadata", None) or {})
