"""transformers' CLIPModel converted into Hub's CLIP on the shared backbone equals transformers
(fp32, max abs difference <= 1e-4) on image embeddings, text embeddings and logits_per_image,
at small random configs (quick_gelu and gelu, both end-of-text pooling rules, padded text
batches); broken checkpoints are clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from hub.errors import ModelLoadError
from hub.modeling import load_model
from tests.vision.clip_checkpoints import CAPTIONS, make_clip

TOL = 1e-4


def _inputs(folder, batch: int = 3, channels: int = 3, size: int = 32):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    text = tokenizer(CAPTIONS[:4] + ["an unseen zebra wordx"], padding=True, return_tensors="pt")
    torch.manual_seed(1)
    return torch.randn(batch, channels, size, size), text


@pytest.mark.parametrize("hidden_act,legacy_eos", [("quick_gelu", False), ("gelu", True), ("quick_gelu", True)])
def test_embeddings_and_logits_equal_transformers(tmp_path, hidden_act, legacy_eos):
    reference = make_clip(tmp_path, hidden_act=hidden_act, legacy_eos=legacy_eos)
    loaded = load_model(tmp_path)
    assert loaded.architecture == "clip" and loaded.converted_from == "transformers:clip"
    ours = loaded.module
    pixels, text = _inputs(tmp_path)
    assert text["attention_mask"].min() == 0  # the batch is padded: the mask and EOS rule matter
    with torch.no_grad():
        ref = reference(input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=pixels)
        image = ours.embed_images(pixels)
        words = ours.embed_text(text["input_ids"], text["attention_mask"])
        out = ours(pixel_values=pixels, input_ids=text["input_ids"], attention_mask=text["attention_mask"])
        ref_image = reference.get_image_features(pixel_values=pixels).pooler_output
        ref_text = reference.get_text_features(**text).pooler_output
    assert (image - ref_image).abs().max() <= TOL
    assert (words - ref_text).abs().max() <= TOL
    assert (out["image_embeds"] - ref.image_embeds).abs().max() <= TOL
    assert (out["text_embeds"] - ref.text_embeds).abs().max() <= TOL
    assert out["logits"].shape == ref.logits_per_image.shape == (3, 5)
    assert (out["logits"] - ref.logits_per_image).abs().max() <= TOL
    assert (out["logits_per_text"] - ref.logits_per_text).abs().max() <= TOL


def test_preprocessing_comes_from_the_image_processor(tmp_path):
    make_clip(tmp_path)
    config = load_model(tmp_path).module.config
    assert config["preprocess"]["input_size"] == [3, 32, 32]
    assert config["preprocess"]["interpolation"] == "bicubic"
    assert config["preprocess"]["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_hub_save_reloads_the_same_model(tmp_path):
    from hub.modeling import save_model

    make_clip(tmp_path / "hf")
    first = load_model(tmp_path / "hf").module
    (tmp_path / "hub").mkdir()
    save_model(first, "clip", first.config, tmp_path / "hub")
    again = load_model(tmp_path / "hub").module
    pixels, text = _inputs(tmp_path / "hf")
    with torch.no_grad():
        assert torch.equal(first.embed_images(pixels), again.embed_images(pixels))
        assert torch.equal(first.embed_text(text["input_ids"], text["attention_mask"]),
                           again.embed_text(text["input_ids"], text["attention_mask"]))


def test_a_checkpoint_with_missing_or_extra_layers_is_refused(tmp_path):
    make_clip(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision_config"]["num_hidden_layers"] = 7
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="num_hidden_layers=7 but the weights hold 2"):
        load_model(tmp_path)


def test_an_unknown_activation_is_refused(tmp_path):
    make_clip(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["text_config"]["hidden_act"] = "mish"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="hidden_act='mish'"):
        load_model(tmp_path)
