"""The Open Inference Protocol (KServe v2) over HTTP/REST, for every predictive task.

Routes, as the spec fixes them: ``GET /v2`` (server metadata), ``GET /v2/health/live``,
``GET /v2/health/ready``, ``GET /v2/models/{name}[/versions/{v}]`` (model metadata),
``GET /v2/models/{name}[/versions/{v}]/ready``, ``POST /v2/models/{name}[/versions/{v}]/infer``.
Errors are the spec's ``{"error": "<message>"}``.

Inputs. One input tensor (Hub's pipelines take one input); its first dimension is the batch:
* ``BYTES`` ``[N]`` (or ``[N, 1]``): N texts; for vision and audio tasks N base64-encoded files;
  for other tasks N strings (recommend: user ids);
* numeric (``UINT8`` ... ``FP64``) ``[N, ...]``: N arrays (images HWC, audio samples with the
  ``sampling_rate`` parameter), or N numbers when the shape is ``[N]`` (integer user ids).
Data may be flat (row-major) or nested. ``parameters`` of the request (and of the input tensor)
are the call options (``top_k``, ``sampling_rate``...), checked as the Python call checks them.

Outputs are named after the result fields, with the batch first:
* dict results (``{label, score}``, ``{text}``): one tensor per field, ``[N]``;
* lists of dicts (top-k labels, recommendations): one tensor per field, ``[N, k]``;
* lists of numbers (embeddings): one tensor ``embedding`` (``output`` for tasks that do not
  embed), ``[N, D]``;
* strings ``BYTES``, integers ``INT64``, booleans ``BOOL``, numbers ``FP32`` (``FP64`` when a
  value does not fit FP32 exactly). A field whose values are not one scalar type or not the same
  length for every input (entities, timestamps) is ``BYTES`` ``[N]`` holding each input's value
  as JSON (output parameter ``content_type: "json"``).
The results' ``.metadata`` are in the response parameter ``metadata`` (a JSON list, one per
input).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from hub.errors import InputTypeError, InvalidInputError
from hub.serving.app import get_state
from hub.serving.codec import FILE_MODALITIES, decode_b64, result_metadata, to_json
from hub.serving.errors import ServeError
from hub.serving.models import ServedModel
from hub.serving.routes_native import read_json

PREFIX = "/v2"
router = APIRouter(prefix=PREFIX, tags=["open inference protocol (v2)"])

_INTEGER_RANGES = {"UINT8": (0, 2**8 - 1), "UINT16": (0, 2**16 - 1), "UINT32": (0, 2**32 - 1),
                   "UINT64": (0, 2**64 - 1), "INT8": (-2**7, 2**7 - 1), "INT16": (-2**15, 2**15 - 1),
                   "INT32": (-2**31, 2**31 - 1), "INT64": (-2**63, 2**63 - 1)}
_FLOATS = {"FP16": "float16", "FP32": "float32", "FP64": "float64"}
DATATYPES = ("BOOL", *_INTEGER_RANGES, *_FLOATS, "BYTES")
#: request parameters that belong to the protocol (or its client libraries), not to the call
_PROTOCOL_PARAMETERS = frozenset({"content_type", "headers"})
_REQUEST_KEYS = ("id", "parameters", "inputs", "outputs")
_TENSOR_KEYS = ("name", "shape", "datatype", "parameters", "data")
#: the outputs of the built-in tasks, for the model metadata route ([-1]: any size)
TASK_OUTPUTS: dict[str, list[tuple[str, str, list[int]]]] = {
    "text-classify": [("label", "BYTES", [-1]), ("score", "FP32", [-1])],
    "audio-classify": [("label", "BYTES", [-1]), ("score", "FP32", [-1])],
    "image-classify": [("label", "BYTES", [-1, -1]), ("score", "FP32", [-1, -1])],
    "text-embed": [("embedding", "FP32", [-1, -1])],
    "image-embed": [("embedding", "FP32", [-1, -1])],
    "speech-recognize": [("text", "BYTES", [-1])],
    "text-generate": [("generated_text", "BYTES", [-1])],
    "recommend": [("item", "BYTES", [-1, -1]), ("score", "FP32", [-1, -1])],
    "fill-mask": [("score", "FP32", [-1, -1]), ("token", "INT64", [-1, -1]), ("token_str", "BYTES", [-1, -1]),
                  ("sequence", "BYTES", [-1, -1])],
    "token-classify": [("entity_group", "BYTES", [-1]), ("score", "BYTES", [-1]), ("word", "BYTES", [-1]),
                       ("start", "BYTES", [-1]), ("end", "BYTES", [-1])],
}
_INPUT_NAMES = {"text": "text", "vision": "image", "audio": "audio", "recsys": "user"}


def oip_error(status: int, fields: dict[str, Any]) -> Any:
    """The spec's error body, ``{"error": "<message>"}``."""
    return {"error": fields.get("message", "")}


error_format = oip_error  # the routes under PREFIX answer errors in this shape (hub.serving.app)


# --------------------------------------------------------------------------- health and metadata
@router.get("", summary="Server metadata")
async def server_metadata() -> Any:
    from hub._version import __version__

    return {"name": "hub", "version": __version__, "extensions": []}


@router.get("/health/live", summary="Server live (no authentication)")
async def live() -> Any:
    return {"live": True}


@router.get("/health/ready", summary="Server ready: every model loaded (no authentication)")
async def ready(request: Request) -> Any:
    is_ready = get_state(request).ready
    return JSONResponse({"live": True, "ready": is_ready}, status_code=200 if is_ready else 503)


def _model(request: Request, name: str, version: str | None) -> ServedModel:
    model = get_state(request).model(name)
    if version is not None and version != model.version:
        raise ServeError(404, "version_not_found", f"model {name!r} has no version {version!r}; its versions: "
                         f"{model.version}.")
    return model


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """The spec's model metadata: name, versions, platform, inputs, outputs."""
    declared = getattr(model.pipeline, "oip_outputs", None) or TASK_OUTPUTS.get(model.task, [])
    name = _INPUT_NAMES.get(model.modality or "", "input")
    return {"name": model.name, "versions": [model.version], "platform": f"hub:{model.task}",
            "inputs": [{"name": name, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in declared]}


@router.get("/models/{name}", summary="Model metadata")
async def metadata(name: str, request: Request) -> Any:
    return model_metadata(_model(request, name, None))


@router.get("/models/{name}/versions/{version}", summary="Model metadata (one version)")
async def metadata_version(name: str, version: str, request: Request) -> Any:
    return model_metadata(_model(request, name, version))


def _ready_response(model: ServedModel, state_ready: bool) -> Any:
    ok = model.ready and state_ready
    return JSONResponse({"name": model.name, "ready": ok}, status_code=200 if ok else 503)


@router.get("/models/{name}/ready", summary="Model ready")
async def model_ready(name: str, request: Request) -> Any:
    return _ready_response(_model(request, name, None), not get_state(request).draining)


@router.get("/models/{name}/versions/{version}/ready", summary="Model ready (one version)")
async def model_ready_version(name: str, version: str, request: Request) -> Any:
    return _ready_response(_model(request, name, version), not get_state(request).draining)


# --------------------------------------------------------------------------- inference
@router.post("/models/{name}/infer", summary="Inference")
async def infer(name: str, request: Request) -> Any:
    return await _infer(request, _model(request, name, None))


@router.post("/models/{name}/versions/{version}/infer", summary="Inference (one version)")
async def infer_version(name: str, version: str, request: Request) -> Any:
    return await _infer(request, _model(request, name, version))


async def _infer(request: Request, model: ServedModel) -> Any:
    body = await read_json(request)
    items, options, wanted, request_id = decode_request(body, model)
    results = await get_state(request).infer(request, model, items, options)
    outputs = encode_outputs(results, result_name(model))
    if wanted is not None:
        by_name = {o["name"]: o for o in outputs}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise InvalidInputError(f"requested output {missing[0]!r} is not produced by {model.name!r}; its outputs: "
                                    f"{', '.join(by_name) or 'none'}.")
        outputs = [by_name[n] for n in wanted]
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version, "outputs": outputs,
                                "parameters": {"metadata": json.dumps([result_metadata(r) for r in results])}}
    if request_id is not None:
        response["id"] = request_id
    return JSONResponse(response)


def result_name(model: ServedModel) -> str:
    """The output name of results that are plain lists of numbers (``embedding`` for the
    embedding tasks); a pipeline may set ``oip_result_name``."""
    declared = getattr(model.pipeline, "oip_result_name", None)
    if isinstance(declared, str) and declared:
        return declared
    return "embedding" if "embed" in model.task else "output"


def _fields(obj: Any, keys: Sequence[str], what: str) -> None:
    if not isinstance(obj, Mapping):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(obj).__name__}.")
    unknown = [k for k in obj if k not in keys]
    if unknown:
        raise InvalidInputError(f"{what} has an unknown field {unknown[0]!r}; its fields: {', '.join(keys)}.")


def _parameters(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a JSON object of parameters, got {type(value).__name__}.")
    options = {}
    for key, item in value.items():
        if key in _PROTOCOL_PARAMETERS:
            continue
        if key in ("binary_data_output", "binary_data_size", "binary_data"):
            if item in (False, None):
                continue
            raise InvalidInputError(f"{what}: the binary tensor data extension is not supported; send JSON data "
                                    f"(drop {key!r}).")
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise InvalidInputError(f"{what}: parameter {key!r} must be a string, number or boolean (the protocol's "
                                    f"parameter types), got {type(item).__name__}.")
        options[key] = item
    return options


def decode_request(body: Any, model: ServedModel) -> tuple[list[Any], dict[str, Any], list[str] | None, str | None]:
    """``(inputs, options, requested output names or None, request id)`` of an inference request.

    Raises:
        InvalidInputError, InputTypeError: the request breaks the spec or the task's input
            rules; the message names the field.
    """
    _fields(body, _REQUEST_KEYS, "the inference request")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError(f"the request 'id' must be a string, got {type(request_id).__name__}.")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInputError("the inference request needs 'inputs': a list holding one input tensor "
                                "{name, shape, datatype, data}.")
    if len(tensors) != 1:
        names = [t.get("name") for t in tensors if isinstance(t, Mapping)]
        raise InvalidInputError(f"{model.task} takes one input tensor, got {len(tensors)} ({names}); put every input "
                                "in one tensor, the batch first.")
    tensor = tensors[0]
    _fields(tensor, _TENSOR_KEYS, "input tensor 0")
    options = _parameters(body.get("parameters"), "the request parameters")
    for key, value in _parameters(tensor.get("parameters"), "the input tensor parameters").items():
        if key in options and options[key] != value:
            raise InvalidInputError(f"parameter {key!r} is given twice with different values (request and tensor).")
        options[key] = value
    items = decode_tensor(tensor, model)
    wanted = None
    if body.get("outputs") is not None:
        outputs = body["outputs"]
        if not isinstance(outputs, list):
            raise InvalidInputError("'outputs' must be a list of {\"name\": ...} objects.")
        wanted = []
        for index, out in enumerate(outputs):
            _fields(out, ("name", "parameters"), f"requested output {index}")
            if not isinstance(out.get("name"), str):
                raise InvalidInputError(f"requested output {index} needs a 'name' string.")
            wanted.append(out["name"])
    return items, options, wanted, request_id


def _flatten(data: list[Any], out: list[Any]) -> None:
    """Row-major elements of nested lists (iterative: JSON can nest deeper than the stack)."""
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()


def decode_tensor(tensor: Mapping[str, Any], model: ServedModel) -> list[Any]:
    """The pipeline inputs held by one input tensor (the first dimension is the batch)."""
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str):
        raise InvalidInputError("input tensor 0 needs a 'name' string.")
    if (not isinstance(shape, list) or not shape
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)):
        raise InvalidInputError(f"input {name!r}: 'shape' must be a list of non-negative integers, the batch first "
                                f"(e.g. [2] for two texts), got {shape!r:.60}.")
    if datatype not in DATATYPES:
        raise InvalidInputError(f"input {name!r}: datatype {datatype!r:.40} is not one of {', '.join(DATATYPES)}.")
    if not isinstance(data, list):
        raise InvalidInputError(f"input {name!r}: 'data' must be a list (flat or nested, row-major).")
    flat: list[Any] = []
    _flatten(data, flat)
    count = math.prod(shape)
    if len(flat) != count:
        raise InvalidInputError(f"input {name!r}: shape {shape} holds {count} elements but 'data' has {len(flat)}.")
    _check_elements(name, datatype, flat)
    batch = shape[0]
    if datatype == "BYTES":
        if math.prod(shape[1:]) != 1:
            raise InvalidInputError(f"input {name!r}: a BYTES tensor holds one string per input: shape [N] or [N, 1], "
                                    f"got {shape}.")
        if model.modality in FILE_MODALITIES:
            return [decode_b64(text, i, model.task) for i, text in enumerate(flat)]
        return flat
    if len(shape) == 1:
        return flat
    import numpy as np

    dtype = _FLOATS.get(datatype, "bool" if datatype == "BOOL" else datatype.lower())
    array = np.asarray(flat, dtype=dtype).reshape(shape)
    if model.modality in FILE_MODALITIES:
        return [array[i] for i in range(batch)]
    return [array[i].tolist() for i in range(batch)]


def _check_elements(name: str, datatype: str, flat: list[Any]) -> None:
    for index, value in enumerate(flat):
        if datatype == "BYTES":
            ok = isinstance(value, str)
        elif datatype == "BOOL":
            ok = isinstance(value, bool)
        elif datatype in _INTEGER_RANGES:
            low, high = _INTEGER_RANGES[datatype]
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise InputTypeError(f"input {name!r}: element {index} ({value!r:.40}) is not a {datatype} value.")


# --------------------------------------------------------------------------- outputs
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar_type(values: list[Any]) -> str | None:
    """The datatype all ``values`` share, or None."""
    if not values:
        return None
    if all(isinstance(v, str) for v in values):
        return "BYTES"
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64" if all(-2**63 <= v < 2**63 for v in values) else None
    if all(_is_number(v) for v in values):
        import numpy as np

        exact = np.asarray(values, dtype=np.float64)
        if not np.isfinite(exact).all():
            return None
        return "FP32" if np.array_equal(exact.astype(np.float32).astype(np.float64), exact) else "FP64"
    return None


def _tensor(name: str, rows: list[Any], inner: bool) -> dict[str, Any]:
    """One output tensor from one value per input (``inner``: each value is a list, giving
    ``[N, k]``), typed when the values allow, else JSON text per input."""
    if inner and rows and all(isinstance(r, list) for r in rows) and len({len(r) for r in rows}) == 1:
        flat = [v for r in rows for v in r]
        datatype = _scalar_type(flat)
        if datatype is not None:
            return {"name": name, "datatype": datatype, "shape": [len(rows), len(rows[0])], "data": flat}
    elif not inner:
        datatype = _scalar_type(rows)
        if datatype is not None:
            return {"name": name, "datatype": datatype, "shape": [len(rows)], "data": rows}
    return {"name": name, "datatype": "BYTES", "shape": [len(rows)], "parameters": {"content_type": "json"},
            "data": [json.dumps(to_json(r), ensure_ascii=False) for r in rows]}


def _field_names(dicts: list[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for d in dicts:
        for key in d:
            names.setdefault(str(key), None)
    return list(names)


def encode_outputs(results: list[Any], result_name: str = "output") -> list[dict[str, Any]]:
    """The output tensors of a batch of results (see the module docstring).

    Args:
        results: one result per input, as the pipeline returned them.
        result_name: the name of the one output of results that are lists of numbers.

    Returns:
        ``$response_output`` objects: name, datatype, shape, data (flat, row-major), and
        ``parameters.content_type == "json"`` for JSON-text outputs.
    """
    values = [to_json(r) for r in results]
    if values and all(isinstance(v, dict) for v in values):
        return [_tensor(f, [v.get(f) for v in values], inner=False) for f in _field_names(values)]
    if values and all(isinstance(v, list) and all(isinstance(x, dict) for x in v) for v in values) \
            and any(values):
        names = _field_names([x for v in values for x in v])
        return [_tensor(f, [[x.get(f) for x in v] for v in values], inner=True) for f in names]
    if values and all(isinstance(v, list) and all(_is_number(x) for x in v) for v in values):
        return [_tensor(result_name, values, inner=True)]
    if values and all(not isinstance(v, (list, dict)) for v in values):
        return [_tensor(result_name, values, inner=False)]
    return [_tensor("result", values, inner=False)]
