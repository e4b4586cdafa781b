"""OpenAI-compatible routes under ``/v1``, so the official ``openai`` client (and anything written
for the OpenAI API) works against ``hub serve`` with ``base_url="http://HOST:PORT/v1"``.

* ``GET /v1/models``, ``GET /v1/models/{name}``: every served model.
* ``POST /v1/embeddings`` (``text-embed`` models): ``input`` a string or a list of strings;
  ``encoding_format`` ``"float"`` or ``"base64"`` (little-endian float32, what the ``openai``
  client asks for by default); ``dimensions`` keeps the first N values, re-normalised when the
  model normalises (as OpenAI's shortened embeddings are).
* ``POST /v1/completions`` (``text-generate``): ``prompt`` a string or a list; ``max_tokens``
  (default 16), ``temperature`` (default 1; ``0`` is greedy), ``top_p``, ``stop``, ``seed``,
  ``echo``; ``stream: true`` sends server-sent events as the tokens come, then ``data: [DONE]``
  (``stream_options: {"include_usage": true}`` adds a usage chunk).
* ``POST /v1/chat/completions`` (``text-generate`` models whose tokenizer has a chat template):
  ``messages`` rendered by the tokenizer's own template (``apply_chat_template`` with the
  generation prompt), the same sampling fields, ``max_completion_tokens`` / ``max_tokens``
  (default 256), streaming as ``chat.completion.chunk`` deltas.
* ``POST /v1/audio/transcriptions`` (``speech-recognize``): a multipart upload of ``file``
  (+ ``model``, ``response_format`` ``json`` / ``text`` / ``verbose_json``, ``language`` for
  models that take one, ``timestamp_granularities`` ``word`` (CTC models: ``words``) or
  ``segment`` (Whisper's timestamp tokens: ``segments``) with ``verbose_json``).

``top_k`` and ``repetition_penalty`` are accepted as extensions (vLLM's names; the ``openai``
client sends them through ``extra_body``). ``n`` > 1 (with sampling, not streamed) gives n
sampled choices per prompt (text-generate's ``num_return_sequences``). Fields the API defines
but Hub cannot honour (``logprobs``, ``presence_penalty`` / ``frequency_penalty`` other than 0,
``logit_bias``, ``tools``, ``suffix``) and unknown fields are a ``400`` naming the field and
what to do, never silently ignored. Errors have OpenAI's shape: ``{"error": {"message",
"type", "param", "code"}}``.

Requests go through :meth:`hub.serving.app.ServingState.infer` (checks before batching, the
model's batcher, the queue bound, timeouts, disconnects), so completions of concurrent
requests are batched like any other task; a stream runs in the model's inference thread
(:meth:`hub.serving.batcher.Batcher.iterate`), taking turns with the batches. ``usage`` counts
tokens with a copy of the model's tokenizer (a fast tokenizer must not be shared across
threads); ``finish_reason`` is ``"length"`` when ``max_tokens`` tokens were generated, else
``"stop"``.
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, StreamingResponse

from hub.errors import InvalidInputError
from hub.serving.app import get_state
from hub.serving.errors import ServeError
from hub.serving.models import ServedModel
from hub.serving.routes_native import read_json

PREFIX = "/v1"
router = APIRouter(prefix=PREFIX, tags=["OpenAI-compatible"])

_STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 413: "invalid_request_error", 429: "rate_limit_error", 503: "server_error", 504: "timeout"}
_GENERATION_FIELDS = {"model", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop", "seed",
                      "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "user", "top_k",
                      "repetition_penalty"}
COMPLETION_FIELDS = _GENERATION_FIELDS | {"prompt", "echo", "best_of", "suffix"}
CHAT_FIELDS = _GENERATION_FIELDS | {"messages", "max_completion_tokens", "top_logprobs", "response_format",
                                    "tools", "tool_choice", "parallel_tool_calls", "store", "metadata"}
EMBEDDING_FIELDS = {"model", "input", "encoding_format", "dimensions", "user"}
TRANSCRIPTION_FIELDS = {"file", "model", "language", "prompt", "response_format", "temperature",
                        "timestamp_granularities[]", "timestamp_granularities"}
DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default for /v1/completions
DEFAULT_CHAT_TOKENS = 256
#: the most choices (``n``) one request may ask for: each is a sequence in the model's batch
MAX_CHOICES = 16
_ROLES = ("system", "user", "assistant", "developer", "tool")
_STARTED = int(time.time())


def openai_error(status: int, fields: dict[str, Any]) -> Any:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}`` (+ request id)."""
    kind = _STATUS_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": fields.get("message", ""), "type": kind, "param": fields.get("input"),
                      "code": fields.get("type"), "request_id": fields.get("request_id")}}


error_format = openai_error  # the routes under PREFIX answer errors in this shape (hub.serving.app)


# --------------------------------------------------------------------------- models
def _model_object(model: ServedModel) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": _STARTED, "owned_by": "hub", "task": model.task}


@router.get("/models", summary="The served models (OpenAI's list)")
async def list_models(request: Request) -> Any:
    state = get_state(request)
    return {"object": "list", "data": [_model_object(m) for m in state.models.values()]}


@router.get("/models/{name}", summary="One served model (OpenAI's model object)")
async def get_model(name: str, request: Request) -> Any:
    return _model_object(get_state(request).model(name))


# --------------------------------------------------------------------------- embeddings
@router.post("/embeddings", summary="Embeddings of texts (text-embed models)")
async def embeddings(request: Request) -> Any:
    state = get_state(request)
    body = await _body(request, EMBEDDING_FIELDS)
    model = _served(state, body.get("model"), ("text-embed",), "/v1/embeddings")
    texts = _texts(body.get("input"), "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidInputError(f"encoding_format must be 'float' or 'base64', got {encoding!r}.")
    dimensions = _optional_int(body, "dimensions", minimum=1)
    results = await state.infer(request, model, texts, {})
    data = []
    for index, result in enumerate(results):
        vector = [float(v) for v in result]
        if dimensions is not None:
            if dimensions > len(vector):
                raise InvalidInputError(f"dimensions={dimensions} is more than the model's {len(vector)}.")
            vector = vector[:dimensions]
            if getattr(result, "metadata", {}).get("normalized"):
                norm = sum(v * v for v in vector) ** 0.5 or 1.0
                vector = [v / norm for v in vector]
        data.append({"object": "embedding", "index": index, "embedding": _encode_vector(vector, encoding)})
    tokens = sum(int(getattr(r, "metadata", {}).get("num_tokens", 0)) for r in results)
    return {"object": "list", "data": data, "model": model.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode_vector(vector: list[float], encoding: str) -> Any:
    if encoding == "float":
        return vector
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


# --------------------------------------------------------------------------- completions
@router.post("/completions", summary="Text completions (text-generate models); stream: true for SSE")
async def completions(request: Request) -> Any:
    state = get_state(request)
    body = await _body(request, COMPLETION_FIELDS)
    model = _served(state, body.get("model"), ("text-generate",), "/v1/completions")
    prompts = _texts(body.get("prompt"), "prompt")
    _refuse(body, best_of=(None, 1), suffix=(None, ""))
    options, max_tokens = _generation_options(body, DEFAULT_COMPLETION_TOKENS)
    echo = _optional_bool(body, "echo")
    counter = _Counter.of(model)
    created, ident = int(time.time()), f"cmpl-{uuid.uuid4().hex}"
    if _optional_bool(body, "stream"):
        if len(prompts) != 1:
            raise InvalidInputError("stream: true takes one prompt; send the prompts as separate requests.")
        usage = _include_usage(body)

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            return {"id": ident, "object": "text_completion", "created": created, "model": model.name,
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}

        def usage_chunk(completion: str) -> dict[str, Any]:
            return {"id": ident, "object": "text_completion", "created": created, "model": model.name,
                    "choices": [], "usage": counter.usage(prompts, [completion])}

        pieces = await _stream(state, model, prompts[0], options)
        return _sse(pieces, chunk, usage_chunk if usage else None, counter, max_tokens,
                    prefix=prompts[0] if echo else "")
    results = await state.infer(request, model, prompts, {**options, "return_full_text": echo})
    samples = _choices(results, options)  # n choices per prompt, in prompt order (OpenAI's indices)
    texts = [r["generated_text"] for r in samples]
    choices = [{"text": text, "index": i, "logprobs": None, "finish_reason": _finish(result, max_tokens)}
               for i, (text, result) in enumerate(zip(texts, samples))]
    per_prompt = len(samples) // len(prompts)
    completions_only = [t[len(prompts[i // per_prompt]):] if echo else t for i, t in enumerate(texts)]
    return {"id": ident, "object": "text_completion", "created": created, "model": model.name, "choices": choices,
            "usage": counter.usage(prompts, completions_only, samples)}


# --------------------------------------------------------------------------- chat
@router.post("/chat/completions", summary="Chat completions (text-generate models with a chat template)")
async def chat_completions(request: Request) -> Any:
    state = get_state(request)
    body = await _body(request, CHAT_FIELDS)
    model = _served(state, body.get("model"), ("text-generate",), "/v1/chat/completions")
    _refuse(body, tools=(None, []), tool_choice=(None, "none", "auto"), top_logprobs=(None, 0))
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise InvalidInputError(f"response_format {response_format!r:.80} is not supported: Hub generates free "
                                "text ({'type': 'text'}).")
    if body.get("max_completion_tokens") is not None:
        body = {**body, "max_tokens": body["max_completion_tokens"]}
    options, max_tokens = _generation_options(body, DEFAULT_CHAT_TOKENS)
    counter = _Counter.of(model)
    prompt = counter.render_chat(_messages(body.get("messages")), model)
    created, ident = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
    if _optional_bool(body, "stream"):
        usage = _include_usage(body)
        first = [True]

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            delta: dict[str, Any] = {} if finish else {"content": text}
            if first[0]:
                delta, first[0] = {"role": "assistant", **delta}, False
            return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model.name,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        def usage_chunk(completion: str) -> dict[str, Any]:
            return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model.name,
                    "choices": [], "usage": counter.usage([prompt], [completion])}

        pieces = await _stream(state, model, prompt, options)
        return _sse(pieces, chunk, usage_chunk if usage else None, counter, max_tokens)
    results = await state.infer(request, model, [prompt], {**options, "return_full_text": False}, single=True)
    samples = _choices(results, options)
    texts = [r["generated_text"] for r in samples]
    return {"id": ident, "object": "chat.completion", "created": created, "model": model.name,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": _finish(result, max_tokens)}
                        for i, (text, result) in enumerate(zip(texts, samples))],
            "usage": counter.usage([prompt], texts, samples)}


# --------------------------------------------------------------------------- transcriptions
@router.post("/audio/transcriptions", summary="Transcribe an uploaded audio file (speech-recognize models)")
async def transcriptions(request: Request) -> Any:
    state = get_state(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInputError("/v1/audio/transcriptions takes a multipart/form-data upload with a 'file' field "
                                "(as the openai client sends it).")
    settings = state.settings
    form = await request.form(max_files=1, max_fields=16, max_part_size=settings.max_body_bytes)
    try:
        fields: dict[str, Any] = {}
        granularities: list[str] = []
        audio: bytes | None = None
        for key, value in form.multi_items():
            _known(key, TRANSCRIPTION_FIELDS)
            if key == "file":
                if isinstance(value, str):
                    raise InvalidInputError("'file' must be an uploaded file, not a text field.")
                audio = await value.read()
            elif not isinstance(value, str):
                raise InvalidInputError(f"field {key!r} must be a text field, not a file.")
            elif key.startswith("timestamp_granularities"):  # repeated: the client sends one field a value
                granularities += form_values(value)
            else:
                fields[key] = value
    finally:
        await form.close()
    if audio is None:
        raise InvalidInputError("the upload has no 'file': send the audio file as the multipart field 'file'.")
    model = _served(state, fields.get("model"), ("speech-recognize",), "/v1/audio/transcriptions")
    response_format = fields.get("response_format") or "json"
    if response_format not in ("json", "text", "verbose_json"):
        raise InvalidInputError(f"response_format {response_format!r} is not supported; use 'json', 'text' or "
                                "'verbose_json'.")
    if fields.get("prompt"):
        raise InvalidInputError("prompt is not supported by Hub's speech recognisers; drop it.")
    if fields.get("temperature") not in (None, "", "0", "0.0"):
        raise InvalidInputError("temperature must be 0 (Hub's recognisers decode deterministically); drop it.")
    options: dict[str, Any] = {}
    if fields.get("language"):
        options["language"] = fields["language"]  # refused with the close match by a model without it
    unknown = sorted(set(granularities) - {"word", "segment"})
    if unknown:
        raise InvalidInputError(f"timestamp_granularities {unknown} are not known; use 'word' or 'segment'.")
    if granularities and response_format != "verbose_json":
        raise InvalidInputError("timestamp_granularities needs response_format='verbose_json'.")
    if "word" in granularities and "segment" in granularities:
        raise InvalidInputError("timestamp_granularities: Hub gives word timestamps (CTC models) or segment "
                                "timestamps (Whisper) in one call, not both; ask for one.")
    if "word" in granularities:
        options["return_timestamps"] = "word"
    elif "segment" in granularities:  # Whisper's timestamp tokens: the segments between them
        options["return_timestamps"] = True
    result = (await state.infer(request, model, [audio], options, single=True))[0]
    text = result["text"]
    if response_format == "text":
        return PlainTextResponse(text)
    if response_format == "json":
        return {"text": text}
    verbose: dict[str, Any] = {"task": "transcribe", "language": fields.get("language"),
                               "duration": getattr(result, "metadata", {}).get("seconds"), "text": text}
    if "chunks" in result and options.get("return_timestamps") == "word":
        verbose["words"] = [{"word": c["text"], "start": c["timestamp"][0], "end": c["timestamp"][1]}
                            for c in result["chunks"]]
    elif "chunks" in result:  # OpenAI's segment fields that Hub knows (no log-probabilities)
        verbose["segments"] = [{"id": i, "seek": 0, "start": c["timestamp"][0], "end": c["timestamp"][1],
                                "text": c["text"], "tokens": [], "temperature": 0.0}
                               for i, c in enumerate(result["chunks"])]
    return verbose


def form_values(value: Any) -> list[str]:
    """A form field that may hold one value or a JSON list (``timestamp_granularities``)."""
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


# --------------------------------------------------------------------------- shared helpers
async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    """The JSON body as a dict whose every field the route knows (a typo: the close match)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ServeError(400, "invalid_request", "the body must be a JSON object.")
    for key in body:
        _known(key, allowed)
    return body


def _known(key: str, allowed: set[str]) -> None:
    if key not in allowed:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise InvalidInputError(f"unknown field {key!r}{hint} This route takes: {', '.join(sorted(allowed))}.")


def _served(state: Any, name: Any, tasks: tuple[str, ...], route: str) -> ServedModel:
    """The model a request names (or the only one of the route's tasks when it names none)."""
    eligible = [m for m in state.models.values() if m.task in tasks]
    if name is None:
        if len(eligible) == 1:
            return eligible[0]
        raise InvalidInputError(f"'model' is required: {route} serves the {'/'.join(tasks)} models "
                                f"{sorted(m.name for m in eligible) or 'none of which are loaded'}.")
    if not isinstance(name, str):
        raise InvalidInputError(f"'model' must be a string, got {type(name).__name__}.")
    model = state.model(name)  # 404 naming the served models
    if model.task not in tasks:
        raise InvalidInputError(f"model {name!r} serves {model.task!r}; {route} takes {'/'.join(tasks)} models: "
                                f"{sorted(m.name for m in eligible) or 'none are served'}.")
    return model


def _texts(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, list)) for v in value):
        raise InvalidInputError(f"'{field}' as token ids is not supported: send the text (a string or a list of "
                                "strings); Hub tokenises with the model's own tokenizer.")
    raise InvalidInputError(f"'{field}' must be a string or a non-empty list of strings, got {value!r:.80}.")


def _optional_bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInputError(f"'{key}' must be true or false, got {value!r:.40}.")
    return value


def _optional_int(body: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"'{key}' must be an integer >= {minimum}, got {value!r:.40}.")
    return value


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInputError(f"'{key}' must be a number in [{low:g}, {high:g}], got {value!r:.40}.")
    return float(value)


def _refuse(body: Mapping[str, Any], **allowed: tuple[Any, ...]) -> None:
    """Fields the API defines whose other values Hub cannot honour: a 400 naming them."""
    for key, values in allowed.items():
        if key in body and body[key] not in values:
            raise InvalidInputError(f"'{key}'={body[key]!r:.60} is not supported by Hub's server; drop the field "
                                    f"(accepted: {', '.join(repr(v) for v in values)}).")


def _generation_options(body: Mapping[str, Any], default_max: int) -> tuple[dict[str, Any], int]:
    """The text-generate call keywords of an OpenAI request, and its max_tokens."""
    _refuse(body, logprobs=(None, False, 0), presence_penalty=(None, 0, 0.0),
            frequency_penalty=(None, 0, 0.0), logit_bias=(None, {}))
    max_tokens = _optional_int(body, "max_tokens", minimum=1) or default_max
    options: dict[str, Any] = {"max_new_tokens": max_tokens}
    temperature = _number(body, "temperature", 0.0, 2.0)
    temperature = 1.0 if temperature is None else temperature  # OpenAI's default: sampling at 1
    if temperature == 0:
        options["do_sample"] = False
    else:
        options.update(do_sample=True, temperature=temperature)
    n = _optional_int(body, "n", minimum=1) or 1
    if n > MAX_CHOICES:
        raise InvalidInputError(f"'n'={n} is more than this server gives ({MAX_CHOICES}); ask for fewer choices.")
    if n > 1:
        if temperature == 0:
            raise InvalidInputError(f"'n'={n} with temperature 0 would be {n} copies of one greedy answer; "
                                    "sample (temperature > 0) or ask for n=1.")
        if body.get("stream"):
            raise InvalidInputError("'n' > 1 is not supported with stream: true; send n=1 streams.")
        options["num_return_sequences"] = n
    top_p = _number(body, "top_p", 0.0, 1.0)
    if top_p is not None:
        if top_p == 0:
            raise InvalidInputError("'top_p' must be more than 0.")
        options["top_p"] = top_p
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > 4:
            raise InvalidInputError("'stop' must be a string or a list of at most 4 non-empty strings.")
        options["stop"] = stops
    for key in ("seed", "top_k"):
        if body.get(key) is not None:
            options[key] = _optional_int(body, key, minimum=0)
    if body.get("repetition_penalty") is not None:
        options["repetition_penalty"] = _number(body, "repetition_penalty", 0.0, 100.0)
    return options, max_tokens


def _include_usage(body: Mapping[str, Any]) -> bool:
    stream_options = body.get("stream_options")
    if stream_options is None:
        return False
    if not isinstance(stream_options, Mapping) or set(stream_options) - {"include_usage"}:
        raise InvalidInputError("'stream_options' takes only {'include_usage': true|false}.")
    return bool(stream_options.get("include_usage"))


def _messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as the tokenizer's template takes them: role + text content."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("'messages' must be a non-empty list of {'role', 'content'} objects.")
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise InvalidInputError(f"messages[{index}] must be an object with 'role' and 'content'.")
        role, content = message["role"], message.get("content")
        if role not in _ROLES:
            raise InvalidInputError(f"messages[{index}].role {role!r:.30} is not one of {', '.join(_ROLES)}.")
        if isinstance(content, list):  # content parts: only text is understood
            texts = []
            for part in content:
                if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise InvalidInputError(f"messages[{index}].content: only text parts ({{'type': 'text', "
                                            "'text': ...}) are supported.")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise InvalidInputError(f"messages[{index}].content must be a string (or text parts).")
        out.append({"role": role, "content": content})
    return out


def _choices(results: list[Any], options: Mapping[str, Any]) -> list[Any]:
    """One result per choice: with ``n`` > 1 each prompt's result is a list of n samples,
    flattened in prompt order (choice ``index`` = prompt * n + sample, as OpenAI numbers them)."""
    if options.get("num_return_sequences", 1) == 1:
        return list(results)
    return [sample for per_prompt in results for sample in per_prompt]


def _finish(result: Any, max_tokens: int) -> str:
    return "length" if int(getattr(result, "metadata", {}).get("new_tokens", 0)) >= max_tokens else "stop"


class _Counter:
    """Token counting and chat rendering with a copy of the model's tokenizer, used on the event
    loop while the model's own tokenizer works in the inference thread."""

    _lock = threading.Lock()
    #: one copy per served pipeline, dropped with it (keyed by the object, not its reusable id)
    _copies: weakref.WeakKeyDictionary[Any, _Counter] = weakref.WeakKeyDictionary()

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def of(cls, model: ServedModel) -> _Counter:
        with cls._lock:
            counter = cls._copies.get(model.pipeline)
            if counter is None:
                counter = cls._copies[model.pipeline] = cls(copy.deepcopy(model.pipeline.tokenizer))
            return counter

    def count(self, text: str, *, specials: bool) -> int:
        return len(self.tokenizer(text, add_special_tokens=specials)["input_ids"])

    def usage(self, prompts: list[str], completions: list[str], results: list[Any] | None = None) -> dict[str, int]:
        prompt = sum(self.count(p, specials=True) for p in prompts)
        if results is not None:
            completion = sum(int(getattr(r, "metadata", {}).get("new_tokens", 0)) for r in results)
        else:
            completion = sum(self.count(c, specials=False) for c in completions)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def render_chat(self, messages: list[dict[str, str]], model: ServedModel) -> str:
        """The prompt the model's chat template makes of ``messages`` (with the generation
        prompt), minus a leading BOS the tokenizer adds again when it encodes the prompt."""
        tokenizer = self.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidInputError(f"model {model.name!r} has no chat template (its tokenizer's chat_template is "
                                    "empty); use /v1/completions, or save the tokenizer with a chat_template.")
        try:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # the template's own error (e.g. roles out of order)
            raise InvalidInputError(f"model {model.name!r}'s chat template refused the messages: {exc}") from None
        bos = getattr(tokenizer, "bos_token", None)
        if bos and prompt.startswith(bos):
            ids = tokenizer("x", add_special_tokens=True)["input_ids"]
            if ids and ids[0] == tokenizer.bos_token_id:
                prompt = prompt[len(bos):]
        return prompt


async def _stream(state: Any, model: ServedModel, prompt: str,
                  options: dict[str, Any]) -> AsyncIterator[str]:
    """The pieces of ``pipe.stream(prompt)``, computed in the model's inference thread; the
    options and the prompt are checked, and the first piece awaited, before the response
    starts, so an error before any text is a normal HTTP error."""
    options = state.admit(model, [prompt], options)
    pieces = model.batcher.iterate(lambda: model.pipeline.stream(prompt, **options)).__aiter__()
    try:
        first = await pieces.__anext__()
    except StopAsyncIteration:
        first = None

    async def all_pieces() -> AsyncIterator[str]:
        if first is None:
            return
        yield first
        async for piece in pieces:
            yield piece

    return all_pieces()


def _sse(pieces: AsyncIterator[str], chunk: Any, usage_chunk: Any, counter: _Counter, max_tokens: int, *,
         prefix: str = "") -> StreamingResponse:
    """Server-sent events: one chunk per piece, a last chunk with the finish reason, the usage
    chunk when asked, then ``[DONE]``; an error after the first byte is sent as an error event."""

    async def events() -> AsyncIterator[bytes]:
        text = ""
        try:
            if prefix:
                yield _event(chunk(prefix, None))
            async for piece in pieces:
                text += piece
                yield _event(chunk(piece, None))
            finish = "length" if counter.count(text, specials=False) >= max_tokens else "stop"
            yield _event(chunk("", finish))
            if usage_chunk is not None:
                yield _event(usage_chunk(text))
        except Exception as exc:  # headers are gone: the error goes into the stream
            yield _event(openai_error(400 if isinstance(exc, InvalidInputError) else 500,
                                      {"message": str(exc), "type": type(exc).__name__}))
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


__all__ = ["PREFIX", "error_format", "openai_error", "router"]
