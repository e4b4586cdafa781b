"""Non-learned baselines scored by the same evaluation code as the models: popularity and
item-kNN (cosine item-item collaborative filtering)."""

from __future__ import annotations

import numpy as np
import torch

from hub_recsys.data import Interactions


def popularity_scores(train: Interactions) -> torch.Tensor:
    """(V,) interaction counts per item."""
    return torch.as_tensor(np.bincount(train.items, minlength=train.num_items), dtype=torch.float32)


def user_item_matrix(train: Interactions) -> torch.Tensor:
    """(U, V) binary matrix of who interacted with what."""
    matrix = torch.zeros(train.num_users, train.num_items)
    matrix[torch.as_tensor(train.users), torch.as_tensor(train.items)] = 1.0
    return matrix


class ItemKNN:
    """Score(u, i) = sum over the user's items j of sim(i, j), with sim the cosine between item
    columns of the binary user-item matrix, kept for each item's ``neighbours`` nearest items
    (Sarwar et al., 2001; Deshpande & Karypis, 2004)."""

    def __init__(self, train: Interactions, neighbours: int = 100, shrink: float = 0.0) -> None:
        self.matrix = user_item_matrix(train)  # (U, V)
        norms = self.matrix.sum(0).sqrt()  # (V,)
        sim = (self.matrix.T @ self.matrix) / (norms[:, None] * norms[None] + shrink + 1e-9)  # (V, V)
        sim.fill_diagonal_(0.0)
        if neighbours < sim.shape[1]:
            top = sim.topk(neighbours, dim=1)
            pruned = torch.zeros_like(sim)
            pruned.scatter_(1, top.indices, top.values)
            sim = pruned
        self.sim = sim  # row j: item j's neighbours

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.matrix[users] @ self.sim  # (B, V)
