"""Hostile training files and rows (issue 12, items 14 and 17): every reader checks every row's
types and names the file and line (or the list index); a UTF-8 BOM is fine, other encodings are
a DataError with the line, never a raw UnicodeDecodeError."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hub.data import read_records, read_text
from hub.errors import DataError

FIELDS = {"fields": ("text", "label"), "text_fields": ("text",), "label_fields": ("label",)}
GOOD = {"text": "fine", "label": "a"}


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- item 17: byte-order marks and other encodings ------------------------------------------
@pytest.mark.parametrize("name, content", [
    ("d.csv", "text,label\nfine,a\n"), ("d.tsv", "text\tlabel\nfine\ta\n"),
    ("d.jsonl", '{"text": "fine", "label": "a"}\n'), ("d.json", '[{"text": "fine", "label": "a"}]'),
])
def test_a_utf8_bom_is_skipped(tmp_path, name, content):
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + content.encode())
    assert read_records(tmp_path / name, **FIELDS) == [GOOD]


@pytest.mark.parametrize("name, content, line", [
    ("d.csv", b"text,label\nfine,a\ncaf\xe9,b\n", 3),
    ("d.tsv", b"text\tlabel\nfine\ta\n\x93quoted\x94\tb\n", 3),
    ("d.jsonl", b'{"text": "fine", "label": "a"}\n{"text": "fine", "label": "a"}\n{"text": "Z\xfcrich", "label": "a"}\n', 3),
    ("d.json", b'[{"text": "fine",\n "label": "\xff"}]', 2),
    ("d.csv", b"\xff\xfet\x00e\x00x\x00t\x00", 1),  # UTF-16
])
def test_non_utf8_bytes_name_file_and_line(tmp_path, name, content, line):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"{name}, line {line}, column \d+: byte 0x[0-9a-f]{{2}} is not UTF-8 text. "
                                        r"Save the file as UTF-8"):
        read_records(tmp_path / name, **FIELDS)


def test_read_text_is_the_shared_decoder(tmp_path):
    (tmp_path / "x.txt").write_bytes(b"\xef\xbb\xbfok\nnext \xe9\n")
    with pytest.raises(DataError, match=r"x.txt, line 2, column 6"):
        read_text(tmp_path / "x.txt")


# -- item 14: every row's types ----------------------------------------------------------------
BAD_TEXTS = [(5, "is a int"), ({"a": 1}, "is a dict"), ("", "is an empty string"), ("   ", "is only whitespace"),
             (["a"], "is a list"), (math.nan, "is NaN")]
BAD_LABELS = [(["a", "b"], "is a list"), (math.nan, "NaN"), (True, "boolean"), ("", "empty string"),
              (0.5, "the number 0.5"), ({"x": 1}, "is a dict")]


@pytest.mark.parametrize("bad, message", BAD_TEXTS)
def test_a_bad_text_at_line_5000_is_named(tmp_path, bad, message):
    rows = [GOOD] * 4999 + [{"text": bad, "label": "a"}] + [GOOD] * 3
    path = jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=rf"train.jsonl, line 5000: 'text' {message}.*non-empty string"):
        read_records(path, **FIELDS)
    with pytest.raises(DataError, match=rf"the data list, record 4999: 'text' {message}"):
        read_records(rows, **FIELDS)


@pytest.mark.parametrize("bad, message", BAD_LABELS)
def test_a_bad_label_is_named(tmp_path, bad, message):
    rows = [GOOD, GOOD, {"text": "x", "label": bad}]
    with pytest.raises(DataError, match=rf"train.jsonl, line 3: 'label' .*{message}"):
        read_records(jsonl(tmp_path / "train.jsonl", rows), **FIELDS)
    (tmp_path / "train.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=rf"train.json, item 2: 'label' .*{message}"):
        read_records(tmp_path / "train.json", **FIELDS)


def test_a_null_label_is_a_missing_field(tmp_path):
    with pytest.raises(DataError, match=r"line 2: missing field\(s\) \['label'\]"):
        read_records(jsonl(tmp_path / "t.jsonl", [GOOD, {"text": "x", "label": None}]), **FIELDS)


def test_csv_and_tsv_rows_are_checked_with_their_line(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\nfine,a\n,b\n")
    with pytest.raises(DataError, match=r"t.csv, line 3: 'text' is an empty string"):
        read_records(tmp_path / "t.csv", **FIELDS)
    (tmp_path / "t.tsv").write_text("text\tlabel\nfine\ta\nfine\t \n")
    with pytest.raises(DataError, match=r"t.tsv, line 3: 'label' is an empty string"):
        read_records(tmp_path / "t.tsv", **FIELDS)


def test_integer_labels_are_one_spelling(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 1.0}, {"text": "c", "label": "1"},
            {"text": "d", "label": np.int64(0)}]
    assert [r["label"] for r in read_records(rows, **FIELDS)] == ["1", "1", "1", "0"]


def test_a_long_csv_field_is_read(tmp_path):
    long = "word " * 60_000  # 300 KB: past csv's default 128 KiB field limit
    (tmp_path / "long.csv").write_text(f"text,label\n{long},a\n")
    assert read_records(tmp_path / "long.csv", **FIELDS)[0]["text"] == long


def test_text_classify_fine_tune_and_evaluate_check_rows(tmp_path):
    import hub
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path / "m", num_labels=2, max_positions=16)
    pipe = hub.load("text-classify", model=str(tmp_path / "m"), device="cpu")
    rows = [{"text": "good", "label": "class_0"}] * 4 + [{"text": 42, "label": "class_1"}]
    path = jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"train.jsonl, line 5: 'text' is a int"):
        pipe.fine_tune(str(path), max_steps=1, progress=False)
    with pytest.raises(DataError, match=r"train.jsonl, line 5: 'text' is a int"):
        pipe.evaluate(str(path))
    with pytest.raises(DataError, match=r"record 1: 'label' is a list"):
        pipe.fine_tune([("good", "class_0"), ("bad", ["class_1"])], max_steps=1, progress=False)


# -- token-classify ----------------------------------------------------------------------------
@pytest.mark.parametrize("record, message", [
    ({"tokens": ["a", ""], "tags": ["O", "O"]}, r"'tokens'\[1\] is ''"),
    ({"tokens": ["a", 5], "tags": ["O", "O"]}, r"'tokens'\[1\] is 5"),
    ({"tokens": ["a", "b"], "tags": ["O", None]}, r"'tags'\[1\] is missing"),
    ({"tokens": ["a", "b"], "tags": ["O", ["B-PER"]]}, r"'tags'\[1\] is a list"),
    ({"tokens": ["a", "b"], "tags": ["O", math.nan]}, r"'tags'\[1\] is NaN"),
    ({"tokens": ["a"], "tags": "O"}, "'tokens' must be a list of words"),
])
def test_token_classify_rows_name_file_line_and_position(tmp_path, record, message):
    from hub_text.data import read_tagged  # token-classify's reader (fine_tune / evaluate)

    path = jsonl(tmp_path / "ner.jsonl", [{"tokens": ["a"], "tags": ["O"]}, record])
    with pytest.raises(DataError, match=rf"ner.jsonl, line 2: {message}"):
        read_tagged(str(path), "tokens", "tags")
    assert read_tagged([{"tokens": ["a", "b"], "tags": ["O", 1]}], "tokens", "tags") == [(["a", "b"], ["O", "1"])]


# -- image-classify ----------------------------------------------------------------------------
def _png(path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("item, message", [
    ((None, "a"), r"item 1 of the training data: the image is None"),
    ((5, "a"), r"item 1 of the training data: the image is 5"),
    (("", "a"), r"item 1 of the training data: the image path is an empty string"),
    (("missing.png", "a"), r"item 1 of the training data: the image 'missing.png' is missing"),
    (("IMG", ["a"]), r"item 1 of the training data: the label \['a'\] is a list"),
    (("IMG", math.nan), r"item 1 of the training data: the label nan is NaN"),
    (("IMG", None), r"item 1 of the training data: the label None is missing"),
    ({"image": "IMG", "label": True}, r"item 1 of the training data: the label True is the boolean"),
])
def test_image_lists_are_checked_before_training(tmp_path, item, message):
    from hub_vision.data import read_labelled

    image = str(_png(tmp_path / "ok.png"))
    fix = lambda v: image if v == "IMG" else v
    item = {k: fix(v) for k, v in item.items()} if isinstance(item, dict) else tuple(fix(v) for v in item)
    with pytest.raises(DataError, match=message):
        read_labelled([(image, "a"), item])


def test_image_csv_bom_tsv_and_encoding(tmp_path):
    from hub_vision.data import read_labelled

    _png(tmp_path / "a.png")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfpath,label\na.png,cat\n")
    assert [label for _, label in read_labelled(str(tmp_path / "bom.csv"))] == ["cat"]
    (tmp_path / "t.tsv").write_text("path\tlabel\na.png\tcat, tabby\n")  # a comma inside a TSV field
    assert [label for _, label in read_labelled(str(tmp_path / "t.tsv"))] == ["cat, tabby"]
    (tmp_path / "latin.csv").write_bytes(b"path,label\na.png,ch\xe2t\n")
    with pytest.raises(DataError, match=r"latin.csv, line 2, column 9: byte 0xe2 is not UTF-8"):
        read_labelled(str(tmp_path / "latin.csv"))


def test_unlabelled_image_lists_are_checked(tmp_path):
    from hub_vision.data import read_unlabelled

    with pytest.raises(DataError, match=r"item 2 of the pretraining data: the image is None"):
        read_unlabelled([str(_png(tmp_path / "a.png")), np.zeros((4, 4, 3), dtype=np.uint8), None])


# -- audio manifests ---------------------------------------------------------------------------
@pytest.mark.parametrize("target, record, message", [
    ("label", {"path": 7, "label": "a"}, r"'path' is 7 \(int\); in a manifest it must be the audio file's path"),
    ("label", {"path": "", "label": "a"}, r"'path' is an empty string"),
    ("label", {"path": {"a": 1}, "label": "a"}, r"'path' is \{'a': 1\} \(dict\)"),
    ("label", {"path": "x.wav", "label": ["a"]}, r"'label' is a list"),
    ("label", {"path": "x.wav", "label": math.nan}, r"'label' is NaN"),
    ("text", {"path": "x.wav", "text": 12}, r"'text' is 12 \(int\); a transcript is a string"),
    ("text", {"path": "x.wav", "text": {"t": "a"}}, r"'text' is .* \(dict\)"),
])
def test_audio_manifest_rows_are_checked(tmp_path, target, record, message):
    from hub_speech.data import read_audio_records

    good = {"path": "x.wav", target: "a"}
    path = jsonl(tmp_path / "manifest.jsonl", [good, good, record])
    with pytest.raises(DataError, match=rf"manifest.jsonl, line 3: {message}"):
        read_audio_records(str(path), target=target)


def test_audio_lists_bom_manifests_and_transcripts(tmp_path):
    from hub_speech.data import read_audio_records

    with pytest.raises(DataError, match=r"the data list, record 1: missing field\(s\) \['audio'\]"):
        read_audio_records([("a.wav", "x"), (None, "y")], target="label")
    with pytest.raises(DataError, match=r"the data list, record 0: the audio is True"):
        read_audio_records([True], target=None)
    assert read_audio_records([("a.wav", 3)], target="label")[0]["label"] == "3"
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbfpath,label\nclip.wav,yes\n")
    assert read_audio_records(str(tmp_path / "m.csv"), target="label")[0]["label"] == "yes"
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "one.wav").write_bytes(b"RIFF")
    (tmp_path / "clips" / "one.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match=r"one.txt, line 1, column 4: byte 0xe9 is not UTF-8"):
        read_audio_records(str(tmp_path / "clips"), target="text")


def test_pretraining_text_with_a_bom(tmp_path):
    from hub_text.pretrain import read_texts

    (tmp_path / "c.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "first"}\n{"text": "second"}\n')
    assert read_texts(str(tmp_path / "c.jsonl")) == ["first", "second"]
    (tmp_path / "c.txt").write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_texts(str(tmp_path / "c.txt")) == ["hello"]
