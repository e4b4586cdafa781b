"""Checks for call parameters and resource limits, shared by every pipeline (plugins too).

A pipeline call such as ``clf(text, top_k="3")`` or ``asr(clip, chunk_length_s=nan)`` must
fail at once with an :class:`~hub.errors.InvalidInputError` that names the keyword and
what it takes, not deep inside torch or a tokenizer (``OverflowError``, ``TypeError`` from
``torch.Generator.manual_seed``...) or, worse, run on with a silently wrong value. These
helpers return the checked value, so a pipeline writes ``k = check_int("top_k", top_k,
minimum=1, none_ok=True)``.

Limits (``max_windows``, ``max_pixels``, ``max_audio_seconds``, ...) are resolved by
:func:`resolve_limit`: the call's keyword if given, else an environment variable, else
the documented default.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Collection, Iterable
from typing import Any

from hub.errors import ConfigError, InvalidInputError

__all__ = ["check_bool", "check_choice", "check_int", "check_keywords", "check_number", "resolve_limit"]


def _got(value: Any) -> str:
    return f"got {value!r:.60}" + (f" (a {type(value).__name__})" if isinstance(value, (str, bytes)) else "")


def _range_text(minimum: float | None, maximum: float | None, above: float | None = None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              none_ok: bool = False) -> int | None:
    """``value`` as an ``int`` (Python or NumPy integer; not a bool, float or string) within
    ``[minimum, maximum]``; ``None`` passes when ``none_ok``."""
    if value is None and none_ok:
        return None
    bounds = _range_text(minimum, maximum)
    wanted = "an integer" + (f" {bounds}" if bounds else "") + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be {wanted}, {_got(value)}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidInputError(f"{name} must be {wanted}, {_got(value)}.")
    return value


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, none_ok: bool = False) -> float | None:
    """``value`` as a finite ``float`` (ints and NumPy numbers accepted; NaN, infinities,
    bools and strings refused) within the bounds (``above``: strictly greater)."""
    if value is None and none_ok:
        return None
    bounds = _range_text(minimum, maximum, above)
    wanted = "a finite number" + (f" {bounds}" if bounds else "") + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be {wanted}, {_got(value)}.")
    value = float(value)
    if (not math.isfinite(value) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum) or (above is not None and value <= above)):
        raise InvalidInputError(f"{name} must be {wanted}, {_got(value)}.")
    return value


def check_bool(name: str, value: Any, *, none_ok: bool = False) -> bool | None:
    """``value`` as a ``bool`` (``True``/``False``, NumPy bools too; not 0/1 or "yes")."""
    if value is None and none_ok:
        return None
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not isinstance(value, bool) and not numpy_bool:
        raise InvalidInputError(f"{name} must be True or False{' or None' if none_ok else ''}, {_got(value)}.")
    return bool(value)


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``; else an error listing them."""
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set
        ok = False
    if not ok:
        shown = sorted(choices, key=str) if isinstance(choices, (set, frozenset)) else list(choices)
        raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, shown))}, {_got(value)}.")
    return value


def _parse_env(env: str, text: str) -> int:
    text = text.strip().replace("_", "")
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)  # 5e7
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or not number.is_integer():
            raise ConfigError(f"The environment variable {env}={text!r} must be a positive integer.") from None
        value = int(number)
    if value < 1:
        raise ConfigError(f"The environment variable {env}={text!r} must be a positive integer.")
    return value


def resolve_limit(name: str, value: Any, env: str, default: int) -> int:
    """A resource limit: the keyword ``value`` when given (a positive integer), else the
    environment variable ``env`` when set, else ``default``."""
    if value is not None:
        return check_int(name, value, minimum=1)  # type: ignore[return-value]
    text = os.environ.get(env)
    if text is not None and text.strip():
        return _parse_env(env, text)
    return default


#: the most candidate labels one zero-shot call may take unless ``max_candidate_labels=`` or
#: the environment variable says otherwise (each label costs a pass of a model, or a text embedding)
MAX_CANDIDATES_ENV = "HUB_MAX_CANDIDATE_LABELS"
DEFAULT_MAX_CANDIDATES = 256


def check_candidate_labels(task: str, labels: Any, limit: Any = None) -> list[str]:
    """Zero-shot tasks' ``candidate_labels``: a list of strings (one comma-separated string is
    split, as transformers does); refused when missing, empty, blank, repeated or more than
    ``limit`` (``max_candidate_labels=``, else :data:`MAX_CANDIDATES_ENV`, else 256)."""
    if labels is None:
        raise InvalidInputError(f"{task} needs candidate_labels=[...], the labels to choose from, e.g. "
                                "pipe(x, candidate_labels=['sports', 'politics']).")
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    if not isinstance(labels, (list, tuple)) or not labels:
        raise InvalidInputError(f"candidate_labels must be a non-empty list of strings (or one comma-separated "
                                f"string), got {labels!r:.80}.")
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise InvalidInputError(f"candidate_labels[{index}] is {label!r:.40}; every label must be a "
                                    "non-empty string.")
    if len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise InvalidInputError(f"candidate_labels repeats {repeated}; give each label once.")
    cap = resolve_limit("max_candidate_labels", limit, MAX_CANDIDATES_ENV, DEFAULT_MAX_CANDIDATES)
    if len(labels) > cap:
        raise InvalidInputError(f"{len(labels)} candidate labels, more than the limit of {cap} (each costs a pass "
                                f"of the model); pass fewer, or raise max_candidate_labels= / {MAX_CANDIDATES_ENV}.")
    return list(labels)


def check_template(template: Any, example: str) -> str:
    """A zero-shot ``hypothesis_template``: a string with ``{}`` where the label goes."""
    if not isinstance(template, str) or "{}" not in template:
        raise InvalidInputError(f"hypothesis_template must be a string holding '{{}}' where the label goes, "
                                f"e.g. {example!r}; got {template!r:.80}.")
    return template


#: transformers' pipeline keywords Hub spells differently or does not offer: the Hub keyword
#: that replaces it, what to say when the task takes that keyword, and what to say otherwise.
TRANSFORMERS_KEYWORDS: dict[str, tuple[str | None, str, str]] = {
    # text-classify takes return_all_scores, function_to_apply and truncation with their meaning;
    # for the other tasks they are refused with these messages
    "return_all_scores": ("top_k", "pass top_k=None for every label's score", "it is not supported"),
    "function_to_apply": (None, "", "this task scores with softmax; only text-classify takes it"),
    "truncation": ("long_inputs", "pass long_inputs='truncate' to keep the head of a long input ('window' "
                                  "reads all of it, 'error' refuses)", "it is not supported"),
    "max_length": ("max_new_tokens", "pass max_new_tokens= to bound the generated length",
                   "long inputs are handled by long_inputs= where a task takes it"),
    "padding": (None, "", "Hub pads every batch to its own longest input itself"),
    "tokenize_kwargs": (None, "", "tokenizer options are not call keywords in Hub"),
    "generate_kwargs": ("max_new_tokens", "pass the generation options directly (max_new_tokens=, "
                                          "do_sample=, ...)", "it is not supported"),
    "model_kwargs": (None, "", "model options are given at hub.load(...), not per call"),
    "device": (None, "", "the device is chosen once, at hub.load(task, device=...)"),
    "num_workers": (None, "", "Hub preprocesses in the calling process"),
    "normalize_embeddings": ("normalize", "pass normalize=True for unit-length vectors", "it is not supported"),
    "num_beams": ("beam_width", "pass decoder='beam' and beam_width=", "this task has no beam search"),
}


def check_keywords(task: str, given: Iterable[str], accepted: Collection[str]) -> None:
    """Refuse call keywords a pipeline does not take, with the closest accepted one
    (``topk`` -> ``top_k``) or Hub's equivalent of a transformers keyword."""
    unknown = [key for key in given if key not in accepted]
    if not unknown:
        return
    key = unknown[0]
    message = f"unknown keyword {key!r} for {task}"
    replacement, instead, otherwise = TRANSFORMERS_KEYWORDS.get(key, (None, "", ""))
    close = difflib.get_close_matches(key, sorted(accepted), n=1, cutoff=0.6)
    if replacement is not None and replacement in accepted:
        message += f" (a transformers keyword): {instead}."
    elif close:
        message += f"; did you mean {close[0]!r}?"
    elif otherwise:
        message += f" (a transformers keyword): {otherwise}."
    else:
        message += "."
    others = f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
    raise InvalidInputError(f"{message}{others} {task} takes: {', '.join(sorted(accepted))}.")

