"""Training and evaluation glue of ``recommend``: ``fine_tune``, ``pretrain`` and ``evaluate``.

The interactions are read with :mod:`hub_recsys.data`, batched by :mod:`hub_recsys.training`
and trained by the common :class:`hub.train.Trainer`; the model is sized to the data's users and
items on first training, and the users' histories and item popularity are remembered for
``exclude_seen``, the sequential models and cold start. :class:`_Fitting` is a mixin of
:class:`~hub_recsys.pipelines.recommend.RecommendPipeline`, which provides the attributes annotated here and
in :class:`hub_recsys.pipelines.policy._State`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hub.errors import InvalidInputError
from hub_recsys.data import IdMap, Interactions, read_interactions
from hub_recsys.metrics import PROTOCOLS, evaluate_ranking, rating_metrics
from hub_recsys.models.recommenders import RecModel, build_sized
from hub_recsys.pipelines.policy import _State

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


class _Fitting(_State):
    """fine_tune / pretrain / evaluate of a recommender, and what training leaves behind."""

    model: RecModel | None
    architecture: str
    config: dict[str, Any]

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
