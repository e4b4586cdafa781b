"""The patch front end and Hub's ViT built from scratch (no timm involved)."""

from __future__ import annotations

import pytest
import torch

from hub.errors import ConfigError
from hub_vision.models.patches import PatchEmbedding


def test_patch_embedding_layout():
    torch.manual_seed(0)
    embed = PatchEmbedding(img_size=(16, 24), patch_size=8, in_chans=3, hidden_size=12, reg_tokens=2)
    embed.reset_parameters()
    assert embed.grid_size == (2, 3) and embed.num_patches == 6 and embed.num_prefix_tokens == 3
    assert embed.pos_embed.shape == (1, 9, 12)
    x = torch.randn(4, 3, 16, 24)
    out = embed(x)  # (B, 1 + 2 + 6, C)
    assert out.shape == (4, 9, 12)
    patches = embed.proj(x).flatten(2).transpose(1, 2)
    assert torch.allclose(out[:, 3:], patches + embed.pos_embed[:, 3:])
    assert torch.allclose(out[:, 0], (embed.cls_token + embed.pos_embed[:, :1])[0].expand(4, -1))

    late = PatchEmbedding(16, 8, 3, 12, class_token=True, no_embed_class=True)
    assert late.pos_embed.shape == (1, 4, 12)
    late.reset_parameters()
    out = late(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 5, 12) and torch.equal(out[:, 0], late.cls_token[0].expand(2, -1))

    bare = PatchEmbedding(16, 8, 3, 12, class_token=False, position="none")
    assert bare.pos_embed is None and bare(torch.randn(1, 3, 16, 16)).shape == (1, 4, 12)
    with pytest.raises(ValueError, match="does not match"):
        embed(torch.randn(1, 3, 16, 16))


def test_vit_from_scratch_trains_and_pools():
    from hub_vision.models.vit import build_vit

    config = {"img_size": 32, "patch_size": 8, "labels": ["a", "b", "c"], "global_pool": "token",
              "backbone": {"hidden_size": 24, "num_layers": 2, "num_heads": 3, "intermediate_size": 48}}
    torch.manual_seed(0)
    model = build_vit(config)
    assert model.num_classes == 3 and model.labels == ["a", "b", "c"]
    assert model.fc_norm is None and not isinstance(model.encoder.final_norm, torch.nn.Identity)
    x = torch.randn(2, 3, 32, 32)
    out = model(x, labels=torch.tensor([0, 2]))
    assert out["logits"].shape == (2, 3) and out["loss"].requires_grad
    out["loss"].backward()
    model.eval()
    with torch.no_grad():  # the select=0 shortcut equals pooling the full sequence
        assert torch.allclose(model(x)["logits"], model.forward_head(model.forward_features(x)), atol=1e-5)

    avg = build_vit({**config, "global_pool": "avg", "labels": None, "num_classes": 0})
    assert avg.fc_norm is not None and isinstance(avg.encoder.final_norm, torch.nn.Identity)
    assert avg.eval()(x)["features"].shape == (2, 24)


@pytest.mark.parametrize("bad, match", [
    ({"global_pool": "map"}, "global_pool"),
    ({"global_pool": "token", "class_token": False}, "class token"),
    ({"num_classes": 4}, "3 labels"),
    ({"backbone": {"hidden_size": 24, "num_heads": 3, "norm_position": "post"}}, "pre-norm"),
])
def test_vit_config_errors(bad, match):
    from hub_vision.models.vit import build_vit

    config = {"img_size": 32, "patch_size": 8, "labels": ["a", "b", "c"],
              "backbone": {"hidden_size": 24, "num_layers": 1, "num_heads": 3, "intermediate_size": 48}}
    with pytest.raises(ConfigError, match=match):
        build_vit({**config, **bad})
