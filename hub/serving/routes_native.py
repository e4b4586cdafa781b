"""The task-native routes: the Python call over HTTP, for the simplest clients.

``POST /models/{name}/predict`` with ``{"inputs": ..., "options": {...}}`` answers
``{"model", "outputs", "metadata"}`` where ``outputs`` is exactly what
``pipe(inputs, **options)`` returns in Python (one input: one result; a list: a list of
results in order) and ``metadata`` the results' ``.metadata`` in the same shape. Files are
``{"b64": ...}`` inputs, or a ``multipart/form-data`` upload: each file (any field name but
``options``) is an input, text fields named ``inputs`` are text inputs, a field ``options``
holds the options as JSON; one input answers one result, several a list.

``GET /models`` lists the served models, ``GET /models/{name}`` describes one (task,
modality, accepted options, labels).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from hub.errors import InvalidInputError
from hub.serving.app import get_state
from hub.serving.codec import decode_item, result_metadata, to_json
from hub.serving.errors import ServeError
from hub.serving.models import ServedModel

router = APIRouter(tags=["native"])

_BODY_KEYS = ("inputs", "options")
_PREDICT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["inputs"],
                "properties": {"inputs": {"description": "one input or a list (as the Python call takes them); "
                                                         "files as {\"b64\": \"...\"}"},
                               "options": {"type": "object", "description": "the task's call keywords"}}},
                "example": {"inputs": ["a wonderful product", "stale and overpriced"], "options": {"top_k": 2}}},
            "multipart/form-data": {"schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"},
                               "options": {"type": "string", "description": "JSON object of call keywords"}}}},
        },
    },
}


@router.get("/models", summary="The served models")
async def list_models(request: Request) -> Any:
    state = get_state(request)
    return {"models": [m.info() for m in state.models.values()]}


@router.get("/models/{name}", summary="One served model: task, options, labels")
async def model_info(name: str, request: Request) -> Any:
    return get_state(request).model(name).info()


@router.post("/models/{name}/predict", summary="Run the model on one input or a list", openapi_extra=_PREDICT_DOC)
async def predict(name: str, request: Request) -> Any:
    state = get_state(request)
    model = state.model(name)
    inputs, options, single = await read_body(request, model)
    results = await state.infer(request, model, inputs, options, single=single)
    outputs = [to_json(r) for r in results]
    metadata = [result_metadata(r) for r in results]
    if single:
        return JSONResponse({"model": name, "outputs": outputs[0], "metadata": metadata[0]})
    return JSONResponse({"model": name, "outputs": outputs, "metadata": metadata})


async def read_json(request: Request) -> Any:
    """The request body as JSON; a 400 naming the position of a syntax error."""
    body = await request.body()
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ServeError(400, "invalid_json", "the request body is not UTF-8 JSON.") from None
    except json.JSONDecodeError as exc:
        raise ServeError(400, "invalid_json", f"the request body is not JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}.") from None
    except RecursionError:
        raise ServeError(400, "invalid_json", "the request body nests arrays or objects too deeply.") from None


async def read_body(request: Request, model: ServedModel) -> tuple[list[Any], Any, bool]:
    """``(inputs as a list, options, single)`` from a JSON or multipart request."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _read_multipart(request, model)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ServeError(400, "invalid_request", "the body must be a JSON object: {\"inputs\": ..., \"options\": "
                         "{...}}.")
    unknown = [k for k in data if k not in _BODY_KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], _BODY_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ServeError(400, "invalid_request", f"unknown body field {unknown[0]!r}{hint} The body takes "
                         "'inputs' and 'options'.")
    if "inputs" not in data:
        raise ServeError(400, "invalid_request", "the body has no 'inputs': send {\"inputs\": <one input or a list>}.")
    items, single = model.split_inputs(data["inputs"])
    return [decode_item(x, i, model.task) for i, x in enumerate(items)], data.get("options"), single


async def _read_multipart(request: Request, model: ServedModel) -> tuple[list[Any], Any, bool]:
    settings = get_state(request).settings
    form = await request.form(max_files=settings.max_inputs_per_request, max_fields=settings.max_inputs_per_request,
                              max_part_size=settings.max_body_bytes)
    inputs: list[Any] = []
    options: Any = None
    try:
        for key, value in form.multi_items():
            if key == "options":
                if not isinstance(value, str):
                    raise InvalidInputError("the multipart field 'options' must be a JSON text, not a file.")
                try:
                    options = json.loads(value) if value.strip() else None
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"the multipart field 'options' is not JSON: {exc.msg}.") from None
            elif isinstance(value, str):
                if key != "inputs":
                    raise InvalidInputError(f"multipart text field {key!r} is not understood: text inputs go in "
                                            "fields named 'inputs', options in 'options'.")
                inputs.append(value)
            else:
                inputs.append(await value.read())
    finally:
        await form.close()
    if not inputs:
        raise InvalidInputError("the multipart upload holds no input: send one file per input (or text fields "
                                "named 'inputs').")
    return inputs, options, len(inputs) == 1
