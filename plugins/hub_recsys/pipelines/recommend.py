"""``recommend``: user ids in, ranked ``[{"item", "score"}]`` out.

A recommender folder holds Hub's ``config.json`` + ``model.safetensors``, ``ids.json``
(the user and item id strings, in index order) and ``history.safetensors`` (every known
user's items in time order, as compressed rows, and the item popularity counts), so a
loaded model knows what each user has seen (``exclude_seen=True`` removes those items)
and, for SASRec/BERT4Rec, the history it continues.

Cold start (a user id the model was not trained on):

* with ``history=[...]`` (the user's recent items, oldest first): SASRec and BERT4Rec read
  it as the sequence to continue; the factorisation models (MF, BPR, NCF) score each item by
  its summed cosine similarity to the history items' vectors;
* without history: the most popular items in the training data.

Each result list carries ``.metadata`` with the ``policy`` used (``"personal"``,
``"history"`` or ``"popularity"``), whether the user was known, and any history items the
model does not know (skipped with a warning under ``unknown_items="ignore"``, the default;
``unknown_items="error"`` raises instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import ConfigError, InvalidInputError, ModelLoadError
from hub.pipeline import Pipeline, default_device
from hub.results import Recommendations  # one user's ranked items: a ResultList
from hub.validate import check_bool, check_int
from hub_recsys.data import IdMap
from hub_recsys.models.recommenders import ARCHITECTURES, RecModel, check_scratch_config
from hub_recsys.pipelines.files import HISTORY_NAME, IDS_NAME, read_ids_and_history, write_ids_and_history
from hub_recsys.pipelines.fitting import _Fitting
from hub_recsys.pipelines.policy import _ColdStartPolicy

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mf": {"factors": 64, "reg": 0.05, "init_std": 0.1},
    "bpr": {"factors": 64, "reg": 1e-4, "init_std": 0.1},
    "ncf": {"factors": 32, "mlp_layers": [64, 32, 16], "dropout": 0.0},
    "sasrec": {"max_len": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2},
    "bert4rec": {"max_len": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2},
}


class RecommendPipeline(_ColdStartPolicy, _Fitting, Pipeline):
    task = "recommend"
    default_batch_size = 256
    call_parameters = frozenset({"k", "top_k", "exclude_seen", "history", "unknown_items"})
    per_input_parameters = frozenset({"history"})  # a stream of users reads one history per user in step
    adapters_refused = ("a recommender's fine_tune grows its user and item tables for new ids and rewrites the "
                        "stored histories, and those tables, ids.json and the histories are the model; an adapter "
                        "(low-rank updates of Linear layers) would carry none of them. Fine-tune the whole model.")

    def __init__(self, model: RecModel | None, *, architecture: str, config: dict[str, Any] | None = None,
                 users: IdMap | None = None, items: IdMap | None = None, indptr: np.ndarray | None = None,
                 seen: np.ndarray | None = None, popularity: np.ndarray | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)  # type: ignore[arg-type]
        if architecture not in ARCHITECTURES:
            raise ConfigError(f"Unknown recommender architecture {architecture!r}; known: {sorted(ARCHITECTURES)}.")
        self.architecture = architecture
        self.config = dict(config or (model.config if model is not None else {}))
        self.users = users if users is not None else IdMap()
        self.items = items if items is not None else IdMap()
        self.indptr = indptr if indptr is not None else np.zeros(len(self.users) + 1, dtype=np.int64)
        self.seen = seen if seen is not None else np.zeros(0, dtype=np.int64)
        self.popularity = popularity if popularity is not None else np.zeros(len(self.items), dtype=np.float32)
        if model is not None:
            self.model.to(self.device).eval()

    # -- construction ---------------------------------------------------------------------
    # loading is the base's from_folder: the model must be a RecModel, ids.json and
    # history.safetensors come beside it
    model_types = RecModel
    model_needs = f"one of {sorted(ARCHITECTURES)}"

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        """The user and item ids and every user's history, checked against the model."""
        ids_path, history_path = folder / IDS_NAME, folder / HISTORY_NAME
        if not ids_path.is_file() or not history_path.is_file():
            raise ModelLoadError(f"{str(folder)!r} lacks {IDS_NAME} or {HISTORY_NAME}; a recommender folder is "
                                 "written by pipe.save(dir).")
        users, items, history = read_ids_and_history(ids_path, history_path, model)
        return {"architecture": metadata["architecture"], "users": users, "items": items,
                "indptr": history["indptr"], "seen": history["items"], "popularity": history["popularity"]}

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> RecommendPipeline:
        """An untrained recommender; ``fine_tune(data)`` sizes it to the data's users and items.

        ``config["architecture"]`` is one of mf, bpr, ncf, sasrec, bert4rec; the other keys
        override :data:`MODEL_DEFAULTS` (factors, hidden_size, num_layers, max_len, ...).
        """
        config = dict(config or {})
        architecture = config.pop("architecture", "sasrec")
        if tokenizer is not None:
            raise ConfigError("recommenders take no tokenizer; their vocabulary is the item ids of the data.")
        check_scratch_config(architecture, config, MODEL_DEFAULTS)  # architecture, keys, types, size
        if seed is not None:
            torch.manual_seed(seed)
        return cls(None, architecture=architecture, config={**MODEL_DEFAULTS[architecture], **config},
                   device=default_device(device), dtype=dtype,
                   metadata={"task": cls.task, "architecture": architecture})

    # -- what the pipeline knows about users ------------------------------------------------
    def _model(self) -> RecModel:
        if self.model is None:
            raise InvalidInputError("This recommender has not been trained yet: call fine_tune(data) first.")
        return self.model

    # -- inference --------------------------------------------------------------------------
    def __call__(self, users: Any, *, batch_size: int | None = None, progress: bool | None = None,
                 **params: Any) -> Any:
        """Top-``k`` items for one user id (a list of dicts) or a list of user ids (a list of lists);
        ``[]`` gives ``[]``, an iterable of user ids a generator of results (Pipeline.__call__).

        Keywords: ``k`` (10), ``exclude_seen`` (True), ``history`` (the user's recent items, one
        list; or one list per user for a batch), ``unknown_items`` ("ignore" or "error"), and
        ``top_k``, another name for ``k`` (what ``hub predict --top-k`` passes).
        """
        batch_size, progress, params = self.with_defaults(batch_size, progress, params)
        if self.is_stream(users):
            return self.iter_results(users, batch_size=batch_size, **params)
        return self._recommend(users, batch_size=batch_size, progress=progress, **params)

    def _recommend(self, users: Any, *, k: int = 10, exclude_seen: bool = True, history: Any = None,
                   batch_size: int | None = None, unknown_items: str = "ignore", top_k: int | None = None,
                   progress: bool | None = None, **unknown: Any) -> Any:
        self.check_call_parameters(unknown)  # only unknown keywords land here: refused with the close match
        size = self.resolve_batch_size(batch_size)
        progress = check_bool("progress", progress, none_ok=True)
        exclude_seen = check_bool("exclude_seen", exclude_seen)
        if top_k is not None:
            k = check_int("top_k", top_k, minimum=1)
        single = not self.is_batch(users)
        ids = [users] if single else list(users)
        if not ids:
            return []  # as transformers' pipeline does
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}.")
        if unknown_items not in ("ignore", "error"):
            raise InvalidInputError(f"unknown_items must be 'ignore' or 'error', got {unknown_items!r}.")
        if history is not None and not single and (not isinstance(history, (list, tuple)) or len(history) != len(ids)):
            raise InvalidInputError("for a list of users, history must be a list with one item list per user.")
        histories = [history] if single else list(history) if history is not None else [None] * len(ids)
        requests = [self._request(u, h, unknown_items, index=i) for i, (u, h) in enumerate(zip(ids, histories))]
        results = []
        bar = self.progress_bar(len(requests), progress, unit="user")
        for start in range(0, len(requests), size):
            chunk = requests[start:start + size]
            with torch.inference_mode():
                scores = self._scores(chunk)
                if exclude_seen:
                    scores.masked_fill_(self._exclusion(chunk, scores.shape[1], scores.device), float("-inf"))
                top = scores.topk(min(k, scores.shape[1]), dim=1)
            values, indices = top.values.cpu().tolist(), top.indices.cpu().tolist()
            for request, vals, idx in zip(chunk, values, indices):
                ranked = [{"item": self.items.ids[i], "score": float(v)} for v, i in zip(vals, idx)
                          if v != float("-inf")]
                results.append(Recommendations(ranked, metadata=request["meta"]))
            bar.update(len(chunk))
        bar.close()
        return results[0] if single else results

    @torch.inference_mode()
    def similar_items(self, item: Any, k: int = 10, *, top_k: int | None = None,
                      batch_size: int | None = None) -> Any:
        """The ``k`` items whose vectors are closest (cosine) to ``item``'s; a list of items gives a list.

        ``top_k`` is another name for ``k``; ``batch_size`` query items are scored at a time
        (each against the whole catalogue)."""
        single = not isinstance(item, (list, tuple))
        items = [item] if single else list(item)
        k = check_int("top_k" if top_k is not None else "k", top_k if top_k is not None else k, minimum=1)
        size = self.resolve_batch_size(batch_size)
        if not items:
            raise InvalidInputError("similar_items: got an empty list; pass one item id or a non-empty list.")
        indices = []
        for value in items:
            index = self.items.get(value)
            if index is None:
                raise InvalidInputError(f"similar_items: item {value!r} is not among the model's "
                                        f"{len(self.items):,} items.")
            indices.append(index)
        vectors = torch.nn.functional.normalize(self._model().item_vectors().float(), dim=-1)
        results = []
        for start in range(0, len(indices), size):
            query = torch.as_tensor(indices[start:start + size], device=vectors.device)
            sims = vectors[query] @ vectors.T
            sims[torch.arange(len(query)), query] = float("-inf")
            top = sims.topk(min(k, max(1, len(self.items) - 1)), dim=1)
            results += [[{"item": self.items.ids[i], "score": float(v)} for v, i in zip(vals, idx)
                         if v != float("-inf")]
                        for vals, idx in zip(top.values.cpu().tolist(), top.indices.cpu().tolist())]
        return results[0] if single else results

    def predict_rating(self, user: Any, item: Any) -> float:
        """An explicit model's predicted rating (clipped to the training range)."""
        model = self._model()
        if model.kind != "explicit":
            raise InvalidInputError(f"predict_rating needs an explicit-feedback model (mf), not {self.architecture!r}.")
        u, i = self.users.get(user), self.items.get(item)
        if i is None:
            raise InvalidInputError(f"item {item!r} is not among the model's items.")
        with torch.inference_mode():
            value = float(model.mean) if u is None else float(model.predict(
                torch.tensor([u], device=self.device), torch.tensor([i], device=self.device))[0])
        lo, hi = self.config.get("rating_range", [value, value])
        return float(min(max(value, lo), hi))

    # -- saving -----------------------------------------------------------------------------
    # Pipeline.save writes config.json, model.safetensors and README.md; a recommender adds
    # its id maps and the users' histories
    def _module_to_save(self) -> torch.nn.Module:
        return self._model()  # an untrained recommender: "call fine_tune(data) first"

    def _save_extra_files(self, folder: Path) -> None:
        """ids.json (user and item ids) and history.safetensors (seen items, popularity)."""
        write_ids_and_history(folder, self.users, self.items, self.indptr, self.seen, self.popularity)
