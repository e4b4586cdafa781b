"""The shared backbone against torch's own nn.TransformerEncoder on the same weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hub.backbone import TokenEmbedding, Transformer, TransformerConfig, sinusoidal_positions
from hub.errors import ConfigError


def reference_stack(ours: Transformer, config: TransformerConfig) -> nn.TransformerEncoder:
    """torch.nn.TransformerEncoder with our weights copied in."""
    layer = nn.TransformerEncoderLayer(
        config.hidden_size, config.num_heads, config.intermediate_size, dropout=0.0,
        activation="gelu" if config.activation == "gelu" else "relu", layer_norm_eps=config.norm_eps,
        batch_first=True, norm_first=config.norm_position == "pre")
    final = nn.LayerNorm(config.hidden_size, eps=config.norm_eps) if config.norm_position == "pre" else None
    ref = nn.TransformerEncoder(layer, config.num_layers, norm=final, enable_nested_tensor=False)
    with torch.no_grad():
        for theirs, mine in zip(ref.layers, ours.layers):
            theirs.self_attn.in_proj_weight.copy_(mine.attn.qkv.weight)
            theirs.self_attn.in_proj_bias.copy_(mine.attn.qkv.bias)
            theirs.self_attn.out_proj.weight.copy_(mine.attn.out.weight)
            theirs.self_attn.out_proj.bias.copy_(mine.attn.out.bias)
            theirs.linear1.load_state_dict(mine.mlp.fc1.state_dict())
            theirs.linear2.load_state_dict(mine.mlp.fc2.state_dict())
            theirs.norm1.load_state_dict(mine.norm1.state_dict())
            theirs.norm2.load_state_dict(mine.norm2.state_dict())
        if final is not None:
            final.load_state_dict(ours.final_norm.state_dict())
    return ref.eval()


@pytest.mark.parametrize("norm_position", ["pre", "post"])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_matches_torch_transformer_encoder_with_padding(norm_position, activation):
    torch.manual_seed(0)
    config = TransformerConfig(hidden_size=30, num_layers=2, num_heads=5, intermediate_size=44,
                               activation=activation, norm_position=norm_position, norm_eps=1e-5,
                               dropout=0.0, attention_dropout=0.0)
    ours = Transformer(config).eval()
    with torch.no_grad():  # non-trivial norms so the test can tell norm placements apart
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ref = reference_stack(ours, config)
    x = torch.randn(3, 7, 30)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 1 + [0] * 6])
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=~mask.bool())
        got = ours(x, mask)
    valid = mask.bool()
    assert (got - expected)[valid].abs().max().item() <= 1e-5


def test_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                                          dropout=0.0, attention_dropout=0.0)).eval()
    x = torch.randn(1, 5, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], 1)
    with torch.no_grad():
        alone = model(x)
        with_pad = model(padded, torch.tensor([[1] * 5 + [0] * 3]))
    assert (alone - with_pad[:, :5]).abs().max().item() <= 1e-5


def test_causal_stack_ignores_the_future():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32,
                                          norm_position="pre", causal=True, dropout=0.0,
                                          attention_dropout=0.0)).eval()
    x = torch.randn(2, 6, 16)
    changed = x.clone()
    changed[:, 4:] = torch.randn(2, 2, 16)
    with torch.no_grad():
        a, b = model(x), model(changed)
        padded = model(x, torch.tensor([[1] * 6, [1] * 4 + [0] * 2]))
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6) and not torch.allclose(a[:, 4:], b[:, 4:])
    assert torch.allclose(padded[1, :4], a[1, :4], atol=1e-5)


def test_sinusoidal_positions_follow_the_paper():
    table = sinusoidal_positions(50, 8)
    for pos in (0, 1, 17, 49):
        for i in range(4):
            angle = pos / (10000 ** (2 * i / 8))
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    emb = TokenEmbedding(10, 8, position="sinusoidal", norm=False, dropout=0.0).eval()
    ids = torch.tensor([[3, 3, 3]])
    assert torch.allclose(emb(ids)[0] - emb.tokens.weight[3], table[:3], atol=1e-6)


def test_too_long_input_and_bad_config_are_clear_errors():
    emb = TokenEmbedding(10, 8, max_positions=4)
    with pytest.raises(ValueError, match="exceeds the model's maximum of 4 positions"):
        emb(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        TransformerConfig(hidden_size=10, num_heads=3)
    with pytest.raises(ConfigError, match="Unknown backbone config key"):
        TransformerConfig.from_dict({"hidden": 3})


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    config = TransformerConfig(hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32, dropout=0.0,
                               attention_dropout=0.0, norm_position="pre", causal=True, rotary_dim=8)
    plain = Transformer(config).train()
    checkpointed = Transformer(TransformerConfig(**{**config.to_dict(), "gradient_checkpointing": True})).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 16)
    grads = []
    for model in (plain, checkpointed):
        model.zero_grad()
        model(x, torch.tensor([[1] * 5, [1] * 3 + [0] * 2])).pow(2).mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


def test_rotary_attention_depends_on_relative_positions_only():
    from hub.backbone.rotary import apply_rotary, rotary_tables

    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq: int, pk: int) -> float:
        cq, sq = rotary_tables(torch.tensor([pq]), 8, 10000.0, torch.float32)
        ck, sk = rotary_tables(torch.tensor([pk]), 8, 10000.0, torch.float32)
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum().item()

    assert score(7, 3) == pytest.approx(score(24, 20), abs=1e-5)
    assert score(7, 3) != pytest.approx(score(7, 4), abs=1e-3)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                                          dropout=0.0, attention_dropout=0.0, norm_position="pre",
                                          causal=True, activation="swiglu", norm="rmsnorm",
                                          rotary_dim=8)).eval()
    x = torch.randn(2, 9, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-4)
