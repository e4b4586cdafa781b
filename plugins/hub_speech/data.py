"""Labelled and unlabelled audio for ``fine_tune``, ``evaluate`` and ``pretrain``.

Sources:

* a manifest (jsonl/json/csv/tsv) of records ``{"path": audio file, "text": transcript}``
  or ``{"path": ..., "label": class}``; relative paths are taken from the manifest's folder;
* a folder: for classification ``folder/<label>/*.wav`` (one sub-folder per class), for
  recognition audio files each with a same-named ``.txt`` transcript beside it, for
  pretraining every audio file under it;
* a list of dicts (``path`` or ``audio``: anything the pipelines accept) or of
  ``(audio, text-or-label)`` tuples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def read_audio_records(source: Any, *, target: str | None, audio_field: str = "path") -> list[dict[str, Any]]:
    """Records ``{"audio": path-or-array, target: value}`` (``target`` "text", "label" or None)."""
    from hub.data import read_records

    if isinstance(source, (str, Path)) and Path(source).expanduser().is_dir():
        return _folder_records(Path(source).expanduser(), target)
    fields = (audio_field, target) if target else (audio_field,)
    if isinstance(source, (list, tuple)) and source and not isinstance(source[0], dict):
        if target is None:
            return [{"audio": item} for item in source]
        records = read_records(list(source), fields=("audio", target))
        return [{"audio": r["audio"], target: r[target]} for r in records]
    if isinstance(source, (list, tuple)) and source and "audio" in source[0] and audio_field == "path":
        audio_field = "audio"
        fields = (audio_field, target) if target else (audio_field,)
    records = read_records(source, fields=fields)
    base = Path(source).expanduser().resolve().parent if isinstance(source, (str, Path)) else Path.cwd()
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
        records.append({"audio": str(path), "text": transcript.read_text(encoding="utf-8").strip()})
    return records
