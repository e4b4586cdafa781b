"""Every fast path of the shared Transformer equals its plain (reference) pass.

The plain pass is ``model(x, padding_mask)``: every position through every block, no
packing, no cache, no recomputation. The fast paths promise the same arithmetic with
less work, so each must agree with it (fp32, max abs difference <= 1e-5) for every
block layout the backbone offers:

    norm position {pre, post} x positions {rotary, none, T5 relative bias} x causal {on, off}
    x cross-attention {off, on (an encoder memory with its own padding)}
    x {unpad, select, unpad + select, cache (prefill + token-by-token decode, causal
       only), gradient checkpointing alone and with unpad / select / cache}

(rotary with cross-attention is left out: no family combines them, and each is covered
apart.) With cross-attention the cache also holds the memory's keys/values, computed once.

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
MEMORY_LENGTHS = (5, 2, 4)  # the encoder memory of cross-attention cases: its own padding
SELECT = 2              # a real token in every row, not the first (so causal masking matters)
PREFILL = 3             # cache: tokens of the first call, then one token per call
TOLERANCE = 1e-5

INFERENCE_MODES = ("unpad", "select", "unpad+select", "cache")
MODES = INFERENCE_MODES + ("checkpointing", "checkpointing+unpad", "checkpointing+select", "checkpointing+cache")
POSITIONS = ("rope", "norope", "relbias")
CASES = [
    pytest.param(norm, positions, causal, cross, mode,
                 id=f"{norm}-{positions}-{'causal' if causal else 'bidir'}-{'cross-' if cross else ''}{mode}")
    for norm, positions, causal, cross, mode in itertools.product(("pre", "post"), POSITIONS, (True, False),
                                                                 (False, True), MODES)
    if (causal or "cache" not in mode)  # a KV cache only exists for causal decoding
    and not (cross and positions == "rope")
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def make_model(norm_position: str, rotary: str | bool, causal: bool, checkpointing: bool = False,
               cross: bool = False) -> Transformer:
    """A tiny stack with seeded, perturbed weights (non-trivial norms, so that pre- and
    post-norm differ); the same arguments but ``checkpointing`` give identical weights.
    ``rotary``: the positions, "rope", "norope" or "relbias" (True/False: rope/norope)."""
    positions = ("rope" if rotary else "norope") if isinstance(rotary, bool) else rotary
    torch.manual_seed(0)
    config = TransformerConfig(hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS, intermediate_size=48,
                               norm_position=norm_position, norm_eps=1e-5, dropout=0.0, attention_dropout=0.0,
                               causal=causal, rotary_dim=4 if positions == "rope" else 0,
                               relative_attention_buckets=8 if positions == "relbias" else 0,
                               relative_attention_max_distance=6, cross_attention=cross,
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


def memory_inputs() -> dict[str, torch.Tensor]:
    """An encoder memory (B, S, C) and its padding mask (B, S), for cross-attention stacks."""
    gen = torch.Generator().manual_seed(3)
    longest = max(MEMORY_LENGTHS)
    return {"memory": torch.randn(BATCH, longest, HIDDEN, generator=gen),
            "memory_mask": torch.tensor([[1] * n + [0] * (longest - n) for n in MEMORY_LENGTHS])}


def run(model: Transformer, mode: str, x: torch.Tensor, mask: torch.Tensor, **memory: torch.Tensor
        ) -> torch.Tensor:
    """The model's output in ``mode``, laid out as the plain pass's (B, T, C) or, with
    select, (B, C)."""
    if mode == "plain":
        return model(x, mask, **memory)
    if mode == "unpad":
        return model(x, mask, unpad=True, **memory)
    if mode == "select":
        return model(x, mask, select=SELECT, **memory)
    if mode == "unpad+select":
        return model(x, mask, unpad=True, select=SELECT, **memory)
    assert mode == "cache", mode
    config = model.config
    cache = KVCache(config.num_layers, BATCH, config.num_heads, LENGTH, config.head_dim)
    steps = [model(x[:, :PREFILL], mask[:, :PREFILL], cache=cache, **memory)]  # prefill: (B, PREFILL, C)
    for t in range(PREFILL, LENGTH):  # decode: one (B, 1, C) step each
        steps.append(model(x[:, t:t + 1], mask[:, :t + 1], cache=cache, **memory))
    return torch.cat(steps, 1)


def reference(full: torch.Tensor, mode: str) -> torch.Tensor:
    return full[:, SELECT] if "select" in mode else full


def max_diff(got: torch.Tensor, want: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest difference at real tokens (padding positions carry nothing to compare)."""
    assert got.shape == want.shape, (tuple(got.shape), tuple(want.shape))
    if got.ndim == 3:
        got, want = got[mask.bool()], want[mask.bool()]
    return (got - want).abs().max().item()


@pytest.mark.parametrize("norm_position,positions,causal,cross,mode", CASES)
def test_fast_path_equals_plain_pass(norm_position, positions, causal, cross, mode):
    x, mask = inputs()
    memory = memory_inputs() if cross else {}
    base = mode.removeprefix("checkpointing").lstrip("+") or "plain"
    if not mode.startswith("checkpointing"):
        model = make_model(norm_position, positions, causal, cross=cross).eval()
        with torch.no_grad():
            want = reference(model(x, mask, **memory), base)
            got = run(model, base, x, mask, **memory)
        assert max_diff(got, want, mask) <= TOLERANCE
        return

    plain = make_model(norm_position, positions, causal, cross=cross).train()
    checkpointed = make_model(norm_position, positions, causal, checkpointing=True, cross=cross).train()
    x_plain, x_checkpointed = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = reference(plain(x_plain, mask, **memory), base)
    got = run(checkpointed, base, x_checkpointed, mask, **memory)
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


# -- cross-attention: the memory's keys/values, the cache and beam reordering ---------------
def test_cross_attention_cache_computes_the_memory_keys_once():
    """Decoding with a cache computes each layer's memory keys/values on the prefill and
    reuses them for every later step (the outputs equal the plain pass: the matrix above)."""
    model = make_model("pre", "relbias", causal=True, cross=True).eval()
    x, mask = inputs()
    calls = []
    for layer in model.layers:
        original = layer.cross.memory_kv
        layer.cross.memory_kv = lambda memory, original=original: calls.append(1) or original(memory)
    with torch.no_grad():
        run(model, "cache", x, mask, **memory_inputs())
    assert len(calls) == LAYERS  # once per layer, not once per step


def test_cache_reorder_follows_the_chosen_rows():
    """Beam search continues each beam from the row it came from: after ``reorder(rows)`` the
    next steps equal a plain pass over the inputs whose prefixes were reordered."""
    model = make_model("post", "relbias", causal=True, cross=True).eval()
    x, mask = inputs()
    memory = memory_inputs()
    rows = torch.tensor([2, 0, 0])
    config = model.config
    cache = KVCache(config.num_layers, BATCH, config.num_heads, LENGTH, config.head_dim)
    with torch.no_grad():
        model(x[:, :PREFILL], mask[:, :PREFILL], cache=cache, **memory)
        cache.reorder(rows)
        steps = [model(x[:, t:t + 1], torch.ones(BATCH, t + 1), cache=cache,
                       memory=memory["memory"][rows], memory_mask=memory["memory_mask"][rows])
                 for t in range(PREFILL, LENGTH)]
        mixed = torch.cat([x[rows, :PREFILL], x[:, PREFILL:]], 1)
        want = model(mixed, None, memory=memory["memory"][rows], memory_mask=memory["memory_mask"][rows])
    assert (torch.cat(steps, 1) - want[:, PREFILL:]).abs().max().item() <= TOLERANCE


def test_relative_bias_is_one_table_for_the_stack_and_matches_t5_buckets():
    """The T5 bucket function on known offsets (the values transformers' ``_relative_position_bucket``
    gives),
    and one bias table for the whole stack (T5 keeps it in the first layer only)."""
    from hub.backbone.relative_position import relative_position_bucket

    offsets = torch.tensor([-200, -20, -3, -1, 0, 1, 3, 20, 200])
    assert relative_position_bucket(offsets, bidirectional=True, num_buckets=32, max_distance=128).tolist() == \
        [15, 10, 3, 1, 0, 17, 19, 26, 31]
    assert relative_position_bucket(offsets, bidirectional=False, num_buckets=32, max_distance=128).tolist() == \
        [31, 17, 3, 1, 0, 0, 0, 0, 0]
    model = make_model("pre", "relbias", causal=False)
    tables = [n for n, _ in model.named_parameters() if "relative" in n]
    assert tables == ["relative_bias.embedding.weight"]


def test_cross_attention_block_needs_memory():
    model = make_model("pre", "norope", causal=True, cross=True)
    x, mask = inputs()
    with pytest.raises(ValueError, match="memory="):
        model(x, mask)
