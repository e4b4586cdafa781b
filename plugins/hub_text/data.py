"""The text plugin's training data: corpora for pretraining and word-tagged records for tagging.

* :func:`read_texts` reads a corpus into a list of documents (the rules are in
  :mod:`hub_text.pretrain`); :func:`split_documents` is the seeded hold-out split by document.
* :func:`read_tagged` reads word-level tagged records (``token-classify``'s ``fine_tune`` and
  ``evaluate``), checked row by row so a bad record is named by file and line.

Labelled texts (``text-classify``) need no reader of their own: :func:`hub.data.read_records`.
Hugging Face ``datasets`` objects are read as lists of dicts (:mod:`hub.data.hf_datasets`).
Every file is decoded by :func:`hub.data.read_text` (UTF-8, byte-order mark dropped, errors
naming file, line and column).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.data import read_records, read_text
from hub.data.hf_datasets import maybe_records
from hub.data.labels import label_name, label_problem
from hub.errors import ConfigError, DataError

TEXT_SUFFIXES = (".txt", ".jsonl", ".json")
DOCUMENT_RULES = ("blank_line", "line")


# -- corpora -------------------------------------------------------------------
def read_texts(source: Any, *, text_field: str = "text", documents: str = "blank_line") -> list[str]:
    """The documents of a corpus (see the module docstring for the accepted sources)."""
    if documents not in DOCUMENT_RULES:
        raise ConfigError(f"documents must be one of {DOCUMENT_RULES}, got {documents!r}.")
    source = maybe_records(source)  # a datasets.Dataset / IterableDataset: its rows as dicts
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise DataError(f"Folder {str(path)!r} holds no {'/'.join(TEXT_SUFFIXES)} files.")
            texts = [t for f in files for t in _read_file(f, text_field, documents)]
            where = f"folder {str(path)!r}"
        elif path.is_file():
            texts = _read_file(path, text_field, documents)
            where = str(path)
        else:
            raise DataError(f"Text source {str(path)!r} does not exist. Pass a .txt/.jsonl/.json file, a "
                            "folder of them, or a list of strings (in-memory text).")
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        texts = []
        for index, item in enumerate(source):
            if isinstance(item, Mapping):
                item = item.get(text_field)
                if not isinstance(item, str):
                    raise DataError(f"Data item {index}: expected a string in field {text_field!r}, "
                                    f"got {type(item).__name__}.")
            elif not isinstance(item, str):
                raise DataError(f"Data item {index} is a {type(item).__name__} ({item!r:.60}); "
                                f"expected a string (one document) or a dict with {text_field!r}.")
            if item.strip():
                texts.append(item)
        where = getattr(source, "where", "the data list")
    else:
        raise DataError(f"Cannot read text from a {type(source).__name__}; pass a path to a "
                        f"{'/'.join(TEXT_SUFFIXES)} file, a folder of them, or a list of strings.")
    if not texts:
        raise DataError(f"{where} holds no text.")
    return texts


def _read_file(path: Path, text_field: str, documents: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = read_text(path).splitlines()
        if documents == "line":
            return [line for line in lines if line.strip()]
        blocks, current = [], []
        for line in [*lines, ""]:
            if line.strip():
                current.append(line)
            elif current:
                blocks.append("\n".join(current))
                current = []
        return blocks
    if suffix == ".jsonl":
        texts = []
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
            texts.extend(_text_of(record, text_field, f"{path}, line {number}"))
        return texts
    if suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of strings or objects with {text_field!r}.")
        return [t for i, item in enumerate(data) for t in _text_of(item, text_field, f"{path}, item {i}")]
    raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(TEXT_SUFFIXES)}.")


def _text_of(record: Any, text_field: str, where: str) -> list[str]:
    if isinstance(record, str):
        text = record
    elif isinstance(record, dict):
        if text_field not in record:
            raise DataError(f"{where}: no {text_field!r} field; the record has {sorted(record)}.")
        text = record[text_field]
        if not isinstance(text, str):
            raise DataError(f"{where}: field {text_field!r} must be a string, got {type(text).__name__}.")
    else:
        raise DataError(f"{where}: expected a JSON object with {text_field!r}, got {type(record).__name__}.")
    return [text] if text.strip() else []


def split_documents(texts: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded hold-out split by document: ``(train, validation)``, original order kept."""
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    if not val_fraction:
        return list(texts), []
    if len(texts) < 2:
        raise DataError(f"Cannot hold out a validation split from {len(texts)} document; pass more "
                        "documents, eval=..., or val_fraction=0.")
    count = min(len(texts) - 1, max(1, round(len(texts) * val_fraction)))
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return ([t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held])


# -- word-tagged records ------------------------------------------------------------
def read_tagged(data: Any, tokens_field: str = "tokens", tags_field: str = "tags") -> list[tuple[list[str], list[str]]]:
    """Word-level records as ``(words, tags)`` pairs, checked row by row.

    Args:
        data: a jsonl/json/csv path or a list of dicts, as :func:`hub.data.read_records` reads.
        tokens_field: the field holding each record's words (a list of non-empty strings).
        tags_field: the field holding one tag per word.

    Returns:
        One ``(words, tags)`` pair per record, tags normalised by :func:`hub.data.labels.label_name`.

    Raises:
        DataError: a record is not a list of words with one valid tag each; the message names
            the file and line (or list index) and the fix.
    """
    def check(record: dict[str, Any]) -> str | None:
        words, tags = record[tokens_field], record[tags_field]
        if not isinstance(words, (list, tuple)) or not isinstance(tags, (list, tuple)):
            return (f"{tokens_field!r} must be a list of words (strings) and {tags_field!r} a list of tags, "
                    f"got {words!r:.60} and {tags!r:.60}.")
        for position, word in enumerate(words):
            if not isinstance(word, str) or not word.strip():
                return (f"{tokens_field!r}[{position}] is {word!r:.40}; every word must be a non-empty "
                        "string. Fix or drop that row.")
        if len(words) != len(tags):
            return f"{len(words)} words but {len(tags)} tags; give one tag per word."
        if not words:
            return "no words."
        for position, tag in enumerate(tags):
            problem = label_problem(tag)
            if problem:
                return f"{tags_field!r}[{position}] {problem}. Fix or drop that row."
        record[tags_field] = [label_name(tag) for tag in tags]
        return None

    records = read_records(data, fields=(tokens_field, tags_field), check=check)
    return [(list(r[tokens_field]), list(r[tags_field])) for r in records]
