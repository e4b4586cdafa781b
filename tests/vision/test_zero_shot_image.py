"""zero-shot-image-classify equals transformers' zero-shot-image-classification pipeline on the
same random CLIP weights; image-embed and text-embed on one CLIP folder give CLIP's embeddings
in one space; bad calls are clear errors; contrastive fine_tune / pretrain train through the
Trainer and save/load exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hub
import hub.testing
from hub.errors import ConfigError, DataError, InvalidInputError, ModelLoadError, NotSupportedError
from tests.vision.clip_checkpoints import make_clip, make_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LABELS = ["cat", "dog", "red house", "blue car"]
TOL = 1e-5


def _images(n: int = 3, size: int = 32):
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    make_clip(folder)
    return folder


@pytest.fixture(scope="module")
def reference(clip_folder):
    from transformers import pipeline

    return pipeline("zero-shot-image-classification", model=str(clip_folder), device="cpu")


def _same(ours, theirs):
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    assert np.allclose([r["score"] for r in ours], [r["score"] for r in theirs], atol=TOL)


@pytest.mark.parametrize("template", [None, "a drawing of {}", "{}"])
def test_labels_and_scores_equal_transformers(clip_folder, reference, template):
    ours = hub.load("zero-shot-image-classification", model=str(clip_folder), device="cpu")
    kwargs = {} if template is None else {"hypothesis_template": template}
    images = _images()
    got = ours(images, candidate_labels=LABELS, **kwargs)
    for image, result in zip(images, got):
        _same(result, reference(image, candidate_labels=LABELS, **kwargs))
        assert abs(sum(r["score"] for r in result) - 1) < 1e-5
        assert result.metadata == {"candidates": len(LABELS)}
    _same(ours(images[0], candidate_labels=LABELS[:1], **kwargs),
          reference(images[0], candidate_labels=LABELS[:1], **kwargs))


def test_defaults_given_at_load_and_the_comma_separated_form(clip_folder, reference):
    ours = hub.load("zero-shot-image-classify", model=str(clip_folder), device="cpu", candidate_labels=LABELS)
    image = _images(1)[0]
    _same(ours(image), reference(image, candidate_labels=LABELS))
    _same(ours(image, candidate_labels="cat, dog"), reference(image, candidate_labels=["cat", "dog"]))


def test_image_and_text_embeddings_share_one_space(clip_folder):
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(str(clip_folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(clip_folder))
    images, texts = _images(2), ["a photo of a cat", "document save"]
    image_vectors = torch.tensor(hub.load("image-embed", model=str(clip_folder), device="cpu")(images))
    text_pipe = hub.load("text-embed", model=str(clip_folder), device="cpu")
    text_vectors = torch.tensor(text_pipe(texts))
    assert text_pipe(texts[0]).metadata["normalized"] is True
    with torch.no_grad():
        from transformers import CLIPImageProcessor

        pixels = CLIPImageProcessor.from_pretrained(str(clip_folder))(images=images, return_tensors="pt")
        ref = model(**tokenizer(texts, padding=True, return_tensors="pt"), **pixels)
    assert (image_vectors - ref.image_embeds).abs().max() < 1e-4
    assert (text_vectors - ref.text_embeds).abs().max() < 1e-4
    scale = model.logit_scale.exp().item()
    assert torch.allclose(scale * image_vectors @ text_vectors.T, ref.logits_per_image, atol=1e-4)
    raw = hub.load("image-embed", model=str(clip_folder), device="cpu")(images[0], normalize=False)
    assert abs(float(torch.tensor(raw).norm()) - 1) > 1e-3  # the projection itself is not unit length


def test_another_task_on_a_clip_folder_and_clip_training_through_image_embed_are_refused(clip_folder):
    with pytest.raises(ModelLoadError, match="zero-shot-image-classify"):
        hub.load("image-classify", model=str(clip_folder), device="cpu")
    with pytest.raises(NotSupportedError, match="zero-shot-image-classify"):
        hub.load("image-embed", model=str(clip_folder), device="cpu").fine_tune([(_images(1)[0], "x")] * 2)


def test_a_vision_classifier_is_refused_by_the_zero_shot_task(tmp_path):
    vit = hub.create("image-classify", config={"img_size": 32, "patch_size": 8, "num_layers": 1, "hidden_size": 16,
                                               "num_heads": 2, "labels": ["a", "b"]}, device="cpu")
    vit.save(tmp_path / "vit")
    with pytest.raises(ModelLoadError, match="image-text model"):
        hub.load("zero-shot-image-classify", model=str(tmp_path / "vit"), device="cpu")


@pytest.mark.parametrize("kwargs, match", [
    ({}, r"needs candidate_labels=\[...\]"),
    ({"candidate_labels": []}, "non-empty list"),
    ({"candidate_labels": ["cat", ""]}, r"candidate_labels\[1\]"),
    ({"candidate_labels": ["cat", "cat"]}, r"repeats \['cat'\]"),
    ({"candidate_labels": ["cat"], "hypothesis_template": "a photo"}, r"must be a string holding '\{\}'"),
    ({"candidate_labels": ["cat"], "hypothesis_template": 3}, r"must be a string holding '\{\}'"),
    ({"candidate_labels": ["a", "b", "c"], "max_candidate_labels": 2}, "3 candidate labels, more than the limit of 2"),
    ({"candidate_labels": ["cat " * 40]}, "more than the text tower's 32"),
    ({"candidate_labels": ["cat"], "top_k": 2}, "unknown keyword 'top_k'"),
])
def test_bad_calls_are_clear_errors(clip_folder, kwargs, match):
    pipe = hub.load("zero-shot-image-classify", model=str(clip_folder), device="cpu")
    with pytest.raises(InvalidInputError, match=match):
        pipe(_images(1)[0], **kwargs)


@pytest.mark.parametrize("bad, match", [
    (b"not an image at all", "input 1"),
    ("/no/such/image.png", "input 1"),
    (42, "input 1"),
])
def test_inputs_that_are_not_images_are_clear_errors(clip_folder, bad, match):
    pipe = hub.load("zero-shot-image-classify", model=str(clip_folder), device="cpu")
    with pytest.raises((InvalidInputError, hub.errors.InputTypeError), match=match):
        pipe([_images(1)[0], bad], candidate_labels=LABELS)


TINY = {"vision": {"img_size": 16, "patch_size": 4, "backbone": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                                                  "intermediate_size": 64}},
        "text": {"backbone": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
        "projection_dim": 16}


def _toy_pairs(n: int = 24):
    """Solid-colour squares captioned with their colour: learnable in a few steps."""
    from PIL import Image

    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
    names = list(colours)
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        name = names[i % 4]
        pixels = np.clip(np.array(colours[name]) + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
        pairs.append((Image.fromarray(pixels), [f"a {name} square", f"{name}"]))
    return pairs


def test_contrastive_training_learns_toy_pairs_and_saves_exactly(tmp_path):
    pipe = hub.create("zero-shot-image-classify", config=TINY, tokenizer=make_tokenizer(), device="cpu", seed=0)
    assert pipe.model.text.eos_token_id == pipe.tokenizer.eos_token_id
    pairs = _toy_pairs()
    before = pipe.evaluate([(image, captions[0]) for image, captions in pairs])
    result = pipe.fine_tune(pairs, eval=pairs[:8], epochs=30, batch_size=8, learning_rate=3e-3, seed=0, device="cpu",
                            output_dir=str(tmp_path / "run"), save_checkpoints=False, augment={"hflip": 0.0})
    assert result.best_metric is not None
    after = pipe.evaluate([(image, captions[0]) for image, captions in pairs])
    assert after["image_to_text_r1"] == 1.0 > before["image_to_text_r1"]
    assert after["texts"] == 4 and after["n"] == len(pairs)
    colours = ["red", "green", "blue", "yellow"]
    predicted = [r[0]["label"] for r in pipe([image for image, _ in pairs[:4]], candidate_labels=colours,
                                             hypothesis_template="a {} square")]
    assert predicted == colours
    folder = pipe.save(tmp_path / "saved")
    again = hub.load("zero-shot-image-classify", model=str(folder), device="cpu")
    image = pairs[0][0]
    hub.testing.assert_same(again(image, candidate_labels=colours), pipe(image, candidate_labels=colours))
    small = pipe.save(tmp_path / "int8", quantize=True)
    assert hub.load("zero-shot-image-classify", model=str(small), device="cpu")(
        image, candidate_labels=colours)[0]["label"] == "red"


def test_pretrain_reads_a_csv_of_paths_and_texts(tmp_path):
    pairs = _toy_pairs(8)
    lines = ["path,text"]
    for i, (image, captions) in enumerate(pairs):
        image.save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{captions[0]}")
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    pipe = hub.create("zero-shot-image-classify", config=TINY, tokenizer=make_tokenizer(), device="cpu", seed=0)
    result = pipe.pretrain(str(tmp_path / "pairs.csv"), max_steps=2, batch_size=4, device="cpu",
                           output_dir=str(tmp_path / "run"), save_checkpoints=False)
    assert result.steps == 2 and result.train_examples == 8


@pytest.mark.parametrize("data, match", [
    ([("missing.png", "a caption")], "missing"),
    ([(None, "a caption")] * 2, "item 0"),
    ([("IMAGE", "")] * 2, "non-empty string"),
    ([("IMAGE", ["a", 3])] * 2, "non-empty string"),
    ([("IMAGE", "only one")], "at least two"),
    ([], "empty"),
    ([{"picture": 1}], "item 0"),
])
def test_bad_training_data_is_a_clear_error(tmp_path, data, match):
    _images(1, 16)[0].save(tmp_path / "ok.png")
    data = [tuple(str(tmp_path / "ok.png") if v == "IMAGE" else v for v in item) if isinstance(item, tuple) else item
            for item in data]
    pipe = hub.create("zero-shot-image-classify", config=TINY, tokenizer=make_tokenizer(), device="cpu", seed=0)
    with pytest.raises(DataError, match=match):
        pipe.fine_tune(data, max_steps=1, device="cpu", output_dir=str(tmp_path / "run"))


def test_from_scratch_needs_a_tokenizer_and_a_valid_config():
    with pytest.raises(ConfigError, match="needs tokenizer="):
        hub.create("zero-shot-image-classify", config=TINY, device="cpu")
    with pytest.raises(ConfigError, match="unknown key"):
        hub.create("zero-shot-image-classify", config={**TINY, "projection": 3}, tokenizer=make_tokenizer(),
                   device="cpu")
    with pytest.raises(ConfigError, match="vision.patch_bias"):
        hub.create("zero-shot-image-classify", config={**TINY, "vision": {**TINY["vision"], "patch_bias": True}},
                   tokenizer=make_tokenizer(), device="cpu")
