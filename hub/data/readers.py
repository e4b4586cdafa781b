"""Read training/evaluation records from jsonl/json/csv/tsv files or Python objects.

Every record becomes a plain dict. A bad row raises :class:`~hub.errors.DataError`
naming the file and line, so a typo in row 3,412 is found in seconds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hub.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")


def read_records(source: Any, *, fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Records from a file path or an iterable of dicts / tuples.

    Tuples and lists are matched positionally to ``fields`` (e.g. ``("text", "label")``).
    When ``fields`` is given, every record must have them.
    """
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"Data file {str(path)!r} does not exist.")
        records = list(_read_file(path))
        where = str(path)
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        records = []
        for index, item in enumerate(source):
            if isinstance(item, Mapping):
                records.append((index, dict(item)))
            elif isinstance(item, (tuple, list)) and fields and len(item) == len(fields):
                records.append((index, dict(zip(fields, item))))
            else:
                want = f"a dict or a {len(fields)}-tuple {tuple(fields)}" if fields else "a dict"
                raise DataError(f"Data item {index} is {item!r:.80}; expected {want}.")
        where = "the data list"
    else:
        raise DataError(f"Cannot read data from a {type(source).__name__}; pass a path to a "
                        f"{'/'.join(SUFFIXES)} file or a list of dicts.")
    if not records:
        raise DataError(f"{where} holds no records.")
    if fields:
        for line, record in records:
            missing = [f for f in fields if f not in record or record[f] is None]
            if missing:
                unit = "line" if where != "the data list" else "item"
                raise DataError(f"{where}, {unit} {line}: missing field(s) {missing}; "
                                f"the record has {sorted(record)}.")
    return [record for _, record in records]


def _read_file(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}, line {number}: expected a JSON object, got "
                                    f"{type(record).__name__}.")
                yield number, record
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects.")
        for number, record in enumerate(data):
            if not isinstance(record, dict):
                raise DataError(f"{path}, item {number}: expected a JSON object.")
            yield number, record
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            for record in reader:
                if None in record or any(v is None for v in record.values()):
                    raise DataError(f"{path}, line {reader.line_num}: expected "
                                    f"{len(reader.fieldnames or [])} columns "
                                    f"({', '.join(reader.fieldnames or [])}).")
                yield reader.line_num, record
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}.")
