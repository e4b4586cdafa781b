"""timm VisionTransformer checkpoints (timm's Hugging Face Hub format: config.json with
architecture/model_args/pretrained_cfg + model.safetensors, written by timm's own
``save_for_hf``) converted into Hub's ViT on the shared backbone equal timm (fp32, max abs
difference <= 1e-4) at small random configs; unsupported variants fail with a clear error."""

from __future__ import annotations

import json

import pytest
import torch

from hub.errors import ModelLoadError
from hub.modeling import (
    build_module,
    load_model,
    read_config,
    read_state_dict,
    save_model,
)

timm = pytest.importorskip("timm")

TOL = 1e-4
SMALL = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=5)

# name -> timm VisionTransformer arguments on top of SMALL
CONFIGS = {
    "token": {},
    "avg-fc_norm": dict(global_pool="avg"),
    "layer-scale": dict(init_values=1e-5, embed_dim=64, num_heads=4),
    "registers-no_embed_class": dict(reg_tokens=2, no_embed_class=True),
    "no-class-token-avg-norm": dict(class_token=False, global_pool="avg", fc_norm=False),
    "clip-style-pre_norm": dict(pre_norm=True, qkv_bias=False, proj_bias=False, act_layer="gelu_tanh",
                                mlp_ratio=2.0),
    "rmsnorm-max": dict(norm_layer="rmsnorm", global_pool="max", num_heads=6),
    "avgmax-prefix-nonsquare": dict(img_size=(32, 48), patch_size=(8, 16), global_pool="avgmax",
                                    pool_include_prefix=True, reg_tokens=1, init_values=0.1),
}


def make(folder, arch: str = "vit_tiny_patch16_224", seed: int = 0, label_names=None, **kwargs):
    """A random timm ViT saved exactly as timm publishes to the Hugging Face Hub."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, **kwargs).eval()
    with torch.no_grad():  # move every weight off its init so nothing passes by symmetry
        for name, p in model.named_parameters():
            if name.endswith("gamma"):  # layer scale: O(1) so folding it is really exercised
                p.copy_(1 + 0.5 * torch.randn_like(p))
            else:
                p.add_(torch.randn_like(p) * 0.1)
    model_config = {"label_names": label_names} if label_names else None
    timm.models.save_for_hf(model, str(folder), model_config=model_config, safe_serialization=True)
    return model


def pixels(model, batch: int = 3):
    torch.manual_seed(1)
    return torch.randn(batch, model.patch_embed.proj.in_channels, *model.patch_embed.img_size)


def convert(folder):
    from hub_vision.models.vit import convert_timm_vit

    architecture, config, state = convert_timm_vit(read_config(folder), read_state_dict(folder))
    assert architecture == "vit"
    return build_module(architecture, config, state).eval(), config


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_and_features_equal_timm(tmp_path, name):
    reference = make(tmp_path, **{**SMALL, **CONFIGS[name]})
    assert "model_type" not in json.loads((tmp_path / "config.json").read_text())
    ours, config = convert(tmp_path)
    x = pixels(reference)
    with torch.no_grad():
        expected_hidden = reference.forward_features(x)
        expected = reference.forward_head(expected_hidden)
        out = ours(x)
        hidden = ours.forward_features(x)
        pre_logits = reference.forward_head(expected_hidden, pre_logits=True)
    assert max_diff(hidden, expected_hidden) <= TOL
    assert max_diff(out["logits"], expected) <= TOL
    assert max_diff(out["features"], pre_logits) <= TOL
    assert max_diff(ours.forward_head(hidden), expected) <= TOL
    assert config["num_classes"] == 5 and ours.labels == [f"LABEL_{i}" for i in range(5)]


@pytest.mark.parametrize("pool", ["token", "avg"])
def test_features_model_equals_timm(tmp_path, pool):
    reference = make(tmp_path, **{**SMALL, "num_classes": 0, "global_pool": pool})
    ours, config = convert(tmp_path)
    assert ours.head is None and config["num_classes"] == 0
    x = pixels(reference)
    with torch.no_grad():
        expected, out = reference(x), ours(x)
    assert set(out) == {"features"} and out["features"].shape == (3, 48)
    assert max_diff(out["features"], expected) <= TOL


def test_full_size_vit_tiny_from_a_legacy_config_without_model_args(tmp_path):
    """Older timm exports carry no model_args: the architecture name's defaults apply."""
    reference = make(tmp_path, num_classes=7)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model_args"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours, hub_config = convert(tmp_path)
    assert hub_config["img_size"] == [224, 224] and hub_config["backbone"]["num_layers"] == 12
    assert hub_config["backbone"]["norm_eps"] == 1e-6
    assert hub_config["preprocess"]["mean"] == [0.5, 0.5, 0.5]
    x = pixels(reference, batch=2)
    with torch.no_grad():
        assert max_diff(ours(x)["logits"], reference(x)) <= TOL


def test_label_names_become_labels(tmp_path):
    make(tmp_path, **SMALL, label_names=["cat", "dog", "owl", "eel", "ant"])
    ours, config = convert(tmp_path)
    assert config["labels"] == ours.labels == ["cat", "dog", "owl", "eel", "ant"]


def test_converted_vit_saves_and_reloads_in_hub_format(tmp_path):
    reference = make(tmp_path / "timm", **{**SMALL, "global_pool": "avg", "init_values": 1e-5})
    ours, config = convert(tmp_path / "timm")
    (tmp_path / "hub").mkdir()
    save_model(ours, "vit", config, tmp_path / "hub")
    loaded = load_model(tmp_path / "hub", device="cpu")
    assert loaded.architecture == "vit" and loaded.converted_from is None
    x = pixels(reference)
    with torch.no_grad():
        assert max_diff(loaded.module(x)["logits"], reference(x)) <= TOL


def test_load_model_converts_a_timm_folder(tmp_path):
    reference = make(tmp_path, **SMALL)
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.architecture == "vit" and loaded.converted_from == "timm:vit"
    x = pixels(reference)
    with torch.no_grad():
        assert max_diff(loaded.module(x)["logits"], reference(x)) <= TOL


@pytest.mark.parametrize("kwargs, feature", [
    (dict(qk_norm=True), "qk_norm"),
    (dict(global_pool="map"), r"attention pooling \(global_pool='map'\)"),
    (dict(act_layer="quick_gelu"), "the activation QuickGELU"),
    (dict(scale_mlp_norm=True), "scale_mlp_norm"),
])
def test_unsupported_variant_names_the_feature(tmp_path, kwargs, feature):
    make(tmp_path, **{**SMALL, **kwargs})
    with pytest.raises(ModelLoadError, match=f"uses {feature}.*does not support"):
        convert(tmp_path)


def test_unsupported_model_class_is_refused(tmp_path):
    make(tmp_path, arch="deit_tiny_distilled_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=1,
         num_heads=3, num_classes=5)
    with pytest.raises(ModelLoadError, match="VisionTransformerDistilled"):
        convert(tmp_path)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    make(tmp_path, **SMALL)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_args"]["depth"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"missing \['blocks\.2\."):
        convert(tmp_path)
    config["model_args"].update(depth=2, img_size=[64, 64])
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"'pos_embed' has shape \(1, 17, 48\).*expects \(1, 65, 48\)"):
        convert(tmp_path)


def test_unknown_timm_architecture_is_refused(tmp_path):
    make(tmp_path, **SMALL)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architecture"] = "vit_nonexistent_patch3"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="timm has no architecture 'vit_nonexistent_patch3'"):
        convert(tmp_path)
