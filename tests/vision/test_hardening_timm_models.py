"""Hostile timm configs and torchvision loading (issue 12, items 4 and 18): a config.json's
``model_args`` reach ``timm.create_model`` only as the model class's own keyword arguments,
never as file paths or loading switches; torchvision weights missing offline are a clear
error saying where the file goes."""

from __future__ import annotations

import json
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

import hub
from hub.errors import ConfigError, InputTypeError, InvalidInputError, ModelLoadError, OfflineModelNotCachedError
from hub.modeling import load_model
from tests.vision.helpers import TINY_RESNET, make_timm

timm = pytest.importorskip("timm")
ICONS = Path(__file__).resolve().parents[2] / "plugins" / "hub_vision" / "weights" / "icon-context-resnet"


@pytest.fixture
def no_file_reads(monkeypatch):
    """Fail the test if anything reaches torch.load / timm's checkpoint loaders."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a file was loaded: {args[:1]}")

    import timm.models._builder
    import timm.models._helpers

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(timm.models._helpers, "load_checkpoint", refuse)
    monkeypatch.setattr(timm.models._builder, "load_checkpoint", refuse, raising=False)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", refuse)


def hub_timm_folder(tmp_path: Path, **model_args) -> Path:
    """The shipped timm model (Hub format) with extra model_args in its config.json."""
    folder = tmp_path / "icons"
    shutil.copytree(ICONS, folder)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["config"]["model_args"].update(model_args)
    path.write_text(json.dumps(config))
    return folder


def test_checkpoint_path_in_a_hub_config_is_refused_and_nothing_is_read(tmp_path, no_file_reads):
    """The review's case: checkpoint_path=/etc/passwd made Hub torch.load a local file."""
    folder = hub_timm_folder(tmp_path, checkpoint_path="/etc/passwd")
    with pytest.raises(ModelLoadError, match=r"config\.json': timm config: model_args key 'checkpoint_path' is "
                                             r"refused: it would make timm load or download files"):
        hub.load("image-classify", model=str(folder), device="cpu")


@pytest.mark.parametrize("key, value", [
    ("pretrained", True),
    ("pretrained_cfg_overlay", {"file": "/etc/passwd"}),
    ("pretrained_cfg", {"hf_hub_id": "evil/weights"}),
    ("cache_dir", "/tmp"),
    ("features_only", True),
])
def test_loading_switches_in_model_args_are_refused(tmp_path, no_file_reads, key, value):
    with pytest.raises(ModelLoadError, match=rf"model_args key '{key}' is refused"):
        load_model(hub_timm_folder(tmp_path, **{key: value}))


@pytest.mark.parametrize("key, value", [
    ("act_layer", "/etc/passwd"), ("norm_layer", "~/weights.pth"), ("act_layer", "weights.safetensors"),
    ("block_args", {"file": "../x.bin"}), ("aa_layer", "C:\\x"),
])
def test_path_like_values_are_refused_naming_the_key(tmp_path, no_file_reads, key, value):
    with pytest.raises(ModelLoadError, match=rf"model_args\['{key}'\].* looks like a file path"):
        load_model(hub_timm_folder(tmp_path, **{key: value}))


def test_model_args_outside_the_model_class_are_refused_with_the_close_match(tmp_path):
    with pytest.raises(ConfigError, match=r"model_args 'stem_widht' \(did you mean 'stem_width'\?\) are not "
                                          r"arguments of timm's ResNet \('resnet10t'\); it takes: .*stem_width"):
        load_model(hub_timm_folder(tmp_path, stem_widht=8))


def test_the_shipped_model_args_still_load(tmp_path):
    loaded = load_model(hub_timm_folder(tmp_path))
    assert loaded.architecture == "timm" and loaded.module.num_classes == 6


def test_checkpoint_path_in_a_timm_hub_config_is_refused(tmp_path, no_file_reads):
    """timm's own Hugging Face layout goes through the converter: same rule."""
    make_timm(tmp_path, num_classes=3, **TINY_RESNET)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config.setdefault("model_args", {})["checkpoint_path"] = "/etc/passwd"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"timm config\.json: model_args key 'checkpoint_path' is refused"):
        load_model(tmp_path)


def test_a_timm_vit_config_far_bigger_than_its_weights_is_refused(tmp_path):
    from tests.vision.test_vit_parity import SMALL, make

    make(tmp_path, **SMALL)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config["model_args"]["depth"] = 5000
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"describes a 'vit_tiny_patch16_224' with more than .* tensors, but "
                                             r"its weights hold"):
        load_model(tmp_path)
    config["model_args"]["depth"] = 10**9  # timm would list 10**9 drop-path rates before building a module
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"model_args\['depth'\] = 1,000,000,000 is past the largest size"):
        load_model(tmp_path)


def test_hub_create_refuses_loading_switches_in_model_args(no_file_reads):
    with pytest.raises(ModelLoadError, match=r"model_args key 'pretrained' is refused"):
        hub.create("image-classify", config={"timm_model": "resnet10t", "labels": ["a", "b"],
                                             "model_args": {"pretrained": True}}, device="cpu")
    with pytest.raises(ConfigError, match=r"'timm_model' must name a timm architecture"):
        hub.create("image-classify", config={"timm_model": "resnet_nope", "labels": ["a", "b"]}, device="cpu")


# -- torchvision ----------------------------------------------------------------------------
@pytest.fixture
def offline_torch_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and no network: the download raises URLError."""
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return torch_home


def test_from_torchvision_offline_says_where_the_weights_go(offline_torch_hub):
    import torchvision

    from hub_vision.pipelines.classify import ImageClassificationPipeline

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(OfflineModelNotCachedError) as info:
        ImageClassificationPipeline.from_torchvision("resnet18", weights, device="cpu")
    message = str(info.value)
    cached = offline_torch_hub / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert f"are not in torch's cache ({cached})" in message
    assert "Temporary failure in name resolution" in message
    assert "weights='IMAGENET1K_V1'" in message and weights.url in message


def test_from_torchvision_takes_weights_by_name(offline_torch_hub):
    from hub_vision.pipelines.classify import ImageClassificationPipeline

    with pytest.raises(OfflineModelNotCachedError, match=r"ResNet18_Weights\.IMAGENET1K_V1"):
        ImageClassificationPipeline.from_torchvision("resnet18", "DEFAULT", device="cpu")


@pytest.mark.parametrize("model, weights, error, message", [
    ("resnet18", "IMAGENET9K", InvalidInputError, r"weights 'IMAGENET9K' are not weights of 'resnet18'; use one of "
                                                  r"DEFAULT, IMAGENET1K_V1"),
    ("vgg16", None, InvalidInputError, r"'vgg16' is not a torchvision ResNet builder; known: resnet101"),
    (5, None, InputTypeError, r"takes a torchvision ResNet \(a model object\) or a builder name"),
])
def test_from_torchvision_checks_its_arguments(offline_torch_hub, model, weights, error, message):
    from hub_vision.pipelines.classify import ImageClassificationPipeline

    with pytest.raises(error, match=message):
        ImageClassificationPipeline.from_torchvision(model, weights, device="cpu")


def test_from_torchvision_with_a_cached_file_needs_no_network(offline_torch_hub):
    """A weights file already in torch's cache is used offline (and a damaged one is named)."""
    import torchvision

    from hub_vision.pipelines.classify import ImageClassificationPipeline

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    cached = offline_torch_hub / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    pipe = ImageClassificationPipeline.from_torchvision("resnet18", weights, device="cpu")
    assert torch.equal(pipe.model.model.fc.weight, reference.fc.weight)
    assert len(pipe.labels) == 1000
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"cached weights .*resnet18-f37072fd\.pth cannot be read.*delete it"):
        ImageClassificationPipeline.from_torchvision("resnet18", weights, device="cpu")
