"""open_clip's CLIP layout converted into Hub's CLIP equals open_clip (fp32, max abs difference
<= 1e-4) on image embeddings, text embeddings and logits, on small random models built from
custom configs (QuickGELU and exact GELU, which open_clip picks by ``quick_gelu``; argmax and
eos pooling), saved as the Hugging Face Hub stores them (open_clip_config.json +
open_clip_model.safetensors, which open_clip's own ``local-dir:`` loader reads back); the
folder loads through hub.load, and a live open_clip model converts from its modules;
OpenAI's tokenizer gives open_clip's ids; what is not OpenAI's layout is refused by name."""

from __future__ import annotations

import json

import pytest
import torch

open_clip = pytest.importorskip("open_clip", reason="needs open_clip_torch (pip install 'hub-sdk[clip]')")

import hub  # noqa: E402
from hub.errors import ModelLoadError  # noqa: E402
from hub_vision.models.open_clip import load_open_clip_folder, openai_clip_tokenizer  # noqa: E402

TOL = 1e-4
VOCAB = 49408  # OpenAI's BPE, so open_clip's own tokenizer runs on the same model


def model_cfg(quick_gelu: bool = True, pool_type: str = "argmax", **text: object) -> dict:
    return {"embed_dim": 24, "quick_gelu": quick_gelu,
            "vision_cfg": {"layers": 2, "width": 48, "head_width": 16, "mlp_ratio": 1.5, "patch_size": 8,
                           "image_size": 32},
            "text_cfg": {"context_length": 20, "vocab_size": VOCAB, "width": 32, "heads": 4, "layers": 2,
                         "pool_type": pool_type, **text}}


def make_open_clip(folder, cfg: dict, seed: int = 0):
    """A random open_clip CLIP (weights moved off their init), saved as open_clip saves for the
    HF Hub; returns the model in eval mode."""
    from open_clip.constants import OPENAI_DATASET_MEAN as OPENAI_MEAN
    from open_clip.constants import OPENAI_DATASET_STD as OPENAI_STD
    from open_clip.model import CLIP
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = CLIP(**{k: v for k, v in cfg.items()})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    model.visual.image_mean, model.visual.image_std = OPENAI_MEAN, OPENAI_STD  # as create_model sets them
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    save_config_for_hf(model, folder / "open_clip_config.json", model_config=cfg)
    return model


def _inputs(context: int = 20):
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=context)
    ids = tokenizer(["a photo of a cat", "document save", "an unseen zebra on the road at night"])
    torch.manual_seed(1)
    return torch.randn(2, 3, 32, 32), ids


@pytest.mark.parametrize("quick_gelu", [True, False])
def test_embeddings_and_logits_equal_open_clip(tmp_path, quick_gelu):
    reference = make_open_clip(tmp_path, model_cfg(quick_gelu))
    loaded = load_open_clip_folder(tmp_path)
    assert loaded.architecture == "clip" and loaded.converted_from == "open_clip:clip"
    ours = loaded.module
    assert ours.config["vision"]["quick_gelu"] is quick_gelu and ours.config["text"]["quick_gelu"] is quick_gelu
    pixels, ids = _inputs()
    with torch.no_grad():
        ref_image, ref_text, ref_scale = reference(pixels, ids)  # normalised embeddings, exp(logit_scale)
        image = ours.embed_images(pixels)
        words = ours.embed_text(ids, (ids != 0).long())
        out = ours(pixel_values=pixels, input_ids=ids, attention_mask=(ids != 0).long())
        raw_image, raw_text = reference.encode_image(pixels), reference.encode_text(ids)
    assert (image - raw_image).abs().max() <= TOL
    assert (words - raw_text).abs().max() <= TOL
    assert (out["image_embeds"] - ref_image).abs().max() <= TOL
    assert (out["text_embeds"] - ref_text).abs().max() <= TOL
    logits = ref_scale * ref_image @ ref_text.t()
    assert out["logits"].shape == logits.shape == (2, 3)
    assert (out["logits"] - logits).abs().max() <= TOL


def test_the_activation_matters(tmp_path):
    """The same weights with the other GELU give other embeddings: the flag is carried, not guessed."""
    reference = make_open_clip(tmp_path, model_cfg(quick_gelu=True))
    config = json.loads((tmp_path / "open_clip_config.json").read_text())
    config["model_cfg"]["quick_gelu"] = False
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    pixels, _ = _inputs()
    with torch.no_grad():
        assert (load_open_clip_folder(tmp_path).module.embed_images(pixels)
                - reference.encode_image(pixels)).abs().max() > 1e-3


def test_eos_pooling_equals_open_clip(tmp_path):
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=20)
    reference = make_open_clip(tmp_path, model_cfg(pool_type="eos", eos_id=tokenizer.eot_token_id))
    _, ids = _inputs()
    with torch.no_grad():
        assert (load_open_clip_folder(tmp_path).module.embed_text(ids) - reference.encode_text(ids)).abs().max() <= TOL


def test_the_folder_is_open_clips_own_and_hub_load_runs_it(tmp_path):
    """open_clip reads the folder back itself (local-dir:), and hub.load's zero-shot pipeline
    scores as open_clip does with its own tokenizer and preprocessing."""
    from PIL import Image

    reference = make_open_clip(tmp_path, model_cfg())
    again, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{tmp_path}")
    pixels, ids = _inputs()
    with torch.no_grad():
        assert torch.allclose(again.encode_image(pixels), reference.encode_image(pixels))
    pipe = hub.load("zero-shot-image-classify", model=str(tmp_path), device="cpu")
    assert pipe.metadata["converted_from"] == "open_clip:clip"
    labels = ["cat", "dog", "document save"]
    template = "a photo of {}"
    image = Image.fromarray((torch.rand(40, 52, 3) * 255).to(torch.uint8).numpy())
    result = pipe(image, candidate_labels=labels, hypothesis_template=template)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=20)
    with torch.no_grad():
        img = torch.nn.functional.normalize(again.encode_image(preprocess(image)[None]), dim=-1)
        txt = torch.nn.functional.normalize(again.encode_text(tokenizer([template.format(x) for x in labels])), dim=-1)
        probs = (again.logit_scale.exp() * img @ txt.t()).softmax(-1)[0]
    expected = sorted(zip(probs.tolist(), labels), key=lambda p: -p[0])
    assert [r["label"] for r in result] == [label for _, label in expected]
    assert [r["score"] for r in result] == pytest.approx([s for s, _ in expected], abs=1e-4)
    pipe.save(tmp_path / "hub")  # Hub's own format from here on, with the tokenizer written out
    assert [r["label"] for r in hub.load("zero-shot-image-classify", model=str(tmp_path / "hub"), device="cpu")(
        image, candidate_labels=labels, hypothesis_template=template)] == [r["label"] for r in result]


def test_openai_tokenizer_gives_open_clips_ids():
    ours = openai_clip_tokenizer()
    theirs = open_clip.get_tokenizer("ViT-B-32")
    texts = ["a photo of a cat", "Document-Save!", "network wireless signal 42", "naïve café, emoji 🙂"]
    expected = theirs(texts)
    for text, row in zip(texts, expected):
        length = int((row != 0).sum())
        assert ours(text)["input_ids"] == row[:length].tolist()


def test_what_is_not_openai_clips_layout_is_refused(tmp_path):
    make_open_clip(tmp_path, model_cfg())
    config = json.loads((tmp_path / "open_clip_config.json").read_text())
    config["model_cfg"]["vision_cfg"]["ls_init_value"] = 1e-5
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="vision_cfg.ls_init_value"):
        load_open_clip_folder(tmp_path)
    config["model_cfg"]["vision_cfg"].pop("ls_init_value")
    config["model_cfg"]["init_logit_bias"] = -10
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="init_logit_bias"):
        load_open_clip_folder(tmp_path)


def test_missing_or_extra_weights_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    make_open_clip(tmp_path, model_cfg())
    path = tmp_path / "open_clip_model.safetensors"
    state = load_file(str(path))
    save_file({**state, "logit_bias": torch.zeros(1)}, str(path))
    with pytest.raises(ModelLoadError, match="logit_bias"):
        load_open_clip_folder(tmp_path)
    save_file({k: v for k, v in state.items() if k != "ln_final.weight"}, str(path))
    with pytest.raises(ModelLoadError, match="lack 'ln_final.weight'"):
        load_open_clip_folder(tmp_path)
    config = json.loads((tmp_path / "open_clip_config.json").read_text())
    config["model_cfg"]["text_cfg"]["layers"] = 5
    save_file(state, str(path))
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="layers=5 but the weights hold 2"):
        load_open_clip_folder(tmp_path)


def test_a_live_open_clip_model_becomes_a_pipeline(tmp_path):
    """open_clip.create_model_and_transforms's model, converted from its modules (no config
    file): the same scores as open_clip; its weights are copied, not shared."""
    from PIL import Image

    from hub_vision.models.open_clip import model_config_of, pipeline_from_open_clip

    make_open_clip(tmp_path, model_cfg(quick_gelu=False))
    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{tmp_path}")
    model.eval()
    cfg = model_config_of(model)
    assert cfg["quick_gelu"] is False and cfg["vision_cfg"]["head_width"] == 16 and cfg["text_cfg"]["heads"] == 4
    pipe = pipeline_from_open_clip(model, device="cpu")
    image = Image.fromarray((torch.rand(36, 30, 3) * 255).to(torch.uint8).numpy())
    labels = ["cat", "dog", "house"]
    result = pipe(image, candidate_labels=labels, hypothesis_template="a photo of a {}")
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=20)
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(preprocess(image)[None]), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(tokenizer([f"a photo of a {x}" for x in labels])), dim=-1)
        probs = (model.logit_scale.exp() * img @ txt.t()).softmax(-1)[0].tolist()
    assert {r["label"]: r["score"] for r in result} == pytest.approx(dict(zip(labels, probs)), abs=1e-4)
    with torch.no_grad():
        model.logit_scale.fill_(0.0)
    assert float(pipe.model.logit_scale.detach()) != 0.0  # a copy


def test_a_model_that_is_not_openai_clips_layout_is_refused():
    from open_clip.model import CLIP

    from hub_vision.models.open_clip import model_config_of

    cfg = model_config_of(CLIP(**model_cfg()))
    assert cfg["text_cfg"]["pool_type"] == "argmax"
    attentional = CLIP(**{**model_cfg(), "vision_cfg": {**model_cfg()["vision_cfg"], "attentional_pool": True}})
    with pytest.raises(ModelLoadError, match="image tower"):
        model_config_of(attentional)
    with pytest.raises(ModelLoadError, match="not Sequential"):
        model_config_of(torch.nn.Sequential())


def test_the_pickled_weights_of_older_uploads_load_weights_only(tmp_path):
    """open_clip_pytorch_model.bin (older HF uploads) is read with weights_only=True; the same model."""
    reference = make_open_clip(tmp_path, model_cfg())
    (tmp_path / "open_clip_model.safetensors").unlink()
    torch.save(reference.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    pixels, _ = _inputs()
    with torch.no_grad():
        assert (load_open_clip_folder(tmp_path).module.embed_images(pixels)
                - reference.encode_image(pixels)).abs().max() <= TOL
    (tmp_path / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        load_open_clip_folder(tmp_path)
