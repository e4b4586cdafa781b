"""Who gets which recommendations: the per-request policy of ``recommend``.

A known user is scored by the model (``"personal"``; SASRec and BERT4Rec continue the stored
history, plus any ``history=`` items). A user id the model was not trained on (cold start) is
scored from the given ``history`` (``"history"``: the sequential models read it as the
sequence to continue, the factorisation models sum the cosine similarity of each item to the
history items' vectors) or, without one, by item popularity in the training data
(``"popularity"``). ``exclude_seen`` masks the stored and the given history items.

:class:`_ColdStartPolicy` is a mixin of :class:`~hub_recsys.pipelines.recommend.RecommendPipeline`,
which provides the attributes annotated in :class:`_State`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from hub.errors import InvalidInputError
from hub_recsys.data import IdMap, normalize_id

logger = logging.getLogger(__name__)


class _State:
    """What RecommendPipeline.__init__ sets and the mixins read (annotations only)."""

    users: IdMap
    items: IdMap
    indptr: np.ndarray
    seen: np.ndarray
    popularity: np.ndarray
    device: torch.device


class _ColdStartPolicy(_State):
    """Requests (user, history, policy) and their (B, V) scores and seen-item masks."""

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
