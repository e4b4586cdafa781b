"""CNNs through image-classify / image-embed: timm checkpoints in timm's Hugging Face Hub
format (and timm ViTs, converted to the shared backbone) give timm's own probabilities on
timm's own preprocessing; torchvision ResNets give torchvision's; feature maps equal timm's
``features_only`` / ``forward_intermediates``; weights come from the Hub pinned by revision
and offline from the cache; save and reload round-trip exactly."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import hub
from tests.vision.helpers import TINY_RESNET, make_timm, perturb, photo

timm = pytest.importorskip("timm")
TOL = 1e-4

# timm families, each at a small random size: (architecture, create_model arguments)
SMALL_INPUT = {"input_size": (3, 96, 96)}  # timm's preprocessing at 96 px: same code path, less compute
FAMILIES = {
    "resnet": ("resnet18", dict(num_classes=5, pretrained_cfg=SMALL_INPUT)),
    "convnext": ("convnext_atto", dict(num_classes=5, dims=(16, 32, 48, 64), pretrained_cfg=SMALL_INPUT)),
    "efficientnet": ("efficientnet_b0", dict(num_classes=5, pretrained_cfg=SMALL_INPUT)),
    "mobilenetv3": ("mobilenetv3_small_050", dict(num_classes=5)),
    "vit": ("vit_tiny_patch16_224", dict(num_classes=5, img_size=64, embed_dim=48, depth=2, num_heads=3,
                                         pretrained_cfg={"input_size": (3, 64, 64)})),
}


def images(n: int = 3) -> list[Image.Image]:
    return [Image.fromarray(photo(seed, (60 + 7 * seed, 80))) for seed in range(n)]


def timm_probs(model: torch.nn.Module, pics: list[Image.Image]) -> torch.Tensor:
    """timm's documented recipe: resolve_model_data_config + create_transform + model."""
    config = timm.data.resolve_model_data_config(model)
    transform = timm.data.create_transform(**config, is_training=False)
    with torch.no_grad():
        return model(torch.stack([transform(p) for p in pics])).softmax(-1)


def hub_probs(pipe, pics) -> torch.Tensor:
    results = pipe(pics, top_k=None)
    return torch.tensor([[{r["label"]: r["score"] for r in res}[label] for label in pipe.labels]
                         for res in results])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_probabilities_equal_timm(tmp_path, family):
    arch, kwargs = FAMILIES[family]
    reference = make_timm(tmp_path, arch, labels=list("vwxyz"), **kwargs)
    pipe = hub.load("image-classify", model=str(tmp_path), device="cpu")
    assert pipe.metadata["converted_from"] == f"timm:{arch.split('_')[0]}"
    assert pipe.architecture == ("vit" if family == "vit" else "timm")
    assert pipe.labels == list("vwxyz")
    pics = images()
    assert (hub_probs(pipe, pics) - timm_probs(reference, pics)).abs().max().item() <= TOL
    top = pipe(pics[0], top_k=2)
    assert len(top) == 2 and top[0]["score"] >= top[1]["score"]


@pytest.mark.parametrize("family", ["resnet", "convnext", "vit"])
def test_embeddings_and_feature_maps_equal_timm(tmp_path, family):
    arch, kwargs = FAMILIES[family]
    reference = make_timm(tmp_path, arch, **kwargs)
    embed = hub.load("image-embed", model=str(tmp_path), device="cpu")
    pic = images(1)[0]
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(reference))
    x = transform(pic)[None]
    with torch.no_grad():
        pooled = reference.forward_head(reference.forward_features(x), pre_logits=True)[0]
        expected_maps = reference.forward_intermediates(x, intermediates_only=True)
        if family == "resnet":  # the same levels as timm's features_only model
            features = timm.create_model(arch, pretrained=False, features_only=True)
            missing, unexpected = features.load_state_dict(reference.state_dict(), strict=False)
            assert not missing and unexpected == ["fc.weight", "fc.bias"]
            for ours, theirs in zip(expected_maps, features.eval()(x)):
                assert torch.equal(ours, theirs)
    vector = torch.tensor(embed(pic))
    assert (vector - pooled).abs().max().item() <= TOL
    unit = torch.tensor(embed(pic, normalize=True))
    assert abs(unit.norm().item() - 1) < 1e-5
    maps = embed.feature_maps(pic)
    assert len(maps) == len(expected_maps)
    for ours, theirs in zip(maps, expected_maps):
        assert ours.shape == theirs[0].shape
        assert (ours - theirs[0]).abs().max().item() <= TOL
    extractor = embed.features_only(indices=2)  # the last two levels, batched, for a downstream head
    with torch.no_grad():
        last_two = extractor(x)
    assert [m.shape[1:] for m in last_two] == [m.shape[1:] for m in expected_maps[-2:]]


def test_from_the_hub_pinned_by_revision_then_offline(tmp_path, fake_hub, monkeypatch):
    first = make_timm(tmp_path / "v1", seed=1, num_classes=3, labels=["cat", "dog", "owl"], **TINY_RESNET)
    make_timm(tmp_path / "v2", seed=2, num_classes=3, labels=["cat", "dog", "owl"], **TINY_RESNET)
    read = lambda folder: {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    old = fake_hub.add_commit("timm/tiny-resnet.test", read(tmp_path / "v1"))
    fake_hub.add_commit("timm/tiny-resnet.test", read(tmp_path / "v2"))

    pinned = hub.load("image-classify", model="timm/tiny-resnet.test", revision=old, device="cpu")
    assert pinned.metadata["commit"] == old and pinned.metadata["converted_from"] == "timm:resnet10t"
    pics = images(2)
    assert (hub_probs(pinned, pics) - timm_probs(first, pics)).abs().max().item() <= TOL
    latest = hub.load("image-classify", model="timm/tiny-resnet.test", device="cpu")
    assert latest.metadata["commit"] != old

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = hub.load("image-classify", model="timm/tiny-resnet.test", revision=old, device="cpu")
    assert again(pics, top_k=None) == pinned(pics, top_k=None)


def test_save_and_reload_round_trip(tmp_path):
    make_timm(tmp_path / "timm", num_classes=3, labels=["a", "b", "c"], **TINY_RESNET)
    pipe = hub.load("image-classify", model=str(tmp_path / "timm"), device="cpu")
    saved = pipe.save(tmp_path / "saved")
    config = json.loads((saved / "config.json").read_text())
    assert config["architecture"] == "timm" and config["task"] == "image-classify"
    assert config["config"]["preprocess"]["input_size"] == [3, 48, 48]
    assert config["config"]["labels"] == ["a", "b", "c"]
    assert (saved / "README.md").read_text().count("image-classify") >= 1
    again = hub.load("image-classify", model=str(saved), device="cpu")
    pics = images(2)
    assert again(pics, top_k=None) == pipe(pics, top_k=None)


def test_torchvision_resnet_equals_torchvision(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    from hub_vision.pipelines.classify import ImageClassificationPipeline

    torch.manual_seed(0)
    model = perturb(torchvision.models.resnet18(num_classes=3))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1  # its transforms only; nothing downloaded
    pipe = ImageClassificationPipeline.from_torchvision(model, weights, labels=["x", "y", "z"], device="cpu")
    assert pipe.model.config["torchvision_model"] == "resnet18"
    pics = images()
    transform = weights.transforms()
    with torch.no_grad():
        expected = model(torch.stack([transform(p) for p in pics])).softmax(-1)
    assert (hub_probs(pipe, pics) - expected).abs().max().item() <= TOL
    saved = pipe.save(tmp_path / "tv")
    again = hub.load("image-classify", model=str(saved), device="cpu")
    assert again.architecture == "torchvision-resnet"
    assert again(pics, top_k=None) == pipe(pics, top_k=None)
    maps = again.feature_maps(pics[0])
    assert [m.shape[0] for m in maps] == [64, 64, 128, 256, 512]
    by_name = ImageClassificationPipeline.from_torchvision("resnet18", None, device="cpu")
    assert by_name.model.num_classes == 1000 and by_name.model.config["preprocess"]["crop_pct"] == 0.875


def test_bfloat16_inference_agrees(tmp_path):
    make_timm(tmp_path, "resnet18", num_classes=5, labels=list("abcde"))
    fp32 = hub.load("image-classify", model=str(tmp_path), device="cpu")
    bf16 = hub.load("image-classify", model=str(tmp_path), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    pics = images(4)
    assert (hub_probs(bf16, pics) - hub_probs(fp32, pics)).abs().max().item() < 0.05
    conv = fp32.model.model.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_unsupported_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    make_timm(tmp_path, num_classes=3, **TINY_RESNET)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_classes"] = config["model_args"]["num_classes"] = 7
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.errors.ModelLoadError, match="fc.weight"):
        hub.load("image-classify", model=str(tmp_path), device="cpu")
    config["architecture"] = "resnet50_that_does_not_exist"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.errors.HubError, match="resnet50_that_does_not_exist"):
        hub.load("image-classify", model=str(tmp_path), device="cpu")


def test_push_to_hub_then_load_by_repo_id(tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    make_timm(tmp_path / "timm", num_classes=3, labels=["a", "b", "c"], **TINY_RESNET)
    pipe = hub.load("image-classify", model=str(tmp_path / "timm"), device="cpu")
    pipe.push_to_hub("me/tiny-vision")
    files = fake_hub.files_at("me/tiny-vision")
    assert set(files) == {"config.json", "model.safetensors", "README.md"}
    assert json.loads(files["config.json"])["architecture"] == "timm"
    again = hub.load("image-classify", model="me/tiny-vision", device="cpu")
    assert again.metadata["commit"] == fake_hub.repos["me/tiny-vision"].resolve("main")
    pics = images(2)
    assert again(pics, top_k=None) == pipe(pics, top_k=None)
    embed = hub.load("image-embed", model="me/tiny-vision", device="cpu")
    assert len(embed(pics[0])) == 64
