"""hub.backbone.pooling.pool: the one pooling every family calls (text, audio, ViT)."""

from __future__ import annotations

import pytest
import torch

from hub.backbone.pooling import POOLINGS, pool


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    rows = [torch.randn(5, 4), torch.randn(3, 4), torch.randn(1, 4)]
    hidden = torch.full((3, 5, 4), 1e4)  # padding holds large values: they must never count
    mask = torch.zeros(3, 5, dtype=torch.long)
    for i, row in enumerate(rows):
        hidden[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return hidden, mask, rows


@pytest.mark.parametrize("how", POOLINGS)
def test_a_padded_row_pools_as_the_row_alone(how):
    hidden, mask, rows = _padded_batch()
    batched = pool(hidden, mask, how)
    assert batched.shape == (3, 4)
    for i, row in enumerate(rows):
        alone = pool(row[None], None, how)[0]
        torch.testing.assert_close(batched[i], alone, rtol=0, atol=1e-6)


def test_each_pooling_means_what_it_says():
    hidden, mask, rows = _padded_batch()
    first = rows[0]
    torch.testing.assert_close(pool(hidden, mask, "cls")[0], first[0])
    torch.testing.assert_close(pool(hidden, mask, "mean")[0], first.mean(0))
    torch.testing.assert_close(pool(hidden, mask, "max")[0], first.amax(0))
    torch.testing.assert_close(pool(hidden, mask, "avgmax")[0], 0.5 * (first.amax(0) + first.mean(0)))


def test_skip_leaves_the_prefix_tokens_out():
    hidden = torch.randn(2, 6, 3)
    torch.testing.assert_close(pool(hidden, None, "mean", skip=2), hidden[:, 2:].mean(1), rtol=0, atol=0)
    torch.testing.assert_close(pool(hidden, None, "max", skip=2), hidden[:, 2:].amax(1), rtol=0, atol=0)
    torch.testing.assert_close(pool(hidden, None, "cls", skip=2), hidden[:, 0], rtol=0, atol=0)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    torch.testing.assert_close(pool(hidden, mask, "mean", skip=2)[0], hidden[0, 2:4].mean(0))


def test_an_unknown_pooling_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown pooling 'sum'.*'mean', 'cls', 'max', 'avgmax'"):
        pool(torch.randn(1, 2, 3), None, "sum")


def test_the_vit_global_pool_is_pool():
    """timm's global_pool names map onto pool() bit for bit (prefix tokens skipped or not)."""
    from hub_vision.models.vit import pool_tokens

    hidden = torch.randn(2, 7, 5)
    for timm_name, name in (("token", "cls"), ("avg", "mean"), ("max", "max"), ("avgmax", "avgmax")):
        assert torch.equal(pool_tokens(hidden, timm_name, 2), pool(hidden, None, name, skip=2))
        assert torch.equal(pool_tokens(hidden, timm_name, 2, include_prefix=True), pool(hidden, None, name))
    assert torch.equal(pool_tokens(hidden, "", 2), hidden)
