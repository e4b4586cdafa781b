"""Data readers: every format, and errors that name the file and line."""

from __future__ import annotations

import pytest

from hub.data import read_records
from hub.errors import DataError

FIELDS = ("text", "label")


def test_formats_read_the_same_records(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x"}\n\n{"text": "b, c", "label": "y"}\n')
    (tmp_path / "d.json").write_text('[{"text": "a", "label": "x"}, {"text": "b, c", "label": "y"}]')
    (tmp_path / "d.csv").write_text('text,label\na,x\n"b, c",y\n')
    (tmp_path / "d.tsv").write_text("text\tlabel\na\tx\nb, c\ty\n")
    expected = [{"text": "a", "label": "x"}, {"text": "b, c", "label": "y"}]
    for name in ("d.jsonl", "d.json", "d.csv", "d.tsv"):
        assert read_records(tmp_path / name, fields=FIELDS) == expected
    assert read_records([("a", "x"), ("b, c", "y")], fields=FIELDS) == expected


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": oops}\n', r"bad.jsonl, line 2: not valid JSON"),
    ("bad.jsonl", '{"text": "a", "label": "x"}\n["a", "x"]\n', r"line 2: expected a JSON object"),
    ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', r"line 2: missing field\(s\) \['label'\]"),
    ("bad.csv", "text,label\na,x\nb,y,z\n", r"bad.csv, line 3: expected 2 columns"),
    ("empty.jsonl", "\n", r"holds no records"),
    ("data.parquet", "x", r"unsupported file type '.parquet'"),
])
def test_bad_files_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_records(tmp_path / name, fields=FIELDS)


def test_bad_python_data():
    with pytest.raises(DataError, match="does not exist"):
        read_records("no/such/file.jsonl")
    with pytest.raises(DataError, match=r"Data item 1 is 'oops'; expected a dict or a 2-tuple"):
        read_records([("a", "x"), "oops"], fields=FIELDS)
    with pytest.raises(DataError, match="Cannot read data from a int"):
        read_records(3)
