"""Labelled and unlabelled image collections for fine-tuning and pretraining.

* an **ImageFolder** layout: ``root/<class>/<...>/image.png``, one folder per class (the
  folder name is the label; files are found recursively, sorted);
* a **CSV** of ``path,label`` (a header row naming ``path``/``image``/``file`` and ``label``
  columns, or no header and those two columns first); relative paths are relative to the
  CSV file's folder;
* a list of ``(image, label)`` tuples or ``{"image": ..., "label": ...}`` dicts, where an
  image is anything the pipelines accept (path, bytes, PIL image, array, tensor);
* a Hugging Face ``datasets.Dataset`` with an ``Image`` column and a ``ClassLabel`` (or
  string) label (:mod:`hub.data.hf_datasets`: images come as their encoded bytes).

Unlabelled data (masked-image-model pretraining) is a folder of images (searched
recursively) or a list of images.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hub.data.hf_datasets import DatasetRecords, maybe_records
from hub.data.labels import label_name, label_problem
from hub.data.readers import read_text
from hub.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
PATH_COLUMNS = ("path", "image", "file", "filename", "filepath")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(root: Path) -> list[tuple[Path, str]]:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    rows = [(path, d.name) for d in classes for path in _images_under(d)]
    if not rows:
        raise DataError(f"{str(root)!r} holds no class folders with images ({', '.join(IMAGE_SUFFIXES)}); "
                        "an ImageFolder is root/<class>/<image>, one folder per class.")
    return rows


def read_csv(path: Path) -> list[tuple[Path, str]]:
    """``(image path, label)`` rows of a CSV (a TSV when the name ends in ``.tsv``); UTF-8,
    a byte-order mark skipped, bytes that are not UTF-8 reported with their line."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        lines = list(csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from None
    if not lines:
        raise DataError(f"{str(path)!r} is empty; expected rows of path,label.")
    header = [c.strip().lower() for c in lines[0]]
    path_col = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
    if path_col is not None and "label" in header:
        label_col, start = header.index("label"), 1
    else:
        path_col, label_col, start = 0, 1, 0
    rows = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line or not any(c.strip() for c in line):
            continue
        if len(line) <= max(path_col, label_col) or not line[path_col].strip() or not line[label_col].strip():
            raise DataError(f"{path}:{number}: expected an image path and a label, got {line!r}.")
        image = Path(line[path_col].strip()).expanduser()
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            raise DataError(f"{path}:{number}: image {str(image)!r} does not exist.")
        rows.append((image, line[label_col].strip()))
    if not rows:
        raise DataError(f"{str(path)!r} has no rows; expected path,label lines.")
    return rows


def read_labelled(data: Any) -> list[tuple[Any, str]]:
    """``(image, label)`` pairs from a folder, a CSV file, a list or a ``datasets.Dataset`` (see the module doc)."""
    data = maybe_records(data)
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if path.is_dir():
            return read_image_folder(path)
        if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
            return read_csv(path)
        raise DataError(f"{str(path)!r} is neither an ImageFolder (root/<class>/<image>) nor a CSV of "
                        "path,label" + ("" if path.exists() else " (it does not exist)") + ".")
    if isinstance(data, (list, tuple)) and data:
        pairs = []
        for index, item in enumerate(data):  # the shape of every item first, then their contents
            if isinstance(item, dict) and "image" in item and "label" in item:
                pairs.append((item["image"], item["label"]))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append(tuple(item))
            else:
                raise DataError(f"item {index} of the training data is a {type(item).__name__}; expected "
                                "(image, label) or {'image': ..., 'label': ...}.")
        rows = []
        for index, (image, label) in enumerate(pairs):
            problem = image_problem(image)
            if problem:
                raise DataError(f"item {index} of the training data: the image {problem}.")
            problem = label_problem(label)
            if problem:
                raise DataError(f"item {index} of the training data: the label {label!r:.40} {problem}.")
            rows.append((image, label_name(label)))
        return rows
    raise DataError(f"training data must be an ImageFolder path, a CSV of path,label or a non-empty list of "
                    f"(image, label) pairs, got {type(data).__name__}.")


def image_problem(image: Any) -> str | None:
    """Why ``image`` cannot be a training image (checked before training, not at its batch), or None.

    An image is a path to an existing file, encoded bytes, a PIL image or an array/tensor;
    the pixels themselves are checked when the image is loaded."""
    if isinstance(image, (str, Path)):
        if isinstance(image, str) and not image.strip():
            return "path is an empty string"
        path = Path(image).expanduser()
        return None if path.is_file() else f"{str(path)!r} is {'a folder' if path.is_dir() else 'missing'}"
    if image is None or isinstance(image, (bool, int, float, complex, dict, set)):
        return f"is {image!r:.40} ({type(image).__name__}); pass a path, bytes, a PIL image or an array"
    if isinstance(image, (bytes, bytearray)) and not image:
        return "is empty bytes"
    return None


def read_unlabelled(data: Any) -> list[Any]:
    """Images for self-supervised pretraining: a folder (recursive), a list of images or a
    ``datasets.Dataset`` (its ``image`` column, or its one Image column)."""
    data = maybe_records(data)
    if isinstance(data, DatasetRecords):
        missing = next((i for i, row in enumerate(data) if row.get("image") is None), None)
        if missing is not None:
            raise DataError(f"{data.where}, row {missing}: no 'image' (its columns: {sorted(data[missing])}); name the "
                            "image column 'image' (dataset.rename_column(NAME, 'image')).")
        data = [row["image"] for row in data]
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if path.is_dir():
            images = _images_under(path)
            if images:
                return images
        elif path.is_file() and path.suffix.lower() == ".csv":
            return [image for image, _ in read_csv(path)]
        raise DataError(f"{str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    if isinstance(data, (list, tuple)) and data:
        for index, image in enumerate(data):
            problem = image_problem(image)
            if problem:
                raise DataError(f"item {index} of the pretraining data: the image {problem}.")
        return list(data)
    raise DataError(f"pretraining data must be a folder of images or a non-empty list, got {type(data).__name__}.")
