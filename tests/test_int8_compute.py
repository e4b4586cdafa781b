"""int8 compute on CPU (hub.int8_compute): every Linear of each model family becomes an
Int8Linear (text encoder, GPT decoder, ViT, speech encoder, SASRec), outputs stay close to
float32, pipe.metadata["compute"] says what ran, saving writes the storage format, the
default follows the folder's storage, and training dequantises first. Tiny random models."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import hub
import hub.testing
from hub.errors import InvalidInputError, NotSupportedError
from hub.int8_compute import (
    Int8Linear,
    check_quantize_request,
    choose_engine,
    count_int8_layers,
    outlier_split,
    quantize_module,
)
from tests.test_conformance import CLIPS, IMAGES, INTERACTIONS, RECSYS, SPEECH_TINY, TEXT_TINY, TEXTS, VIT, _tokenizer
from tests.text.checkpoints import make_bert_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WORDS = ["the food was great", "awful stale coffee", "tea", "very very good value for the price"]


def linear_count(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Linear) for m in module.modules())


def assert_all_int8(pipe, expected: int) -> None:
    """Every Linear replaced, and the metadata says what ran."""
    assert expected > 0
    assert linear_count(pipe.model) == 0 and count_int8_layers(pipe.model) == expected
    compute = pipe.metadata["compute"]
    assert compute["weights"] == "int8" and compute["activations"].startswith("dynamic int8")
    assert compute["engine"] in torch.backends.quantized.supported_engines
    assert compute["kernel"] == "torch.ops.quantized.linear_dynamic" and compute["linear_layers"] == expected
    assert compute["cpu"] and isinstance(compute["int8_flags"], list)


@pytest.fixture
def checkpoint(tmp_path):
    make_bert_classifier(tmp_path / "ckpt", num_labels=2, max_positions=32)
    return tmp_path / "ckpt"


def scores(results):
    return [{r["label"]: r["score"] for r in ranked} for ranked in results]


# -- the layer ---------------------------------------------------------------------------
def test_int8_linear_is_close_to_float_and_copies_pickles_and_loads_state():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 96), nn.GELU(), nn.Linear(96, 8))
    x = torch.randn(3, 5, 64)
    with torch.inference_mode():
        reference = model(x)
        quantized = copy.deepcopy(model)
        assert quantize_module(quantized) == 2 and linear_count(quantized) == 0
        out = quantized(x)
        assert out.shape == reference.shape and out.dtype == torch.float32
        assert (out - reference).abs().max() < 0.03 * reference.abs().max()
        for clone in (copy.deepcopy(quantized), pickle.loads(pickle.dumps(quantized))):
            assert torch.equal(clone(x), out)
        # the state dict is an nn.Linear's (float weight + bias), loadable both ways
        state = quantized.state_dict()
        assert set(state) == set(model.state_dict()) and all(v.dtype == torch.float32 for v in state.values())
        float_again = copy.deepcopy(model)
        float_again.load_state_dict(state)
        assert (float_again(x) - reference).abs().max() < 0.03 * reference.abs().max()
        quantized.load_state_dict(model.state_dict())
        assert torch.equal(quantized(x), out)
        assert quantized(x.bfloat16()).dtype == torch.bfloat16  # other float inputs are cast back


def test_spreading_an_outlier_column_keeps_the_product_and_cuts_the_error():
    torch.manual_seed(0)
    layer = nn.Linear(128, 32)
    x = torch.randn(50, 128)
    x[:, 7] *= 12  # a "massive" channel, as transformer hidden states have
    split = outlier_split(x.abs().amax(0))
    assert list(split) == [7] and split[7] >= 3
    many = torch.ones(128)
    many[:20] = 100.0  # 20 columns that would each need 34: the extra work stays within 1/16 of the width
    assert sum(n - 1 for n in outlier_split(many).values()) == 128 // 16
    plain = Int8Linear.from_linear(layer, engine=choose_engine(), reduce_range=False)
    spread = Int8Linear(layer.weight, layer.bias, engine=plain.engine, reduce_range=False, split=split)
    with torch.inference_mode():
        reference = layer(x)
        error_plain, error_spread = ((m(x) - reference).abs().mean() for m in (plain, spread))
        assert error_spread < error_plain / 2
        assert torch.equal(spread.unpacked()[0], plain.unpacked()[0])  # same int8 rows, same saved weights
        assert spread.state_dict()["weight"].shape == (32, 128)
        assert torch.equal(copy.deepcopy(spread)(x), spread(x))
    assert outlier_split(torch.ones(128)) == {}


# -- text: encoder classifier ------------------------------------------------------------
def test_text_classify_int8_every_linear_close_and_says_so(checkpoint):
    fp32 = hub.load("text-classify", model=str(checkpoint), device="cpu")
    assert fp32.metadata["compute"] == {"weights": "float32", "activations": "float32",
                                        "reason": "auto: the weights are stored as float"}
    int8 = hub.load("text-classify", model=str(checkpoint), device="cpu", quantize="int8")
    assert_all_int8(int8, linear_count(fp32.model))
    assert int8.metadata["compute"]["reason"] == "quantize='int8'"
    for a, b in zip(scores(fp32(WORDS, top_k=None)), scores(int8(WORDS, top_k=None))):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 0.02 for k in a)
    assert int8.metadata["compute"]["outlier_columns"]["probe"] == "generic English text"


def test_saving_an_int8_pipeline_writes_the_storage_format(checkpoint, tmp_path):
    fp32 = hub.load("text-classify", model=str(checkpoint), device="cpu")
    int8 = hub.load("text-classify", model=str(checkpoint), device="cpu", quantize="int8")
    small_from_float = load_file(fp32.save(tmp_path / "a", quantize=True) / "model.safetensors")
    small_from_int8 = load_file(int8.save(tmp_path / "b", quantize=True) / "model.safetensors")
    assert small_from_float.keys() == small_from_int8.keys()
    for name, tensor in small_from_float.items():
        other = small_from_int8[name]
        if tensor.dtype == torch.int8:  # the int8 rows are exactly the stored ones
            assert torch.equal(tensor, other), name
        elif tensor.dim() == 2 and name.endswith(".weight") and "embeddings" not in name:
            # a Linear too small to be stored as int8 computes rounded to int8 rows: half a step apart
            step = tensor.abs().amax(1, keepdim=True) / 127
            assert ((tensor - other).abs() <= step / 2 + 1e-7).all(), name
        else:
            assert torch.allclose(tensor, other, rtol=1e-6, atol=1e-7), name
    full = load_file(int8.save(tmp_path / "c") / "model.safetensors")  # float: the dequantised rows
    assert not any("packed" in name for name in full) and all(t.is_floating_point() for t in full.values())
    assert json.loads((tmp_path / "c" / "config.json").read_text())["weights_format"] == "float"
    again = hub.load("text-classify", model=str(tmp_path / "c"), device="cpu", quantize="int8")
    assert scores(again(WORDS, top_k=None)) == scores(int8(WORDS, top_k=None))


def test_auto_follows_the_stored_format_and_dtype(checkpoint, tmp_path):
    stored = hub.load("text-classify", model=str(checkpoint), device="cpu").save(tmp_path / "q", quantize=True)
    auto = hub.load("text-classify", model=str(stored), device="cpu")
    assert auto.metadata["compute"]["weights"] == "int8"
    assert auto.metadata["compute"]["reason"] == "auto: the weights are stored as int8, on CPU"
    assert linear_count(auto.model) == 0
    forced = hub.load("text-classify", model=str(stored), device="cpu", quantize=False)
    assert forced.metadata["compute"]["weights"] == "float32" and count_int8_layers(forced.model) == 0
    bf16 = hub.load("text-classify", model=str(stored), device="cpu", dtype="bfloat16")
    assert bf16.metadata["compute"] == {"weights": "bfloat16", "activations": "bfloat16",
                                        "reason": "auto: stored as int8, but dtype=bfloat16 was asked for"}
    # same weights: int8 compute stays close to the dequantised float model
    for a, b in zip(scores(forced(WORDS, top_k=None)), scores(auto(WORDS, top_k=None))):
        assert all(abs(a[k] - b[k]) < 0.02 for k in a)


def test_bad_requests_are_refused_before_loading(checkpoint):
    with pytest.raises(InvalidInputError, match="quantize must be 'int8'.*got 'int4'"):
        hub.load("text-classify", model=str(checkpoint), device="cpu", quantize="int4")
    with pytest.raises(InvalidInputError, match="cannot be combined with dtype='bfloat16'"):
        hub.load("text-classify", model=str(checkpoint), device="cpu", quantize="int8", dtype="bfloat16")
    with pytest.raises(NotSupportedError, match="CPU only.*device='cpu'"):  # no GPU needed to check the rule
        check_quantize_request("int8", device=torch.device("cuda"), dtype=None)
    assert check_quantize_request(None, device=torch.device("cuda"), dtype=None) == "auto"
    with pytest.raises(InvalidInputError, match="quantize must be"):
        hub.create("text-generate", config=TEXT_TINY, tokenizer=_tokenizer("bpe", 300), device="cpu", quantize=1)


def test_fine_tune_dequantises_first_and_trains_in_float(checkpoint, caplog):
    int8 = hub.load("text-classify", model=str(checkpoint), device="cpu", quantize="int8")
    layers = count_int8_layers(int8.model)
    with caplog.at_level("WARNING", logger="hub.int8_compute"):
        int8.fine_tune([("good food", "class_0"), ("awful tea", "class_1")] * 2, max_steps=1, batch_size=2,
                       progress=False, save_checkpoints=False, device="cpu")
    assert f"fine_tune needs float weights; {layers} int8 Linear layers" in caplog.text
    assert count_int8_layers(int8.model) == 0 and linear_count(int8.model) == layers
    assert int8.metadata["compute"]["weights"] == "float32"
    assert all(p.requires_grad for p in int8.model.parameters())


# -- the other families --------------------------------------------------------------------
def _pair(task: str, **kwargs):
    """The same seeded random model twice: float32 and int8."""
    fp32 = hub.create(task, device="cpu", seed=0, **kwargs)
    int8 = hub.create(task, device="cpu", seed=0, quantize="int8", **kwargs)
    assert fp32.metadata["compute"]["weights"] == "float32"
    assert_all_int8(int8, linear_count(fp32.model))
    return fp32, int8


def test_gpt_decoder_logits_close_and_generates():
    tokenizer = _tokenizer("bpe", 300)
    fp32, int8 = _pair("text-generate", config=TEXT_TINY, tokenizer=tokenizer)
    ids = torch.tensor([tokenizer(TEXTS[2])["input_ids"]])
    with torch.inference_mode():
        a, b = fp32.model(ids)["logits"], int8.model(ids)["logits"]
    assert (a - b).abs().max() < 0.05 * a.abs().max()
    out = int8(TEXTS[0], max_new_tokens=4)
    assert isinstance(out["generated_text"], str)


def test_vit_scores_close():
    fp32, int8 = _pair("image-classify", config={**VIT, "labels": ["a", "b"]})
    for a, b in zip(scores(fp32(IMAGES, top_k=None)), scores(int8(IMAGES, top_k=None))):
        assert all(abs(a[k] - b[k]) < 0.02 for k in a)


def test_speech_encoder_scores_close():
    fp32, int8 = _pair("audio-classify", config={**SPEECH_TINY, "labels": ["low", "high"]})
    for a, b in zip(scores(fp32(CLIPS, top_k=None)), scores(int8(CLIPS, top_k=None))):
        assert all(abs(a[k] - b[k]) < 0.02 for k in a)


def test_sasrec_recommendations_close_and_round_trip(tmp_path):
    rec = hub.create("recommend", config=RECSYS, device="cpu", seed=0)
    rec.fine_tune(INTERACTIONS, **hub.testing.TRAIN_ARGS, device="cpu")
    folder = rec.save(tmp_path / "rec", quantize=True)
    fp32 = hub.load("recommend", model=str(folder), device="cpu", quantize=False)
    int8 = hub.load("recommend", model=str(folder), device="cpu")  # auto: stored as int8
    assert_all_int8(int8, linear_count(fp32.model))
    a, b = fp32("u1", k=6), int8("u1", k=6)
    assert {r["item"] for r in a} == {r["item"] for r in b}
    by_item = {r["item"]: r["score"] for r in a}
    assert all(abs(by_item[r["item"]] - r["score"]) < 0.05 * max(1.0, abs(r["score"])) for r in b)
    again = hub.load("recommend", model=str(int8.save(tmp_path / "again", quantize=True)), device="cpu")
    assert [r["item"] for r in again("u1", k=6)] == [r["item"] for r in b]
