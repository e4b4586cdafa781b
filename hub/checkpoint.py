"""A read-only view of a foreign checkpoint folder, for converter selection and converters.

A checkpoint written by another library is more than ``config.json`` and its weights: a
wav2vec2 recogniser's vocabulary is ``vocab.json`` and its normalisation is in
``preprocessor_config.json``; a tokenizer has its own files. :class:`Checkpoint` gives the
``hub_select_converter`` hook and the converters what they need to see those files without
being handed the folder to write into: the parsed config, the names of the folder's files,
and readers for side files that refuse names outside that list (so ``../x`` or a path
elsewhere cannot be read through it).

Torch-free: selecting a converter must not import torch (the weights are read by
:mod:`hub.modeling` and passed to the converter separately).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import ModelLoadError

#: at most this many bytes are read from one side file (a vocabulary of 100k tokens is ~2 MB)
MAX_SIDE_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder as converters see it.

    Attributes:
        folder: the folder (for messages; read files through :meth:`read_text` / :meth:`read_json`).
        config: the parsed ``config.json`` (do not modify it).
        files: the names of the regular files directly in the folder, sorted
            (``("config.json", "model.safetensors", "vocab.json")``).
    """

    folder: Path
    config: dict[str, Any]
    files: tuple[str, ...]

    @classmethod
    def from_folder(cls, folder: str | Path, config: dict[str, Any]) -> Checkpoint:
        folder = Path(folder)
        try:
            names = sorted(p.name for p in folder.iterdir() if p.is_file())
        except OSError as exc:
            raise ModelLoadError(f"Cannot list the checkpoint folder {str(folder)!r}: {exc}.") from None
        return cls(folder, config, tuple(names))

    def has(self, name: str) -> bool:
        """Whether the folder holds a file called ``name``."""
        return name in self.files

    def read_text(self, name: str) -> str | None:
        """The UTF-8 text of side file ``name``, or ``None`` when the folder has no such file."""
        if not self.has(name):
            return None
        path = self.folder / name
        try:
            if path.stat().st_size > MAX_SIDE_FILE_BYTES:
                raise ModelLoadError(f"{str(path)!r} is larger than {MAX_SIDE_FILE_BYTES:,} bytes; it is not "
                                     "a side file of a model checkpoint.")
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ModelLoadError(f"{str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
        except OSError as exc:
            raise ModelLoadError(f"Cannot read {str(path)!r}: {exc}.") from None

    def read_json(self, name: str) -> Any:
        """Side file ``name`` parsed as JSON, or ``None`` when the folder has no such file."""
        text = self.read_text(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{str(self.folder / name)!r} is not valid JSON (line {exc.lineno}, column "
                                 f"{exc.colno}: {exc.msg}).") from None
