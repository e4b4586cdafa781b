"""Labelled and unlabelled audio for ``fine_tune``, ``evaluate`` and ``pretrain``.

Sources:

* a manifest (jsonl/json/csv/tsv) of records ``{"path": audio file, "text": transcript}``
  or ``{"path": ..., "label": class}``; relative paths are taken from the manifest's folder;
* a folder: for classification ``folder/<label>/*.wav`` (one sub-folder per class), for
  recognition audio files each with a same-named ``.txt`` transcript beside it, for
  pretraining every audio file under it;
* a list of dicts (``path`` or ``audio``: anything the pipelines accept) or of
  ``(audio, text-or-label)`` tuples;
* a Hugging Face ``datasets.Dataset`` with an ``Audio`` column (read undecoded, so no
  ``torchcodec`` is needed: Hub's own reader decodes and resamples the bytes; see
  :mod:`hub.data.hf_datasets`) and a ``label`` or ``text`` column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.data.readers import read_text
from hub.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def audio_problem(audio: Any, *, in_file: bool) -> str | None:
    """Why ``audio`` cannot be a training clip (checked before training, not at its batch), or None.

    In a manifest file it is a path (a non-empty string); in a Python list it may also be
    bytes, an array/tensor or a dict the pipelines accept (checked when loaded)."""
    if isinstance(audio, str):
        return None if audio.strip() else "is an empty string; give the audio file's path"
    if in_file:
        return f"is {audio!r:.40} ({type(audio).__name__}); in a manifest it must be the audio file's path (a string)"
    if audio is None or isinstance(audio, (bool, int, float, complex, set)):
        return f"is {audio!r:.40} ({type(audio).__name__}); pass a path, bytes, an array or a dict"
    return None


def read_audio_records(source: Any, *, target: str | None, audio_field: str = "path") -> list[dict[str, Any]]:
    """Records ``{"audio": path-or-array, target: value}`` (``target`` "text", "label" or None).

    Every record is checked before training starts: the audio is a path (or, in a list,
    another accepted value), a label a string or integer (:func:`hub.data.label_name`), a
    transcript a string; a bad one is named by file and line (or list index)."""
    from hub.data import read_records
    from hub.data.hf_datasets import maybe_records

    source = maybe_records(source)  # a datasets.Dataset: rows with the audio file's bytes (Audio, undecoded)
    if isinstance(source, (str, Path)) and Path(source).expanduser().is_dir():
        return _folder_records(Path(source).expanduser(), target)
    in_file = isinstance(source, (str, Path))
    if isinstance(source, (list, tuple)) and source and not isinstance(source[0], dict) and target is None:
        for index, item in enumerate(source):
            problem = audio_problem(item, in_file=False)
            if problem:
                raise DataError(f"the data list, record {index}: the audio {problem}.")
        return [{"audio": item} for item in source]
    if isinstance(source, (list, tuple)) and source and not isinstance(source[0], dict):
        audio_field = "audio"  # (audio, target) tuples
    elif isinstance(source, (list, tuple)) and source and "audio" in source[0] and audio_field == "path":
        audio_field = "audio"
    fields = (audio_field, target) if target else (audio_field,)

    def check(record: dict[str, Any]) -> str | None:
        problem = audio_problem(record[audio_field], in_file=in_file)
        if problem:
            return f"{audio_field!r} {problem}."
        if target == "text" and not isinstance(record["text"], str):
            return (f"'text' is {record['text']!r:.40} ({type(record['text']).__name__}); a transcript is a "
                    "string. Fix or drop that row.")
        return None

    records = read_records(list(source) if isinstance(source, tuple) else source, fields=fields, check=check,
                           label_fields=("label",) if target == "label" else ())
    base = Path(source).expanduser().resolve().parent if in_file else Path.cwd()
    out = []
    for record in records:
        audio = record[audio_field]
        if isinstance(audio, str):
            path = Path(audio).expanduser()
            audio = str(path if path.is_absolute() else base / path)
        out.append({"audio": audio, **({target: record[target]} if target else {})})
    return out


def _folder_records(folder: Path, target: str | None) -> list[dict[str, Any]]:
    files = _audio_files(folder)
    if not files:
        raise DataError(f"{str(folder)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
    if target is None:
        return [{"audio": str(p)} for p in files]
    if target == "label":
        records = [{"audio": str(p), "label": p.parent.name} for p in files if p.parent != folder]
        if not records:
            raise DataError(f"{str(folder)!r}: for classification put each class's audio in a sub-folder "
                            "named after the class (folder/<label>/*.wav).")
        return records
    records = []
    for path in files:
        transcript = path.with_suffix(".txt")
        if not transcript.is_file():
            raise DataError(f"{str(path)!r} has no transcript {transcript.name!r} beside it; a recognition "
                            "folder holds audio files each with a same-named .txt file.")
        records.append({"audio": str(path), "text": read_text(transcript).strip()})
    return records
