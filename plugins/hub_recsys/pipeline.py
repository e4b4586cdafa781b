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

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import ConfigError, InvalidInputError, ModelLoadError
from hub.modeling import load_model, wrong_model
from hub.pipeline import Pipeline, default_device
from hub.results import Recommendations  # one user's ranked items: a ResultList
from hub.validate import check_bool, check_int
from hub_recsys.data import IdMap, Interactions, normalize_id, read_interactions
from hub_recsys.metrics import PROTOCOLS, evaluate_ranking, rating_metrics
from hub_recsys.models import ARCHITECTURES, RecModel, build_sized, check_scratch_config

logger = logging.getLogger(__name__)
IDS_NAME, HISTORY_NAME = "ids.json", "history.safetensors"

#: training defaults per architecture (overridable by any TrainingArguments keyword)
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "mf": {"epochs": 10, "batch_size": 1024, "learning_rate": 1e-2, "weight_decay": 0.0, "warmup_ratio": 0.0,
           "max_grad_norm": None, "metric_for_best": "rmse", "greater_is_better": False},
    "bpr": {"epochs": 30, "batch_size": 512, "learning_rate": 5e-3, "weight_decay": 0.0, "warmup_ratio": 0.0,
            "max_grad_norm": None, "metric_for_best": "ndcg@10"},
    "ncf": {"epochs": 20, "batch_size": 512, "learning_rate": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0,
            "max_grad_norm": None, "metric_for_best": "ndcg@10"},
    "sasrec": {"epochs": 30, "batch_size": 64, "learning_rate": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.02,
               "schedule": "constant", "metric_for_best": "ndcg@10"},
    "bert4rec": {"epochs": 40, "batch_size": 64, "learning_rate": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.02,
                 "schedule": "constant", "metric_for_best": "ndcg@10"},
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mf": {"factors": 64, "reg": 0.05, "init_std": 0.1},
    "bpr": {"factors": 64, "reg": 1e-4, "init_std": 0.1},
    "ncf": {"factors": 32, "mlp_layers": [64, 32, 16], "dropout": 0.0},
    "sasrec": {"max_len": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2},
    "bert4rec": {"max_len": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2},
}


class RecommendPipeline(Pipeline):
    task = "recommend"
    default_batch_size = 256
    call_parameters = frozenset({"k", "top_k", "exclude_seen", "history", "unknown_items"})

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
    @classmethod
    def from_folder(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None,
                    metadata: dict[str, Any]) -> RecommendPipeline:
        loaded = load_model(folder, device=device, dtype=dtype)
        if not isinstance(loaded.module, RecModel):
            raise wrong_model(loaded, cls.task, f"one of {sorted(ARCHITECTURES)}")
        ids_path, history_path = Path(folder) / IDS_NAME, Path(folder) / HISTORY_NAME
        if not ids_path.is_file() or not history_path.is_file():
            raise ModelLoadError(f"{str(folder)!r} lacks {IDS_NAME} or {HISTORY_NAME}; a recommender folder is "
                                 "written by pipe.save(dir).")
        users, items, history = _read_ids_and_history(ids_path, history_path, loaded.module)
        metadata = {**metadata, "architecture": loaded.architecture}
        return cls(loaded.module, architecture=loaded.architecture, users=users,
                   items=items, indptr=history["indptr"], seen=history["items"],
                   popularity=history["popularity"], device=device, dtype=dtype, metadata=metadata)

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

    def user_history(self, user: int) -> np.ndarray:
        return self.seen[self.indptr[user]:self.indptr[user + 1]]

    def _item_indices(self, history: Any, unknown_items: str) -> tuple[list[int], list[str]]:
        if history is None:
            return [], []
        if isinstance(history, (str, bytes)) or not hasattr(history, "__iter__"):
            raise InvalidInputError(f"history must be a list of item ids (oldest first), got {history!r:.60}.")
        known, unknown = [], []
        for position, item in enumerate(history):
            try:
                key = normalize_id(item, "item id")  # the spelling training used (see normalize_id)
            except InvalidInputError as exc:
                raise InvalidInputError(f"history[{position}]: {exc} Pass item ids as strings or integers.") from None
            index = self.items.get(key)
            (unknown.append(key) if index is None else known.append(index))
        if unknown:
            if unknown_items == "error":
                raise InvalidInputError(f"history holds item ids the model does not know: {unknown[:5]}; drop them "
                                        "or pass unknown_items='ignore'.")
            logger.warning("Ignoring %d history item(s) the model does not know: %s", len(unknown), unknown[:5])
        return known, unknown

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

    def _request(self, user: Any, history: Any, unknown_items: str, *, index: int | None = None) -> dict[str, Any]:
        try:  # the spelling training and saving used: rec(1), rec(1.0), rec("1") and rec(" 1 ") are one user
            user = normalize_id(user, "user id")
        except InvalidInputError as exc:
            where = "" if index is None else f"input {index} "  # which request of a list (hub.testing's rule)
            raise InvalidInputError(f"recommend: {where}{user!r:.40} is not a user id ({exc}); pass a string or "
                                    "integer id.") from None
        index = self.users.get(user)
        extra, unknown = self._item_indices(history, unknown_items)
        sequence: list[int] = []
        if self._model().kind == "sequential":  # the stored history, continued by the given items
            sequence = (list(self.user_history(index)) if index is not None else []) + extra
        policy = "personal" if index is not None else "history" if extra else "popularity"
        meta = {"user": str(user), "known_user": index is not None, "policy": policy, "ignored_items": unknown}
        return {"user": index, "extra": extra, "sequence": sequence, "policy": policy, "meta": meta}

    @torch.inference_mode()
    def _scores(self, requests: list[dict[str, Any]]) -> torch.Tensor:
        """(B, V) scores for a chunk of requests, each by its policy."""
        model = self._model()
        by_policy: dict[str, list[int]] = {}
        for row, request in enumerate(requests):
            by_policy.setdefault(request["policy"], []).append(row)
        if set(by_policy) == {"personal"} and model.kind != "sequential":  # the common case: no copy
            users = torch.as_tensor([r["user"] for r in requests], device=self.device)
            with self.autocast():
                return model.scores({"users": users}).float()
        out = torch.empty(len(requests), len(self.items), device=self.device)
        with self.autocast():
            for policy, rows in by_policy.items():
                index = torch.as_tensor(rows, device=self.device)
                if policy == "popularity":
                    pop = torch.as_tensor(self.popularity, device=self.device, dtype=out.dtype)
                    out[index] = pop[None].expand(len(rows), -1)
                elif model.kind == "sequential":
                    from hub_recsys.training import left_pad

                    ids = left_pad([np.asarray(requests[r]["sequence"], dtype=np.int64) + 1 for r in rows],
                                   model.max_len).to(self.device)
                    out[index] = model.scores({"input_ids": ids}).float()
                elif policy == "personal":
                    users = torch.as_tensor([requests[r]["user"] for r in rows], device=self.device)
                    out[index] = model.scores({"users": users}).float()
                else:  # factorisation model, unknown user with a history: item-to-item similarity
                    vectors = torch.nn.functional.normalize(model.item_vectors().float(), dim=-1)
                    for r in rows:
                        profile = vectors[torch.as_tensor(requests[r]["extra"], device=self.device)].sum(0)
                        out[r] = vectors @ profile
        return out

    def _exclusion(self, requests: list[dict[str, Any]], num_items: int, device: torch.device) -> torch.Tensor:
        """(B, V) True at each request's seen items (stored history and given history), built
        with one scatter from the compressed rows."""
        rows, cols = [], []
        for row, request in enumerate(requests):
            if request["user"] is not None:
                items = self.user_history(request["user"])
                rows.append(np.full(len(items), row, dtype=np.int64))
                cols.append(items)
            if request["extra"]:
                rows.append(np.full(len(request["extra"]), row, dtype=np.int64))
                cols.append(np.asarray(request["extra"], dtype=np.int64))
        mask = torch.zeros(len(requests), num_items, dtype=torch.bool, device=device)
        if rows:
            mask[torch.as_tensor(np.concatenate(rows), device=device),
                 torch.as_tensor(np.concatenate(cols), device=device)] = True
        return mask

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

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, test: Any, *, k: int = 10, protocol: str = "full", negatives: int = 100, seed: int = 0,
                 batch_size: int | None = None, **read_options: Any) -> dict[str, Any]:
        """Rank each held-out (user, item) of ``test`` against the model's item catalogue with
        :mod:`hub_recsys.metrics` (``protocol="full"`` or ``"sampled"``, named in the result);
        explicit models add RMSE/MAE when ``test`` has ratings. The model's stored histories
        are the users' seen items. Rows whose item the model does not know are skipped (counted)."""
        if protocol not in PROTOCOLS:
            raise InvalidInputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
        batch_size = self.resolve_batch_size(batch_size)  # before reading the data: 0 is an error, not the default
        model = self._model()
        data = read_interactions(test, duplicates="keep", **read_options)
        users = np.array([self.users.get(u) if u in self.users else -1 for u in data.user_ids.ids])[data.users]
        items = np.array([self.items.get(i) if i in self.items else -1 for i in data.item_ids.ids])[data.items]
        keep = items >= 0
        skipped = int((~keep).sum())
        raw_users = [data.user_ids.ids[u] for u in data.users[keep]]
        users, items = users[keep], items[keep]
        if not len(items):
            raise InvalidInputError("evaluate: no test row names an item the model knows.")
        requests = [self._request(u, None, "ignore") for u in raw_users]
        seen = [self.user_history(u) if u >= 0 else np.zeros(0, dtype=np.int64) for u in users]
        result = evaluate_ranking(lambda rows: self._scores([requests[r] for r in rows]), items, seen,
                                  len(self.items), k=k, protocol=protocol, negatives=negatives, seed=seed,
                                  batch_size=batch_size)
        result.update(skipped_unknown_items=skipped, cold_users=int((users < 0).sum()))
        if model.kind == "explicit" and data.ratings is not None:
            result.update(self._rating_metrics(users, items, data.ratings[keep]))
        return result

    @torch.inference_mode()
    def _rating_metrics(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> dict[str, float]:
        model = self._model()
        known = users >= 0
        pred = np.full(len(items), float(model.mean), dtype=np.float64)  # unknown users: the global mean
        if known.any():
            u = torch.as_tensor(users[known], device=self.device)
            i = torch.as_tensor(items[known], device=self.device)
            pred[known] = model.predict(u, i).float().cpu().numpy()
        lo, hi = self.config.get("rating_range", [float(ratings.min()), float(ratings.max())])
        return rating_metrics(np.clip(pred, lo, hi), ratings)

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

    # -- training ---------------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, remember_eval: bool = True, duplicates: str = "last",
                  negatives: int | None = None, callbacks: Sequence[Any] = (), **training_args: Any):
        """Train on interactions (file, list or :class:`Interactions`) through the common Trainer.

        ``eval``: held-out interactions checked after each epoch (RMSE for ``mf``, full-ranking
        NDCG@10 otherwise; the best epoch is kept). With ``remember_eval`` (default) they join
        the users' stored histories afterwards, as chronological leave-one-out needs (the
        validation item precedes the test item). The stored histories (what ``exclude_seen`` and the
        sequential models read) become exactly these interactions: pass a user's full history
        when training further. BERT4Rec trains by the cloze task with 20 %
        of windows masked only at their newest item; SASRec by next-item prediction.
        """
        return self._train(train, eval, objective="fine_tune", remember_eval=remember_eval, duplicates=duplicates,
                           negatives=negatives, callbacks=callbacks, training_args=training_args)

    def pretrain(self, data: Any, eval: Any = None, *, remember_eval: bool = True, duplicates: str = "last",
                 callbacks: Sequence[Any] = (), **training_args: Any):
        """The self-supervised objective of the sequential models: BERT4Rec's masked-item (cloze)
        task, SASRec's next-item prediction."""
        if self.architecture not in ("sasrec", "bert4rec"):
            raise InvalidInputError(f"pretrain is the sequential models' objective (sasrec, bert4rec); "
                                    f"{self.architecture!r} trains with fine_tune(data).")
        return self._train(data, eval, objective="pretrain", remember_eval=remember_eval, duplicates=duplicates,
                           negatives=None, callbacks=callbacks, training_args=training_args)

    def _train(self, train: Any, eval: Any, *, objective: str, remember_eval: bool, duplicates: str,
               negatives: int | None, callbacks: Sequence[Any], training_args: dict[str, Any]):
        from hub.train import Trainer, TrainingArguments
        from hub_recsys import training as T
        from hub_recsys.metrics import metrics_from_logits

        arch = self.architecture
        defaults = dict(TRAINING_DEFAULTS[arch])
        if eval is None:  # nothing held out: the best epoch is the one with the lowest training loss
            defaults.update(metric_for_best="loss", greater_is_better=False)
        args = TrainingArguments.from_kwargs(**{**defaults, **training_args})
        users, items = IdMap(self.users.ids), IdMap(self.items.ids)
        data = read_interactions(train, duplicates=duplicates, user_ids=users, item_ids=items)
        held = read_interactions(eval, duplicates="keep", user_ids=users, item_ids=items) if eval is not None else None
        if arch == "mf" and data.ratings is None:
            raise InvalidInputError("mf learns explicit ratings, but the training data has no rating column; "
                                    "use bpr, ncf, sasrec or bert4rec for implicit feedback.")
        self._size_model(len(users), len(items), data)
        model = self.model
        examples: T.Rows = T.Rows(len(data))
        if arch == "mf":
            train_collate: Any = T.RatingBatches.of(data)
        elif arch in ("bpr", "ncf"):
            train_collate = T.PairBatches(data, negatives=negatives or (1 if arch == "bpr" else 4))
        else:
            sequences = data.sequences()
            if arch == "sasrec":
                train_collate = T.NextItemBatches(sequences, model.max_len)
            else:
                train_collate = T.ClozeBatches(sequences, model.max_len, model.mask_token,
                                               mask_prob=float(self.config.get("mask_prob", 0.2)),
                                               last_prob=0.2 if objective == "fine_tune" else 0.0)
            examples = T.Rows(len(train_collate))
        if not len(examples):
            raise InvalidInputError("The training data gives no training examples (sequential models need users "
                                    "with at least two interactions).")
        eval_data, eval_collate, metrics = None, None, None
        if held is not None and len(held):
            if arch == "mf":
                if held.ratings is None:
                    raise InvalidInputError("mf evaluates RMSE: the eval data needs a rating column.")
                eval_collate = T.RatingBatches.of(held)
                metrics = lambda logits, labels: rating_metrics(logits, labels)
            else:
                train_seqs = data.sequences()  # one per user of the (shared) id map
                seen = [train_seqs[u] for u in held.users]
                is_seq = model.kind == "sequential"
                eval_collate = T.RankingEval(held.users, held.items, seen, len(items),
                                             histories=seen if is_seq else None,
                                             max_len=getattr(model, "max_len", 0))
                metrics = metrics_from_logits
            eval_data = _Tagged(len(held))

        def collate(rows: list[Any]) -> dict[str, torch.Tensor]:
            if rows and isinstance(rows[0], tuple):  # evaluation rows (the Trainer has one collate)
                return eval_collate([r[1] for r in rows])
            return train_collate(rows)

        trainer = Trainer(model, args, train_data=examples, collate=collate, eval_data=eval_data,
                          compute_metrics=metrics, save_best=None, callbacks=callbacks)
        result = trainer.train()
        self.model.to(self.device).eval()
        known = data if held is None or not remember_eval else _concat(data, held)
        self._remember(known, users, items)
        return result

    def _size_model(self, num_users: int, num_items: int, data: Interactions) -> None:
        if self.model is not None:
            if num_users > self.model.config.get("num_users", num_users) or num_items > self.model.num_items:
                raise InvalidInputError(
                    f"The data names users or items this {self.architecture} model was not trained on "
                    f"({num_users - self.model.config.get('num_users', num_users)} new users, "
                    f"{num_items - self.model.num_items} new items); train a new model: "
                    f"hub.create('recommend', config={{'architecture': '{self.architecture}'}}).fine_tune(data).")
            return
        config = {**self.config, "num_items": num_items}
        if self.architecture in ("mf", "bpr", "ncf"):
            config["num_users"] = num_users
        if self.architecture == "mf":
            config["global_mean"] = float(data.ratings.mean())
            config["rating_range"] = [float(data.ratings.min()), float(data.ratings.max())]
        self.config = config
        self.model = build_sized(self.architecture, config)
        self.model.to(self.device)

    def _remember(self, data: Interactions, users: IdMap, items: IdMap) -> None:
        self.users, self.items = users, items
        self.indptr, self.seen = data.csr()
        self.popularity = np.bincount(data.items, minlength=len(items)).astype(np.float32)

    # -- saving -----------------------------------------------------------------------------
    # Pipeline.save writes config.json, model.safetensors and README.md; a recommender adds
    # its id maps and the users' histories
    def _module_to_save(self) -> torch.nn.Module:
        return self._model()  # an untrained recommender: "call fine_tune(data) first"

    def _save_extra_files(self, folder: Path) -> None:
        """ids.json (user and item ids) and history.safetensors (seen items, popularity)."""
        from safetensors.torch import save_file

        (folder / IDS_NAME).write_text(json.dumps({"users": self.users.ids, "items": self.items.ids}) + "\n",
                                       encoding="utf-8")
        save_file({"indptr": torch.as_tensor(self.indptr, dtype=torch.long),
                   "items": torch.as_tensor(self.seen, dtype=torch.long),
                   "popularity": torch.as_tensor(self.popularity, dtype=torch.float32)}, folder / HISTORY_NAME)


class _Tagged:
    """Evaluation examples ("eval", row), told apart from training rows by the shared collate."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[str, int]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return ("eval", index)


def _concat(a: Interactions, b: Interactions) -> Interactions:
    cat = lambda x, y: None if x is None or y is None else np.concatenate([x, y])
    return Interactions(np.concatenate([a.users, b.users]), np.concatenate([a.items, b.items]),
                        cat(a.ratings, b.ratings), cat(a.timestamps, b.timestamps), a.user_ids, a.item_ids, a.source)


def _read_ids_and_history(ids_path: Path, history_path: Path, model: RecModel
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
