"""The files a recommender folder adds to Hub's config.json + model.safetensors.

``ids.json`` holds the user and item id strings in index order and ``history.safetensors``
every known user's items in time order (compressed rows: ``indptr`` + ``items``) and the item
popularity counts. :class:`~hub_recsys.pipelines.recommend.RecommendPipeline` writes them on ``save`` and
reads them, checked against each other and the model, in ``from_folder``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hub.errors import InvalidInputError, ModelLoadError
from hub_recsys.data import IdMap
from hub_recsys.models.recommenders import RecModel

IDS_NAME, HISTORY_NAME = "ids.json", "history.safetensors"


def write_ids_and_history(folder: Path, users: IdMap, items: IdMap, indptr: np.ndarray, seen: np.ndarray,
                          popularity: np.ndarray) -> None:
    """ids.json (user and item ids) and history.safetensors (seen items, popularity)."""
    from safetensors.torch import save_file

    (folder / IDS_NAME).write_text(json.dumps({"users": users.ids, "items": items.ids}) + "\n",
                                   encoding="utf-8")
    save_file({"indptr": torch.as_tensor(indptr, dtype=torch.long),
               "items": torch.as_tensor(seen, dtype=torch.long),
               "popularity": torch.as_tensor(popularity, dtype=torch.float32)}, folder / HISTORY_NAME)


def read_ids_and_history(ids_path: Path, history_path: Path, model: RecModel
                         ) -> tuple[IdMap, IdMap, dict[str, np.ndarray]]:
    """ids.json and history.safetensors, checked against each other and the model's embedding
    rows: a wrong file would otherwise map users to other users' rows (silently wrong
    recommendations) or fail deep inside torch. Each problem is a ModelLoadError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    def bad(path: Path, problem: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: {problem} Re-save the recommender with pipe.save(dir) (or restore the "
                              "folder from a copy); ids.json and history.safetensors must come from the same save "
                              "as model.safetensors.")

    try:
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(ids_path, f"is not valid UTF-8 JSON ({exc}).") from None
    if not isinstance(ids, dict) or not isinstance(ids.get("users"), list) or not isinstance(ids.get("items"), list):
        raise bad(ids_path, 'must be a JSON object {"users": [...], "items": [...]} of id strings.')
    maps = {}
    for key in ("users", "items"):
        values = ids[key]
        wrong = next((i for i, v in enumerate(values) if not isinstance(v, (str, int)) or isinstance(v, bool)), None)
        if wrong is not None:
            raise bad(ids_path, f"{key}[{wrong}] is {values[wrong]!r:.40}; ids are strings.")
        try:
            maps[key] = IdMap(values)
        except InvalidInputError as exc:
            raise bad(ids_path, f"{key}: {exc}") from None
        if len(maps[key]) != len(values):
            raise bad(ids_path, f"{key} holds {len(values) - len(maps[key])} duplicate id(s) (after normalisation: "
                                "surrounding spaces dropped, 1.0 read as 1), so rows and ids no longer line up.")
    users, items = maps["users"], maps["items"]
    if len(items) != model.num_items:
        raise bad(ids_path, f"names {len(items)} items, but the model has {model.num_items} item rows.")
    num_users = model.config.get("num_users")
    if num_users is not None and len(users) != int(num_users):
        raise bad(ids_path, f"names {len(users)} users, but the model has {num_users} user rows.")
    try:
        raw = load_file(history_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise bad(history_path, f"is not a readable safetensors file ({exc}).") from None
    want = {"indptr": ("int64", (len(users) + 1,)), "items": ("int64", None), "popularity": ("float32", (len(items),))}
    history = {}
    for name, (dtype, shape) in want.items():
        tensor = raw.get(name)
        if tensor is None:
            raise bad(history_path, f"lacks the tensor {name!r} (it holds {sorted(raw)}).")
        wrong_shape = shape is not None and tuple(tensor.shape) != shape
        if tensor.dtype != getattr(torch, dtype) or tensor.ndim != 1 or wrong_shape:
            expected = f"({shape[0]},)" if shape else "(N,)"
            raise bad(history_path, f"tensor {name!r} is {str(tensor.dtype).replace('torch.', '')} "
                                    f"{tuple(tensor.shape)}; expected {dtype} {expected} for {len(users)} users "
                                    f"and {len(items)} items.")
        history[name] = tensor.numpy()
    indptr, seen = history["indptr"], history["items"]
    if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(seen):
        raise bad(history_path, f"'indptr' is not a valid row index for {len(seen)} history items (it must start "
                                "at 0, never decrease and end at the number of items).")
    if len(seen) and (seen.min() < 0 or seen.max() >= len(items)):
        raise bad(history_path, f"'items' holds item indices outside 0..{len(items) - 1}.")
    if not np.isfinite(history["popularity"]).all():
        raise bad(history_path, "'popularity' holds NaN or infinite counts.")
    return users, items, history
