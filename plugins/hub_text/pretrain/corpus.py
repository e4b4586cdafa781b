"""Reading corpora into lists of documents (:func:`read_texts`; the rules are in
:mod:`hub_text.pretrain`) and the seeded hold-out split by document."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.errors import ConfigError, DataError

TEXT_SUFFIXES = (".txt", ".jsonl", ".json")
DOCUMENT_RULES = ("blank_line", "line")


# -- reading corpora -------------------------------------------------------------------
def read_texts(source: Any, *, text_field: str = "text", documents: str = "blank_line") -> list[str]:
    """The documents of a corpus (see the module docstring for the accepted sources)."""
    if documents not in DOCUMENT_RULES:
        raise ConfigError(f"documents must be one of {DOCUMENT_RULES}, got {documents!r}.")
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
        where = "the data list"
    else:
        raise DataError(f"Cannot read text from a {type(source).__name__}; pass a path to a "
                        f"{'/'.join(TEXT_SUFFIXES)} file, a folder of them, or a list of strings.")
    if not texts:
        raise DataError(f"{where} holds no text.")
    return texts


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 ({exc.reason} at byte {exc.start}).") from None


def _read_file(path: Path, text_field: str, documents: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = _decode(path).splitlines()
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
        for number, line in enumerate(_decode(path).splitlines(), start=1):
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
            data = json.loads(_decode(path))
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
