"""Read training/evaluation records from jsonl/json/csv/tsv files, Python objects or
Hugging Face ``datasets`` objects (through :mod:`hub.data.hf_datasets`).

Every record becomes a plain dict. A bad row raises :class:`~hub.errors.DataError`
naming the file and line (or, for a Python list, the item's index), so a typo in row
3,412 is found in seconds instead of being trained on:

* files are UTF-8; a byte-order mark (Excel's "CSV UTF-8") is skipped, and bytes that are
  not UTF-8 are reported with their line (:func:`read_text`);
* ``fields`` must be present and not null in every record;
* ``text_fields`` must hold a non-empty string (not a number, a dict or ``""``);
* ``label_fields`` must hold a class label, a string or an integer; they come back as the
  label's string (``1`` and ``1.0`` are ``"1"``; see :mod:`hub.data.labels`);
* ``check(record)`` may return a further problem with the record (or None).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.data.hf_datasets import DatasetRecords, maybe_records
from hub.data.labels import label_name, label_problem
from hub.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")

#: ``check`` callables return a problem description (or None); the reader adds the location
RecordCheck = Callable[[dict[str, Any]], "str | None"]


def read_text(path: str | Path) -> str:
    """A data file's text: UTF-8, with a leading byte-order mark dropped.

    Raises:
        DataError: the file is not UTF-8; the message names the file, the line and the byte,
            and how to convert the file (a raw ``UnicodeDecodeError`` names only an offset).
    """
    path = Path(path)
    raw = path.read_bytes()
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + skip  # an offset into the file, BOM included
        line = raw.count(b"\n", 0, at) + 1
        column = at - (raw.rfind(b"\n", 0, at) + 1) + 1  # in bytes, 1-based
        raise DataError(f"{path}, line {line}, column {column}: byte 0x{raw[at]:02x} is not UTF-8 text. "
                        "Save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 IN > OUT).") from None


def text_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a training text, or None when it can."""
    if isinstance(value, str):
        return None if value.strip() else "is an empty string" if not value else "is only whitespace"
    if isinstance(value, float) and math.isnan(value):
        return "is NaN (a missing value)"
    return f"is a {type(value).__name__} ({value!r:.40}), not a string"


def read_records(source: Any, *, fields: Sequence[str] | None = None, text_fields: Sequence[str] = (),
                 label_fields: Sequence[str] = (), check: RecordCheck | None = None) -> list[dict[str, Any]]:
    """Records from a file path or an iterable of dicts / tuples.

    Tuples and lists are matched positionally to ``fields`` (e.g. ``("text", "label")``).
    When ``fields`` is given, every record must have them. ``text_fields``,
    ``label_fields`` and ``check`` validate every record (see the module docstring).
    """
    return [record for _, record in read_located_records(source, fields=fields, text_fields=text_fields,
                                                          label_fields=label_fields, check=check)]


def read_located_records(source: Any, *, fields: Sequence[str] | None = None, text_fields: Sequence[str] = (),
                         label_fields: Sequence[str] = (), check: RecordCheck | None = None
                         ) -> list[tuple[str, dict[str, Any]]]:
    """As :func:`read_records`, each record with its location (``"FILE, line 5"``,
    ``"the data list, record 3"``) for messages about it later."""
    source = maybe_records(source)  # a datasets.Dataset / IterableDataset: its rows as dicts
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"Data file {str(path)!r} does not exist.")
        records = list(_read_file(path))
        where = str(path)
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        records = []
        where = getattr(source, "where", "the data list")
        row = "row" if isinstance(source, DatasetRecords) else "record"
        for index, item in enumerate(source):
            if isinstance(item, Mapping):
                records.append((f"{where}, {row} {index}", dict(item)))
            elif isinstance(item, (tuple, list)) and fields and len(item) == len(fields):
                records.append((f"{where}, {row} {index}", dict(zip(fields, item))))
            else:
                want = f"a dict or a {len(fields)}-tuple {tuple(fields)}" if fields else "a dict"
                raise DataError(f"Data item {index} is {item!r:.80}; expected {want}.")
    else:
        raise DataError(f"Cannot read data from a {type(source).__name__}; pass a path to a "
                        f"{'/'.join(SUFFIXES)} file, a list of dicts or a datasets.Dataset.")
    if not records:
        raise DataError(f"{where} holds no records.")
    for location, record in records:
        if fields:
            missing = [f for f in fields if f not in record or record[f] is None]
            if missing:
                hint = (" Name the dataset's column with the task's field keyword (text_field=, label_field=, "
                        "tokens_field=, tags_field=) or a recipe's columns: {field: column}."
                        if isinstance(source, DatasetRecords) else "")
                raise DataError(f"{location}: missing field(s) {missing}; the record has {sorted(record)}.{hint}")
        for name in text_fields:
            problem = text_problem(record.get(name))
            if problem:
                raise DataError(f"{location}: {name!r} {problem}; every {name!r} must be a non-empty string. "
                                "Fix or drop that row.")
        for name in label_fields:
            problem = label_problem(record.get(name))
            if problem:
                raise DataError(f"{location}: {name!r} {problem}. Fix or drop that row.")
            record[name] = label_name(record[name])
        if check is not None:
            problem = check(record)
            if problem:
                raise DataError(f"{location}: {problem}")
    return records


def _read_file(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}.")
    text = read_text(path)
    if suffix == ".jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}, line {number}: expected a JSON object, got "
                                f"{type(record).__name__}.")
            yield f"{path}, line {number}", record
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects.")
        for number, record in enumerate(data):
            if not isinstance(record, dict):
                raise DataError(f"{path}, item {number}: expected a JSON object.")
            yield f"{path}, item {number}", record
    else:
        yield from _read_delimited(text, path, suffix)


#: the longest CSV/TSV field read (csv's own default, 128 KiB, refuses one long document)
MAX_FIELD_CHARS = 1 << 30


def _read_delimited(text: str, path: Path, suffix: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
    rows = []
    previous = csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    try:
        for record in reader:
            if None in record or any(v is None for v in record.values()):
                raise DataError(f"{path}, line {reader.line_num}: expected "
                                f"{len(reader.fieldnames or [])} columns "
                                f"({', '.join(reader.fieldnames or [])}).")
            rows.append((f"{path}, line {reader.line_num}", record))
    except csv.Error as exc:  # e.g. a NUL byte
        raise DataError(f"{path}, line {reader.line_num}: not a readable {suffix[1:].upper()} row ({exc}).") \
            from None
    finally:
        csv.field_size_limit(previous)
    return rows
