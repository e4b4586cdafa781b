"""Class labels of training data: one normalisation, and the rule for a model's existing head.

Why this module exists: fine-tuning used to rebuild a trained classification head whenever
the data's label set differed from the model's, so one typo'd row (``grate`` among 19
``great``) silently threw the trained head away. The rules, shared by ``text-classify``,
``token-classify``, ``image-classify`` and ``audio-classify``:

* A label is a string or an integer (``1`` and ``1.0`` are the label ``"1"``). ``None``,
  NaN, ``True``/``False``, lists, dicts and empty strings are refused (:func:`label_name`).
* Data whose labels are all among the model's keeps the model's labels and head.
* Data with labels the model lacks, given a model whose head was trained, is refused with
  a :class:`~hub.errors.DataError` naming the new labels and the model's, unless the call
  says what it wants: ``labels=[...]`` (the label set to train; a new head when it differs
  from the model's) or ``reset_head=True`` (a new head for the data's labels).
  A head that was never trained (``hub.create``, or a bare encoder given a fresh head)
  is replaced without asking: there is nothing to lose.
* A label seen in only one row of :data:`RARE_MIN_ROWS` or more rows is named in a warning
  with its count and the labels it resembles (probably a typo; one example cannot teach a
  class). The threshold can be changed with ``HUB_RARE_LABEL_MIN_ROWS`` (0 disables it).
"""

from __future__ import annotations

import difflib
import logging
import math
import numbers
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hub.errors import ConfigError, DataError, InvalidInputError

logger = logging.getLogger(__name__)

#: a label with a single row among at least this many rows gets a warning (HUB_RARE_LABEL_MIN_ROWS)
RARE_MIN_ROWS = 100


def label_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a class label, or None when it can."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return f"is the boolean {value!r}; write labels as strings (e.g. \"{str(value).lower()}\")"
    if isinstance(value, str):
        return None if value.strip() else "is an empty string"
    if isinstance(value, numbers.Integral):
        return None
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "is NaN (a missing value)"
        if not math.isfinite(value) or not value.is_integer():
            return f"is the number {value!r}; a label is a string or an integer"
        return None
    if value is None:
        return "is missing (null)"
    return f"is a {type(value).__name__} ({value!r:.40}); a label is a string or an integer"


def label_name(value: Any) -> str:
    """The label ``value`` as the string the model stores: ``1``, ``1.0`` and ``"1"`` are ``"1"``.

    Raises:
        InvalidInputError: ``value`` is not a usable label (see :func:`label_problem`);
            the readers turn it into a DataError naming the file and line.
    """
    problem = label_problem(value)
    if problem is not None:
        raise InvalidInputError(f"label {value!r:.40} {problem}.")
    if isinstance(value, str):
        return str(value)  # a numpy str_ becomes a plain str
    return str(int(value))


def head_labels(labels: int | Sequence[Any], *, what: str = "reset_classifier") -> list[str]:
    """The label names a new classification head is built for: ``labels`` as given (each
    through :func:`label_name`), or, for an integer ``n``, ``LABEL_0 ... LABEL_{n-1}``
    (transformers' names for unnamed classes). Every family's ``reset_classifier`` takes
    either form, as timm's takes ``num_classes``."""
    if isinstance(labels, numbers.Integral) and not isinstance(labels, bool):
        if labels < 1:
            raise InvalidInputError(f"{what}: the number of labels must be at least 1, got {labels}.")
        return [f"LABEL_{i}" for i in range(int(labels))]
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or not labels:
        raise InvalidInputError(f"{what}: give a number of labels or a non-empty list of label names, "
                                f"got {labels!r:.60}.")
    names = [label_name(label) for label in labels]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInputError(f"{what}: label names must be distinct; repeated: {', '.join(repeated)}.")
    return names


def head_is_trained(metadata: Mapping[str, Any]) -> bool:
    """Whether the pipeline's classification head holds trained weights worth protecting."""
    flag = metadata.get("head_initialized")
    if flag is not None:
        return bool(flag)
    return not (metadata.get("source") == "scratch" or metadata.get("from_scratch"))


def warn_rare_labels(counts: Mapping[str, int], *, what: str = "label") -> list[str]:
    """Warn about each label seen in a single row of a large data set; returns those labels."""
    total = sum(counts.values())
    try:
        min_rows = int(os.environ.get("HUB_RARE_LABEL_MIN_ROWS", RARE_MIN_ROWS))
    except ValueError:
        raise ConfigError("HUB_RARE_LABEL_MIN_ROWS must be an integer (0 disables the rare-label warning), "
                          f"got {os.environ['HUB_RARE_LABEL_MIN_ROWS']!r}.") from None
    if min_rows <= 0 or total < min_rows:
        return []
    rare = sorted(label for label, count in counts.items() if count == 1)
    for label in rare:
        others = [o for o in counts if o != label and counts[o] > 1]
        close = difflib.get_close_matches(label, others, n=2, cutoff=0.6)
        like = ("; it resembles " + ", ".join(f"{c!r} ({counts[c]} rows)" for c in close)) if close else ""
        logger.warning("The training data has the %s %r in only 1 of %d rows%s. A typo? One example cannot "
                       "teach a class: fix or drop that row, or add examples.", what, label, total, like)
    return rare


def resolve_labels(train_labels: Iterable[str], eval_labels: Iterable[str] = (), *, current: Sequence[str],
                   labels: Sequence[Any] | None, reset_head: Any, head_trained: bool,
                   order: Any = sorted, what: str = "label") -> tuple[list[str], bool]:
    """The label set to train and whether the head must be rebuilt.

    Args:
        train_labels: every training row's label (normalised strings), counted for the warning.
        eval_labels: the evaluation rows' labels (must be among the result too).
        current: the model's labels (empty for a model without a head).
        labels: the caller's explicit label set, or None.
        reset_head: True to build a new head for the data's labels (or ``labels``).
        head_trained: whether the current head holds trained weights (:func:`head_is_trained`).
        order: how the data's labels are ordered when they become the label set.
        what: "label" or "tag", for messages.

    Returns:
        ``(labels, rebuild)``.

    Raises:
        DataError: the data has labels the trained head lacks and the call chose nothing.
        InvalidInputError: the data has labels outside an explicit ``labels=``.
    """
    if not isinstance(reset_head, bool):
        raise ConfigError(f"reset_head must be True or False, got {reset_head!r}.")
    counts = Counter(train_labels)
    found = set(counts) | set(eval_labels)
    warn_rare_labels(counts, what=what)
    current = list(current)
    if labels is not None:
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
            raise InvalidInputError(f"labels must be a list of label names, got {labels!r:.60}.")
        chosen = [label_name(label) for label in labels]
        if len(set(chosen)) != len(chosen):
            raise InvalidInputError(f"labels={chosen} has duplicates.")
        unknown = sorted(found - set(chosen))
        if unknown:
            plural = "tags" if what == "tag" else "labels"
            raise InvalidInputError(f"{plural} {unknown} in the data are not among labels={chosen}.")
        return chosen, reset_head or chosen != current
    data_labels = list(order(found))
    if reset_head:
        return data_labels, True
    if current and found <= set(current):
        return current, False
    if not head_trained or not current:
        return data_labels, data_labels != current
    new = sorted(found - set(current))
    hints = []
    for label in new:
        close = difflib.get_close_matches(label, current, n=1, cutoff=0.6)
        if close:
            hints.append(f"{label!r} ({counts.get(label, 0)} training rows) looks like {close[0]!r}")
    hint = (" " + "; ".join(hints) + ".") if hints else ""
    shown = current if len(current) <= 30 else current[:30] + ["..."]
    raise DataError(
        f"The data has {what}s the model does not know: {new[:20]}{' ...' if len(new) > 20 else ''} "
        f"(the model's {len(current)} {what}s: {shown}).{hint} Training on them would replace the "
        f"trained classification head. Fix the data, or choose explicitly: labels=[...] (the {what} set to "
        f"train, a new head when it differs from the model's) or reset_head=True (a new head for the "
        f"data's {len(data_labels)} {what}s).")
