"""Contrastive image-text training (CLIP's objective) through the one Trainer, and the
image-text pairs it reads.

Pairs come as

* a list of ``(image, text)`` tuples or ``{"image": ..., "text": ...}`` dicts (``"caption"``
  is taken for ``"text"``), where an image is anything the vision pipelines accept and a
  text is a non-empty string **or a list of them** (several captions of one image: each
  training draw picks one at random, as CLIP trains on COCO's five);
* a CSV/TSV file with a header naming the image column (``path``/``image``/``file``) and a
  ``text`` or ``caption`` column (relative paths are relative to the file);
* an ImageFolder (``root/<text>/<image>``) or a ``path,label`` CSV, read by
  :func:`hub_vision.data.read_labelled`, the folder name or label being the text.

Every row is checked before training starts (a bad one is a ``DataError`` naming the item
or the file and line). The loss is CLIP's symmetric InfoNCE with the learnable temperature
(:func:`hub_vision.models.clip.contrastive_loss`); pairs of a batch that share a caption are
positives of each other, not negatives.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import torch

from hub.data.padding import pad_sequences
from hub.data.readers import read_text
from hub.errors import DataError, InvalidInputError
from hub_vision.data import PATH_COLUMNS, image_problem, read_labelled

TEXT_COLUMNS = ("text", "caption", "captions")


def _texts(text: Any, where: str) -> list[str]:
    """One caption or a list of captions as a non-empty list of non-empty strings."""
    texts = text if isinstance(text, (list, tuple)) else [text]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise DataError(f"{where}: the text must be a non-empty string (or a non-empty list of them), got "
                        f"{text!r:.60}.")
    return [t.strip() for t in texts]


def read_pair_csv(path: Path) -> list[tuple[Any, list[str]]] | None:
    """``(image path, [text])`` rows of a CSV/TSV with a header naming a path and a text column;
    None when the header has no text column (then it is a ``path,label`` CSV)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        lines = list(csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from None
    header = [c.strip().lower() for c in lines[0]] if lines else []
    text_col = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    path_col = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
    if text_col is None or path_col is None:
        return None
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in line):
            continue
        if len(line) <= max(path_col, text_col):
            raise DataError(f"{path}:{number}: expected an image path and a text, got {line!r:.80}.")
        image = Path(line[path_col].strip()).expanduser()
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            raise DataError(f"{path}:{number}: image {str(image)!r} does not exist.")
        rows.append((image, _texts(line[text_col], f"{path}:{number}")))
    if not rows:
        raise DataError(f"{str(path)!r} has no rows; expected path,text lines under its header.")
    return rows


def read_pairs(data: Any) -> list[tuple[Any, list[str]]]:
    """``(image, [captions])`` pairs from any of the forms the module doc lists."""
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
            rows = read_pair_csv(path)
            if rows is not None:
                return rows
        return [(image, [text]) for image, text in read_labelled(path)]
    if isinstance(data, (list, tuple)) and data:
        pairs = []
        for index, item in enumerate(data):
            if isinstance(item, dict) and "image" in item and ("text" in item or "caption" in item):
                image, text = item["image"], item.get("text", item.get("caption"))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                image, text = item
            else:
                raise DataError(f"item {index} of the image-text data is a {type(item).__name__}; expected "
                                "(image, text) or {'image': ..., 'text': ...}.")
            problem = image_problem(image)
            if problem:
                raise DataError(f"item {index} of the image-text data: the image {problem}.")
            pairs.append((image, _texts(text, f"item {index} of the image-text data")))
        return pairs
    raise DataError(f"image-text data must be a list of (image, text) pairs, a CSV with path and text columns or an "
                    f"ImageFolder, got {type(data).__name__}" + (" (empty)" if isinstance(data, (list, tuple)) else "")
                    + ".")


def train_contrastive(pipe: Any, train: Any, eval: Any = None, *, augment: dict[str, Any] | None = None,
                      **training_args: Any) -> Any:
    """Train ``pipe``'s CLIP (a zero-shot-image-classify pipeline) on image-text pairs.

    Training images go through timm's training transform at the model's size (``augment``
    as for ``image-classify``'s ``fine_tune``; note that flips change what some images
    mean), evaluation images through the model's own preprocessing; texts are tokenised
    once, truncated to the text tower's positions. Returns the Trainer's ``TrainResult``; the
    pipeline keeps the best epoch (lowest evaluation loss, else training loss).
    """
    from hub.train import Trainer, TrainingArguments
    from hub_vision.images import to_pil
    from hub_vision.preprocess import train_transform

    args = TrainingArguments.from_kwargs(**training_args)
    if augment is not None and not isinstance(augment, dict):
        raise InvalidInputError(f"augment must be a dict of timm transform options, got {type(augment).__name__}.")
    train_rows = read_pairs(train)
    eval_rows = read_pairs(eval) if eval is not None else None
    if len(train_rows) < 2:
        raise DataError("contrastive training needs at least two image-text pairs (each batch contrasts its pairs).")
    texts = sorted({t for _, captions in train_rows + (eval_rows or []) for t in captions})
    text_id = {t: i for i, t in enumerate(texts)}
    limit = pipe.model.max_positions
    ids = pipe.tokenizer(texts, truncation=True, max_length=limit, verbose=False)["input_ids"]
    pad = pipe.tokenizer.pad_token_id if pipe.tokenizer.pad_token_id is not None else 0
    augmenter = train_transform(pipe.data_config, augment)
    mode, task = pipe.image_mode, pipe.task
    rng = random.Random(args.seed)

    def batch_of(pixels: list[torch.Tensor], chosen: list[int]) -> dict[str, torch.Tensor]:
        input_ids, mask = pad_sequences([ids[i] for i in chosen], value=pad)
        return {"pixel_values": torch.stack(pixels), "input_ids": input_ids, "attention_mask": mask,
                "text_groups": torch.tensor(chosen)}

    def collate_train(items: list[Any]) -> dict[str, torch.Tensor]:
        if isinstance(items[0], dict):  # evaluation features, already preprocessed
            return batch_of([f["pixel_values"] for f in items], [f["text"] for f in items])
        pixels = [augmenter(to_pil(image, number, f"{task} training data", mode)) for number, image, _ in items]
        return batch_of(pixels, [text_id[rng.choice(captions)] for _, _, captions in items])

    train_data = [(number, image, captions) for number, (image, captions) in enumerate(train_rows)]
    eval_data = None
    if eval_rows:
        eval_data = pipe.preprocess_images([image for image, _ in eval_rows])
        for feature, (_, captions) in zip(eval_data, eval_rows):
            feature["text"] = text_id[captions[0]]
    pipe.model.train()
    trainer = Trainer(pipe.model, args, train_data=train_data, collate=collate_train, eval_data=eval_data,
                      save_best=lambda model, path: pipe.save(path))
    result = trainer.train()
    pipe.model.to(pipe.device).eval()
    return result
