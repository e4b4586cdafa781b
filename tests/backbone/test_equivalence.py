"""Every fast path of the shared Transformer equals its plain (reference) pass.

The plain pass is ``model(x, padding_mask)``: every position through every block, no
packing, no cache, no recomputation. The fast paths promise the same arithmetic with
less work, so each must agree with it (fp32, max abs difference <= 1e-5) for every
block layout the backbone offers:

    norm position {pre, post} x rotary {on, off} x causal {on, off}
    x {unpad, select, unpad + select, cache (prefill + token-by-token decode, causal
       only), gradient checkpointing alone and with unpad / select / cache}

Inference paths run in eval mode under ``no_grad`` (where ``linear`` takes its oneDNN
route); gradient checkpointing runs in train mode (dropout 0) and must give the same
outputs *and* the same gradients (parameters and input) as the plain pass without it
(gradients relative to their size where it exceeds 1: they sum over every token).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from hub.backbone import KVCache, Transformer, TransformerConfig

BATCH, LENGTH, HIDDEN, HEADS, LAYERS = 3, 7, 32, 4, 2
LENGTHS = (7, 5, 3)     # right padding: row b has LENGTHS[b] real tokens
SELECT = 2              # a real token in every row, not the first (so causal masking matters)
PREFILL = 3             # cache: tokens of the first call, then one token per call
TOLERANCE = 1e-5

INFERENCE_MODES = ("unpad", "select", "unpad+select", "cache")
MODES = INFERENCE_MODES + ("checkpointing", "checkpointing+unpad", "checkpointing+select", "checkpointing+cache")
CASES = [
    pytest.param(norm, rotary, causal, mode, id=f"{norm}-{'rope' if rotary else 'norope'}-"
                                               f"{'causal' if causal else 'bidir'}-{mode}")
    for norm, rotary, causal, mode in itertools.product(("pre", "post"), (True, False), (True, False), MODES)
    if causal or "cache" not in mode  # a KV cache only exists for causal decoding
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def make_model(norm_position: str, rotary: bool, causal: bool, checkpointing: bool = False) -> Transformer:
    """A tiny stack with seeded, perturbed weights (non-trivial norms, so that pre- and
    post-norm differ); the same arguments but ``checkpointing`` give identical weights."""
    torch.manual_seed(0)
    config = TransformerConfig(hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS, intermediate_size=48,
                               norm_position=norm_position, norm_eps=1e-5, dropout=0.0, attention_dropout=0.0,
                               causal=causal, rotary_dim=4 if rotary else 0,
                               gradient_checkpointing=checkpointing)
    model = Transformer(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, LENGTH, HIDDEN, generator=gen)
    mask = torch.tensor([[1] * n + [0] * (LENGTH - n) for n in LENGTHS])
    return x, mask


def run(model: Transformer, mode: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model's output in ``mode``, laid out as the plain pass's (B, T, C) or, with
    select, (B, C)."""
    if mode == "plain":
        return model(x, mask)
    if mode == "unpad":
        return model(x, mask, unpad=True)
    if mode == "select":
        return model(x, mask, select=SELECT)
    if mode == "unpad+select":
        return model(x, mask, unpad=True, select=SELECT)
    assert mode == "cache", mode
    config = model.config
    cache = KVCache(config.num_layers, BATCH, config.num_heads, LENGTH, config.head_dim)
    steps = [model(x[:, :PREFILL], mask[:, :PREFILL], cache=cache)]  # prefill: (B, PREFILL, C)
    for t in range(PREFILL, LENGTH):  # decode: one (B, 1, C) step each
        steps.append(model(x[:, t:t + 1], mask[:, :t + 1], cache=cache))
    return torch.cat(steps, 1)


def reference(full: torch.Tensor, mode: str) -> torch.Tensor:
    return full[:, SELECT] if "select" in mode else full


def max_diff(got: torch.Tensor, want: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest difference at real tokens (padding positions carry nothing to compare)."""
    assert got.shape == want.shape, (tuple(got.shape), tuple(want.shape))
    if got.ndim == 3:
        got, want = got[mask.bool()], want[mask.bool()]
    return (got - want).abs().max().item()


@pytest.mark.parametrize("norm_position,rotary,causal,mode", CASES)
def test_fast_path_equals_plain_pass(norm_position, rotary, causal, mode):
    x, mask = inputs()
    base = mode.removeprefix("checkpointing").lstrip("+") or "plain"
    if not mode.startswith("checkpointing"):
        model = make_model(norm_position, rotary, causal).eval()
        with torch.no_grad():
            want = reference(model(x, mask), base)
            got = run(model, base, x, mask)
        assert max_diff(got, want, mask) <= TOLERANCE
        return

    plain = make_model(norm_position, rotary, causal).train()
    checkpointed = make_model(norm_position, rotary, causal, checkpointing=True).train()
    x_plain, x_checkpointed = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = reference(plain(x_plain, mask), base)
    got = run(checkpointed, base, x_checkpointed, mask)
    assert max_diff(got, want, mask) <= TOLERANCE
    weight = torch.randn(want.shape, generator=torch.Generator().manual_seed(2))
    if want.ndim == 3:
        weight = weight * mask[..., None]  # the loss reads real tokens only
    (want * weight).sum().backward()
    (got * weight).sum().backward()
    assert grad_diff(x_plain.grad, x_checkpointed.grad) <= TOLERANCE
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        assert grad_diff(p.grad, q.grad) <= TOLERANCE, name


def grad_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference of two gradients in units of their scale when that exceeds 1 (a
    parameter's gradient sums over every token, so its rounding grows with its size)."""
    return (a - b).abs().max().item() / max(1.0, a.abs().max().item())


# -- the two bugs this matrix was written for (issue 13, item 7) --------------------------------
def test_post_norm_rotary_select_keeps_the_rotary_positions():
    """Post-norm + rotary + ``select=`` once called the last layer's attention without the
    rotary tables (a 0.036 difference from the full pass in the issue's reproduction)."""
    model = make_model("post", rotary=True, causal=False).eval()
    x, mask = inputs()
    with torch.no_grad():
        full, selected = model(x, mask)[:, 0], model(x, mask, select=0)
    assert (full - selected).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("fast", [{"select": 0}, {"unpad": True}])
def test_gradient_checkpointing_keeps_select_and_unpad(fast):
    """Checkpointed blocks were called with (x, mask, rope) only: ``select=0`` returned all
    positions, (B, T, C), and ``unpad=True`` fed packed (N, C) rows to a block that no longer
    knew they were packed."""
    x, mask = inputs()
    plain = make_model("pre", rotary=False, causal=False).train()
    checkpointed = make_model("pre", rotary=False, causal=False, checkpointing=True).train()
    got, want = checkpointed(x, mask, **fast), plain(x, mask)
    if "select" in fast:
        assert got.shape == (BATCH, HIDDEN)
        want = want[:, 0]
    assert max_diff(got, want, mask) <= TOLERANCE


def test_gradient_checkpointing_keeps_the_cache():
    """Checkpointed blocks never saw the KV cache: decoding attended to the new token only."""
    x, mask = inputs()
    plain = make_model("pre", rotary=True, causal=True).train()
    checkpointed = make_model("pre", rotary=True, causal=True, checkpointing=True).train()
    assert max_diff(run(checkpointed, "cache", x, mask), plain(x, mask), mask) <= TOLERANCE
