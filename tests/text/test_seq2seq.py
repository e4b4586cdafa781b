"""Encoder-decoders on the shared backbone (BART, mBART, Marian, T5 v1.0 and v1.1): logits and
generated tokens equal transformers' on the same weights, and the seq2seq tasks
(summarize, translate, text2text-generate) equal ``model.generate`` + ``tokenizer.decode``."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import DataError, InputTypeError, InvalidInputError
from hub.modeling import load_model
from hub_text.models.seq2seq_generation import generate_seq2seq, generation_config
from tests.text.seq2seq_checkpoints import FAMILIES, make_seq2seq

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the quick brown fox", "to be or not to be, that is the question", "a single step"]
#: greedy, then beam search with every option transformers' generate shares with Hub
SETTINGS = [
    {"max_new_tokens": 12},
    {"max_new_tokens": 12, "num_beams": 3},
    {"max_new_tokens": 15, "num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 2, "min_new_tokens": 5,
     "early_stopping": True},
    {"max_new_tokens": 10, "num_beams": 2, "length_penalty": -1.0, "no_repeat_ngram_size": 3},
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (folder, transformers model, tokenizer)."""
    made = {}
    for family in FAMILIES:
        folder = tmp_path_factory.mktemp(family)
        model, tokenizer = make_seq2seq(folder, family)
        made[family] = (folder, model, tokenizer)
    return made


def _batch(tokenizer, texts):
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def _reference_tokens(model, tokenizer, ids, mask, settings) -> list[list[int]]:
    """transformers' generated ids after the start token, each cut after its first </s>."""
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **settings)
    rows = []
    for row in out[:, 1:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[:row.index(tokenizer.eos_token_id) + 1]
        rows.append(row)
    return rows


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_equal_transformers_on_a_padded_batch(checkpoints, family):
    folder, reference, tokenizer = checkpoints[family]
    ours = load_model(folder).module
    ids, mask = _batch(tokenizer, TEXTS)
    targets = torch.randint(4, len(tokenizer), (3, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=targets).logits
        got = ours(ids, mask, decoder_input_ids=targets)["logits"]
    assert (got - want).abs().max().item() <= 1e-4


@pytest.mark.parametrize("family", ["bart", "t5"])
def test_cached_decoding_equals_the_full_pass(checkpoints, family):
    """Prefill + one token at a time on the KV cache (the memory's keys/values computed once)
    gives the logits of one teacher-forced pass."""
    folder, _, tokenizer = checkpoints[family]
    model = load_model(folder).module
    ids, mask = _batch(tokenizer, TEXTS)
    targets = torch.randint(4, len(tokenizer), (3, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        memory = model.encode(ids, mask)
        full = model.decode(targets, memory, mask)
        cache = model.new_cache(3, 7)
        steps = [model.decode(targets[:, :3], memory, mask, cache=cache)]
        steps += [model.decode(targets[:, t:t + 1], memory, mask, cache=cache) for t in range(3, 7)]
    assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-4
    assert all(k is not None for k in cache.cross_keys)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "beam3", "beam4-lp2-ngram2-min5-early", "beam2-lp-1"])
def test_generation_equals_transformers_token_for_token(checkpoints, family, settings):
    folder, reference, tokenizer = checkpoints[family]
    ours = load_model(folder).module
    ids, mask = _batch(tokenizer, TEXTS)
    want = _reference_tokens(reference, tokenizer, ids, mask, settings)
    got = generate_seq2seq(ours, ids, mask, generation_config(ours, dict(settings)),
                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    assert got == want


@pytest.mark.parametrize("task,key", [("summarize", "summary_text"), ("translate", "translation_text"),
                                      ("text2text-generate", "generated_text")])
@pytest.mark.parametrize("settings", SETTINGS[:3], ids=["greedy", "beam3", "beam4-options"])
def test_tasks_equal_generate_and_decode(checkpoints, task, key, settings):
    """Each task's text equals transformers' model.generate + tokenizer.decode (transformers 5
    has no summarization / translation pipelines left to compare with)."""
    family = {"summarize": "bart", "translate": "marian", "text2text-generate": "t5"}[task]
    folder, reference, tokenizer = checkpoints[family]
    pipe = hub.load(task, model=str(folder), device="cpu")
    results = pipe(TEXTS, batch_size=2, **settings)
    for text, result in zip(TEXTS, results):
        ids, mask = _batch(tokenizer, [text])
        out = reference.generate(input_ids=ids, attention_mask=mask, do_sample=False, **settings)
        assert result == {key: tokenizer.decode(out[0], skip_special_tokens=True)}
        assert result.metadata["num_tokens"] == ids.shape[1] and not result.metadata["truncated"]
    assert pipe(TEXTS[1], **settings) == results[1]  # one input, one result


def test_checkpoint_generation_defaults_and_t5_task_prefixes(tmp_path):
    """Keywords left out take the checkpoint's generation defaults; T5's task_specific_params
    give summarize its prefix and settings, and translation_xx_to_yy (a name pattern the
    registry resolves to translate with src_lang/tgt_lang) its own."""
    params = {"summarization": {"prefix": "summarize: ", "num_beams": 3, "max_length": 9, "no_repeat_ngram_size": 2},
              "translation_en_to_de": {"prefix": "translate English to German: ", "max_length": 7}}
    model, tokenizer = make_seq2seq(tmp_path, "t5", task_specific_params=params)
    text = "the coffee was fresh"

    def expected(prefix, **settings):
        ids, mask = _batch(tokenizer, [prefix + text])
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **settings)
        return tokenizer.decode(out[0], skip_special_tokens=True)

    summary = hub.load("summarization", model=str(tmp_path), device="cpu")(text)
    assert summary == {"summary_text": expected("summarize: ", num_beams=3, max_new_tokens=8,
                                                 no_repeat_ngram_size=2)}
    assert summary.metadata["new_tokens"] <= 8
    pipe = hub.load("translation_en_to_de", model=str(tmp_path), device="cpu")
    assert pipe.call_defaults == {"src_lang": "en", "tgt_lang": "de"}
    assert pipe(text) == {"translation_text": expected("translate English to German: ", max_new_tokens=6)}
    plain = hub.load("translate", model=str(tmp_path), device="cpu")
    assert plain(text, src_lang="en", tgt_lang="de") == pipe(text)
    assert plain(text, max_new_tokens=6) == {"translation_text": expected("", max_new_tokens=6)}


def test_names_resolve_and_every_task_names_a_catalogue_default():
    registry = hub.get_registry()
    for name, task in (("summarization", "summarize"), ("translation", "translate"),
                       ("text2text-generation", "text2text-generate"), ("translation_fr_to_en", "translate")):
        assert registry.resolve(name)[0].name == task
    assert registry.pattern_match("translation_fr_to_en") == ("translate", {"src_lang": "fr", "tgt_lang": "en"})
    assert registry.pattern_match("translation_french_to_en") is None
    defaults = {"summarize": "bart-large-cnn", "translate": "opus-mt-en-de", "text2text-generate": "t5-small"}
    for task, model in defaults.items():
        assert registry.task(task).default_model == model and registry.models[model].task == task
        assert registry.models[model].source.startswith("hf://") and registry.models[model].architecture == "seq2seq-lm"


def test_bad_input_is_a_clear_error(checkpoints):
    folder = checkpoints["bart"][0]
    pipe = hub.load("summarize", model=str(folder), device="cpu")
    with pytest.raises(InvalidInputError, match="input 1 is an empty string"):
        pipe(["fine", "  "])
    with pytest.raises(InputTypeError, match="input 0"):
        pipe([3])
    with pytest.raises(InvalidInputError, match="unknown keyword 'num_beam' for summarize; did you mean 'num_beams'"):
        pipe("hi", num_beam=2)
    with pytest.raises(InvalidInputError, match="num_beams"):
        pipe("hi", num_beams=0)
    with pytest.raises(InvalidInputError, match="min_new_tokens .* more than max_new_tokens"):
        pipe("hi", max_new_tokens=3, min_new_tokens=5)
    with pytest.raises(InvalidInputError, match="length_penalty"):
        pipe("hi", length_penalty=float("nan"))
    with pytest.raises(InvalidInputError, match="exceeds the model's"):
        pipe("hi", max_new_tokens=1000)
    translate = hub.load("translate", model=str(folder), device="cpu")
    with pytest.raises(InvalidInputError, match="both src_lang and tgt_lang"):
        translate("hi", src_lang="en")
    with pytest.raises(InvalidInputError, match="unknown keyword"):
        hub.load("translation_en_to_de", model=str(checkpoints["t5"][0]), device="cpu", src_lnag="en")
    with pytest.raises(DataError):
        pipe.fine_tune([{"text": "a"}], max_steps=1)


def test_long_sources_are_truncated_and_said_so(checkpoints):
    folder = checkpoints["bart"][0]
    pipe = hub.load("summarize", model=str(folder), device="cpu")
    result = pipe(" ".join(["fortune favours the bold"] * 80), max_new_tokens=4)
    assert result.metadata["truncated"] and result.metadata["num_tokens"] == 128


def test_fine_tune_lowers_the_loss_and_round_trips(tmp_path):
    """20 teacher-forced steps (label smoothing on) on a tiny copy task lower the loss; the
    trained pipeline saves and reloads to identical outputs."""
    from hub_text.pretrain import train_tokenizer

    words = "cat dog fox bird tree road sun moon".split()
    pairs = [(f"{a} {b}", f"{a} {b}") for a in words for b in words[:4]]
    tokenizer = train_tokenizer([p[0] for p in pairs], "bpe", vocab_size=300)
    pipe = hub.create("text2text-generate", config={"num_layers": 1, "hidden_size": 32, "num_heads": 2,
                                                    "dropout": 0.0, "max_positions": 32},
                      tokenizer=tokenizer, device="cpu", seed=0)
    result = pipe.fine_tune(pairs, eval=pairs[:8], max_steps=20, batch_size=8, learning_rate=3e-3,
                            label_smoothing=0.1, output_dir=str(tmp_path / "run"), save_checkpoints=False,
                            progress=False, eval_steps=10)
    losses = [r["eval_loss"] for r in result.history if "eval_loss" in r]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    before = pipe(["cat dog", "sun moon"], max_new_tokens=4, num_beams=2)
    again = hub.load("text2text-generate", model=str(pipe.save(tmp_path / "saved")), device="cpu")
    assert again(["cat dog", "sun moon"], max_new_tokens=4, num_beams=2) == before
    with pytest.raises(InvalidInputError, match="label_smoothing"):
        pipe.fine_tune(pairs, label_smoothing=1.0, max_steps=1)


def test_t5_with_its_own_head_uses_it_unscaled(checkpoints, tmp_path):
    """T5 v1.1 / Flan checkpoints saved before transformers 5 keep an untied ``lm_head.weight``
    (tie_word_embeddings false): Hub reads it and does not rescale the decoder output."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    folder, reference, tokenizer = checkpoints["t5v11"]
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (folder / name).exists():
            shutil.copy(folder / name, tmp_path / name)
    state = load_file(str(folder / "model.safetensors"))
    head = torch.randn(state["shared.weight"].shape, generator=torch.Generator().manual_seed(5))
    save_file({**state, "lm_head.weight": head}, str(tmp_path / "model.safetensors"))
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("scale_decoder_outputs", None)
    (tmp_path / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}))
    ours = load_model(tmp_path).module
    assert not ours.tied and ours.output_scale == 1.0
    ids, mask = _batch(tokenizer, TEXTS)
    targets = torch.randint(4, len(tokenizer), (3, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=targets,
                           output_hidden_states=True).decoder_hidden_states[-1]
        got = ours(ids, mask, decoder_input_ids=targets)["logits"]
    assert (got - hidden @ head.T).abs().max().item() <= 1e-4


def test_quantized_save_loads(checkpoints, tmp_path):
    pipe = hub.load("summarize", model=str(checkpoints["bart"][0]), device="cpu")
    folder = pipe.save(tmp_path / "q", quantize=True)
    again = hub.load("summarize", model=str(folder), device="cpu")
    assert set(again(TEXTS[0], max_new_tokens=5)) == {"summary_text"}


@pytest.mark.parametrize("config, message", [
    ({"num_heads": 0}, r"'num_heads' must be an integer >= 1, got 0"),
    ({"num_layer": 2}, r"Unknown seq2seq config key 'num_layer'"),
    ({"decoder": {"num_layer": 2}}, r"Unknown decoder config key\(s\) \['num_layer'\]"),
    ({"encoder": {"hidden_size": 64}, "hidden_size": 32, "num_heads": 2}, r"encoder.hidden_size \(64\) and "
                                                                          r"decoder.hidden_size \(32\) must be equal"),
])
def test_from_scratch_configs_are_checked(config, message):
    from hub.errors import ConfigError
    from hub_text.pretrain import train_tokenizer

    tokenizer = train_tokenizer(["a b c", "b c d"], "bpe", vocab_size=300)
    with pytest.raises(ConfigError, match=message):
        hub.create("text2text-generate", config=config, tokenizer=tokenizer, device="cpu")


def test_foreign_configs_that_do_not_fit_their_weights_are_refused(checkpoints, tmp_path):
    import json
    import shutil

    from hub.errors import ModelLoadError

    folder = checkpoints["bart"][0]
    for name in ("config.json", "model.safetensors"):
        shutil.copy(folder / name, tmp_path / name)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "encoder_layers": 10**9}))
    with pytest.raises(ModelLoadError, match="encoder_layers=1,000,000,000 but the weights hold 2"):
        load_model(tmp_path)
    t5 = checkpoints["t5"][0]
    config = json.loads((t5 / "config.json").read_text())
    shutil.copy(t5 / "model.safetensors", tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({**config, "feed_forward_proj": "gated-tanh"}))
    with pytest.raises(ModelLoadError, match="feed_forward_proj 'gated-tanh' is not supported"):
        load_model(tmp_path)
