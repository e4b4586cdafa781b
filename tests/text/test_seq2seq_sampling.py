"""Sampling and several sequences per input in the encoder-decoder tasks: under the same torch
seed, Hub's tokens equal transformers' ``generate(do_sample=True, ...)`` token for token
(sampling, beam sampling), beam search's ``num_return_sequences`` gives transformers' beams
in its order with its ``sequences_scores``, and the task results have one shape for all."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from hub.modeling import load_model
from hub_text.models.seq2seq_generation import generate_seq2seq, generation_config
from tests.text.seq2seq_checkpoints import make_seq2seq

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the quick brown fox", "to be or not to be, that is the question", "a single step"]
SETTINGS = {
    "sample": {"max_new_tokens": 12, "do_sample": True, "top_k": 0},
    "sample-t0.7-k20-p0.9": {"max_new_tokens": 12, "do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.9},
    "sample-p0.8-n3": {"max_new_tokens": 12, "do_sample": True, "top_k": 0, "top_p": 0.8, "num_return_sequences": 3},
    "beam4-n3": {"max_new_tokens": 12, "num_beams": 4, "num_return_sequences": 3},
    "beam4-n4-lp2-ngram2": {"max_new_tokens": 12, "num_beams": 4, "num_return_sequences": 4, "length_penalty": 2.0,
                            "no_repeat_ngram_size": 2},
    "beam-sample3-n2": {"max_new_tokens": 12, "num_beams": 3, "do_sample": True, "top_k": 0,
                        "num_return_sequences": 2},
    "beam-sample3-t1.5-k10-p0.9": {"max_new_tokens": 12, "num_beams": 3, "do_sample": True, "top_k": 10,
                                   "top_p": 0.9, "temperature": 1.5},
    # top_k leaves fewer candidates than the 2 * num_beams drawn: torch still draws them, as in transformers
    "beam-sample3-k2": {"max_new_tokens": 6, "num_beams": 3, "do_sample": True, "top_k": 2},
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (folder, transformers model, tokenizer)."""
    made = {}
    for family in ("bart", "t5", "marian"):
        folder = tmp_path_factory.mktemp(family)
        model, tokenizer = make_seq2seq(folder, family)
        made[family] = (folder, model, tokenizer)
    return made


@pytest.fixture(scope="module")
def converted(checkpoints):
    """family -> Hub's converted model (loaded once; generation does not change it)."""
    return {family: load_model(folder).module for family, (folder, _, _) in checkpoints.items()}


def _reference(model, tokenizer, texts, settings, seed):
    """transformers' ids after the start token (each cut after its first </s>) and its beam
    scores, after torch.manual_seed(seed)."""
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    out = model.generate(**enc, output_scores=True, return_dict_in_generate=True, **settings)
    rows = []
    for row in out.sequences[:, 1:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[:row.index(tokenizer.eos_token_id) + 1]
        rows.append(row)
    scores = getattr(out, "sequences_scores", None)
    return rows, (scores.tolist() if scores is not None else None), out.sequences


def _ours(model, tokenizer, texts, settings, **kwargs):
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    return generate_seq2seq(model, enc["input_ids"], enc["attention_mask"], generation_config(model, dict(settings)),
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            return_scores=True, **kwargs)


@pytest.mark.parametrize("family", ["bart", "t5", "marian"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_tokens_equal_transformers_under_the_same_seed(checkpoints, converted, family, name):
    """Same torch seed, same tokens: the global RNG (torch.manual_seed before both), a
    ``seed=`` of the call, and a ``generator=`` all draw what transformers draws."""
    _, reference, tokenizer = checkpoints[family]
    ours = converted[family]
    settings = SETTINGS[name]
    for seed in ((0, 1) if settings.get("do_sample") else (0,)):  # beam search draws nothing
        want, want_scores, _ = _reference(reference, tokenizer, TEXTS, settings, seed)
        assert len(want) == len(TEXTS) * settings.get("num_return_sequences", 1)
        torch.manual_seed(seed)
        got, scores = _ours(ours, tokenizer, TEXTS, settings)
        assert got == want
        if settings.get("do_sample"):
            assert _ours(ours, tokenizer, TEXTS, {**settings, "seed": seed})[0] == want
            torch.manual_seed(seed + 100)  # the call's own generator, not the global RNG
            assert _ours(ours, tokenizer, TEXTS, settings, generator=torch.Generator().manual_seed(seed))[0] == want
        if want_scores is not None:  # beam search: transformers' sequences_scores, best first
            assert max(abs(a - b) for a, b in zip(scores, want_scores)) <= 1e-5
            for i in range(len(TEXTS)):
                group = scores[i * len(scores) // len(TEXTS):(i + 1) * len(scores) // len(TEXTS)]
                assert group == sorted(group, reverse=True)
        else:
            assert scores == [None] * len(got)


def test_distributional_facts(checkpoints, converted):
    """What must hold for any RNG: top_k=1 and a tiny top_p are greedy; a seeded call repeats;
    another seed draws other tokens; temperature near 0 is greedy."""
    tokenizer, ours = checkpoints["bart"][2], converted["bart"]
    greedy = _ours(ours, tokenizer, TEXTS, {"max_new_tokens": 12})[0]
    for settings in ({"top_k": 1}, {"top_k": 0, "top_p": 1e-6}, {"top_k": 0, "temperature": 1e-4}):
        assert _ours(ours, tokenizer, TEXTS, {"max_new_tokens": 12, "do_sample": True, **settings})[0] == greedy
    sample = {"max_new_tokens": 12, "do_sample": True, "top_k": 0, "num_return_sequences": 4}
    first = _ours(ours, tokenizer, TEXTS, {**sample, "seed": 7})[0]
    assert _ours(ours, tokenizer, TEXTS, {**sample, "seed": 7})[0] == first
    assert _ours(ours, tokenizer, TEXTS, {**sample, "seed": 8})[0] != first
    assert len({tuple(row) for row in first}) > 1  # the samples of one text are independent draws


def test_top_p_keeps_the_nucleus(checkpoints, converted):
    """Every first token drawn with top_p lies in the smallest set of best tokens whose
    probability reaches top_p (computed from transformers' first-step logits)."""
    _, reference, tokenizer = checkpoints["bart"]
    ours = converted["bart"]
    enc = tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        start = torch.tensor([[reference.config.decoder_start_token_id]])
        probs = reference(**enc, decoder_input_ids=start).logits[0, -1].softmax(-1)
    ordered, order = probs.sort(descending=True)
    size = int((ordered.cumsum(0) < 0.5).sum()) + 1
    nucleus = set(order[:size].tolist())
    assert 1 < size < len(probs) // 2
    firsts = _ours(ours, tokenizer, TEXTS[:1], {"max_new_tokens": 2, "do_sample": True, "top_k": 0, "top_p": 0.5,
                                                 "num_return_sequences": 64, "seed": 3})[0]
    drawn = {row[0] for row in firsts}
    assert drawn <= nucleus and len(drawn) > 1


def test_tasks_return_n_results_per_input(checkpoints):
    """One input with num_return_sequences=n: a list of n results (transformers' beams in
    its order, each with its score); a list of inputs: a list of such lists; sampling with
    seed=s equals generate after torch.manual_seed(s)."""
    folder, reference, tokenizer = checkpoints["marian"]
    pipe = hub.load("translate", model=str(folder), device="cpu")
    settings = {"max_new_tokens": 10, "num_beams": 4, "num_return_sequences": 3}
    results = pipe(TEXTS, batch_size=2, **settings)
    assert len(results) == len(TEXTS)
    for text, group in zip(TEXTS, results):
        _, scores, sequences = _reference(reference, tokenizer, [text], settings, 0)
        assert group == [{"translation_text": tokenizer.decode(s, skip_special_tokens=True)} for s in sequences]
        assert [r.metadata["score"] for r in group] == pytest.approx(scores, abs=1e-5)
        assert group.metadata["num_tokens"] == len(tokenizer(text)["input_ids"])
    assert pipe(TEXTS[1], **settings) == results[1]
    sample = {"max_new_tokens": 10, "do_sample": True, "top_k": 0, "num_return_sequences": 2}
    _, _, sequences = _reference(reference, tokenizer, [TEXTS[0]], sample, 5)
    drawn = pipe(TEXTS[0], seed=5, **sample)
    assert drawn == [{"translation_text": tokenizer.decode(s, skip_special_tokens=True)} for s in sequences]
    assert "score" not in drawn[0].metadata
    torch.manual_seed(5)
    assert pipe(TEXTS[0], **sample) == drawn  # no seed: torch's global RNG, as transformers
    summarize = hub.load("summarize", model=str(checkpoints["bart"][0]), device="cpu")
    one = summarize(TEXTS[0], max_new_tokens=8, do_sample=True, top_k=0, seed=1)
    assert set(one) == {"summary_text"} and summarize(TEXTS[0], max_new_tokens=8, do_sample=True, top_k=0,
                                                      seed=1) == one
    batch = summarize(TEXTS, max_new_tokens=8, do_sample=True, top_k=0, seed=1, num_return_sequences=2)
    assert [len(group) for group in batch] == [2, 2, 2]
    assert summarize(TEXTS, max_new_tokens=8, do_sample=True, top_k=0, seed=1, num_return_sequences=2) == batch


@pytest.mark.parametrize("settings, message", [
    ({"num_beams": 2, "num_return_sequences": 3}, r"num_return_sequences \(3\) is more than num_beams \(2\)"),
    ({"num_return_sequences": 2}, r"num_return_sequences=2 needs beam search .* or sampling"),
    ({"num_return_sequences": 0}, r"num_return_sequences"),
    ({"do_sample": True, "temperature": 0}, r"temperature.*do_sample=False for greedy"),
    ({"do_sample": True, "temperature": -1.0}, r"temperature"),
    ({"do_sample": True, "top_p": 0.0}, r"top_p"),
    ({"do_sample": True, "top_p": 1.5}, r"top_p"),
    ({"do_sample": True, "top_k": -1}, r"top_k"),
    ({"do_sample": True, "top_k": 2.5}, r"top_k"),
    ({"do_sample": "yes"}, r"do_sample"),
    ({"do_sample": True, "seed": "x"}, r"seed"),
    ({"do_sample": True, "seed": -1}, r"seed"),
    ({"do_smaple": True}, r"unknown keyword 'do_smaple' for text2text-generate; did you mean 'do_sample'"),
])
def test_bad_options_are_clear_errors(checkpoints, settings, message):
    pipe = hub.load("text2text-generate", model=str(checkpoints["t5"][0]), device="cpu")
    with pytest.raises(InvalidInputError, match=message):
        pipe("hello", max_new_tokens=3, **settings)


def test_a_step_with_nothing_to_draw_is_a_clear_error(checkpoints, converted):
    """When the processors rule out every token (here a model's own processor), sampling
    raises a HubError, not torch's multinomial RuntimeError."""
    tokenizer, ours = checkpoints["bart"][2], converted["bart"]

    def ban_all(sequences, scores, length):
        return torch.full_like(scores, float("-inf"))

    for beams in (1, 2):
        with pytest.raises(InvalidInputError, match="every token of a step was ruled out"):
            _ours(ours, tokenizer, TEXTS, {"max_new_tokens": 4, "num_beams": beams, "do_sample": True},
                  logits_processor=ban_all)


def test_a_checkpoint_that_samples_by_default(tmp_path):
    """A generation_config.json with do_sample (and no top_k: transformers' 50) makes the
    task sample by default, as generate does on that checkpoint."""
    model, tokenizer = make_seq2seq(tmp_path, "bart")
    generation = model.generation_config
    generation.do_sample, generation.temperature, generation.top_p, generation.max_length = True, 0.9, 0.95, 12
    generation.save_pretrained(str(tmp_path))
    pipe = hub.load("summarize", model=str(tmp_path), device="cpu")
    enc = tokenizer(TEXTS[:1], return_tensors="pt")
    for seed in (0, 1):
        torch.manual_seed(seed)
        want = tokenizer.decode(model.generate(**enc)[0], skip_special_tokens=True)
        torch.manual_seed(seed)
        assert pipe(TEXTS[0]) == {"summary_text": want}
    assert pipe.model.config["generation"]["top_k"] == 50
