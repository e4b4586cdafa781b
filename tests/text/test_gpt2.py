"""GPT-2 on the shared backbone: logits and generation equal transformers'."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from hub.modeling import load_model
from tests.text.gpt_checkpoints import make_gpt2


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    model, tokenizer = make_gpt2(folder)
    return folder, model, tokenizer


def test_logits_equal_transformers(gpt2):
    folder, reference, tokenizer = gpt2
    ours = load_model(folder).module
    ids = torch.tensor([tokenizer("the quick brown fox")["input_ids"] * 3])
    with torch.no_grad():
        diff = (ours(ids)["logits"] - reference(ids).logits).abs().max().item()
    assert diff <= 1e-4


def test_kv_cache_gives_the_same_logits_as_a_full_pass(gpt2):
    folder, _, tokenizer = gpt2
    model = load_model(folder).module
    ids = torch.tensor([tokenizer("to be or not to be, that is")["input_ids"]])
    with torch.no_grad():
        full = model(ids)["logits"]
        cache = model.new_cache(1, ids.shape[1])
        first = model(ids[:, :4], cache=cache)["logits"]
        steps = [model(ids[:, i:i + 1], cache=cache)["logits"] for i in range(4, ids.shape[1])]
    incremental = torch.cat([first, *steps], 1)
    assert (incremental - full).abs().max().item() <= 1e-4


@pytest.mark.parametrize("prompts", [["the quick brown"], ["a journey", "all that glitters is not gold;"]])
def test_greedy_generation_equals_transformers_generate(gpt2, prompts):
    folder, reference, tokenizer = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    ours = pipe(prompts, max_new_tokens=30, return_full_text=False)
    for prompt, result in zip(prompts, ours):
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        expected = reference.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=30,
                                      do_sample=False, pad_token_id=tokenizer.eos_token_id)
        new = expected[0, ids.shape[1]:].tolist()
        if tokenizer.eos_token_id in new:
            new = new[:new.index(tokenizer.eos_token_id)]
        assert result["generated_text"] == tokenizer.decode(new, skip_special_tokens=True)


def test_sampling_is_seeded_and_options_change_it(gpt2):
    folder, _, _ = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    a = pipe("the coffee", do_sample=True, seed=3, max_new_tokens=20, top_k=20, top_p=0.9, temperature=1.3)
    b = pipe("the coffee", do_sample=True, seed=3, max_new_tokens=20, top_k=20, top_p=0.9, temperature=1.3)
    c = pipe("the coffee", do_sample=True, seed=4, max_new_tokens=20, top_k=20, top_p=0.9, temperature=1.3)
    assert a == b and a != c
    greedy = pipe("the coffee", max_new_tokens=20)
    penalised = pipe("the coffee", max_new_tokens=20, repetition_penalty=5.0)
    assert greedy != penalised


def test_stream_and_stop_strings(gpt2):
    folder, _, _ = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    full = pipe("the lazy", max_new_tokens=25, return_full_text=False)["generated_text"]
    pieces = list(pipe.stream("the lazy", max_new_tokens=25))
    assert "".join(pieces) == full and len(pieces) > 1
    stop = full.strip()[3:6]
    cut = pipe("the lazy", max_new_tokens=25, stop=[stop], return_full_text=False)["generated_text"]
    assert stop not in cut and full.startswith(cut) and len(cut) < len(full)
    assert "".join(pipe.stream("the lazy", max_new_tokens=25, stop=stop)) == cut


def test_generation_bad_input(gpt2):
    folder, _, _ = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    with pytest.raises(InvalidInputError, match="empty prompt"):
        pipe("")
    with pytest.raises(InvalidInputError, match="unknown keyword 'max_tokens' for text-generate; did you mean "
                                                "'max_new_tokens'"):
        pipe("hi", max_tokens=3)
    with pytest.raises(InvalidInputError, match="exceeds the model's 128 positions"):
        pipe("hi", max_new_tokens=500)
    with pytest.raises(InvalidInputError, match="temperature"):
        pipe("hi", do_sample=True, temperature=0)


def test_llama_style_decoder_equals_transformers(tmp_path):
    """RMSNorm + SwiGLU + rotary positions + no biases, through a LLaMA checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    reference = LlamaForCausalLM(LlamaConfig(
        vocab_size=120, hidden_size=48, intermediate_size=72, num_hidden_layers=2, num_attention_heads=3,
        num_key_value_heads=3, max_position_embeddings=64, rms_norm_eps=1e-6)).eval()
    with torch.no_grad():
        for p in reference.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    reference.save_pretrained(str(tmp_path))
    ours = load_model(tmp_path).module
    assert ours.decoder.config.rotary_dim == 16 and ours.decoder.config.norm == "rmsnorm"
    ids = torch.randint(0, 120, (2, 13))
    with torch.no_grad():
        assert (ours(ids)["logits"] - reference(ids).logits).abs().max().item() <= 1e-4
        cache = ours.new_cache(2, 13)
        steps = [ours(ids[:, :5], cache=cache)["logits"]] + [ours(ids[:, i:i + 1], cache=cache)["logits"]
                                                             for i in range(5, 13)]
        assert (torch.cat(steps, 1) - reference(ids).logits).abs().max().item() <= 1e-4
        greedy = reference.generate(ids[:1, :4], attention_mask=torch.ones(1, 4, dtype=torch.long),
                                    max_new_tokens=30, do_sample=False, pad_token_id=0)
    from hub_text.models.generation import GenerationConfig, generate_ids

    tokens = list(generate_ids(ours, ids[:1, :4], torch.ones(1, 4, dtype=torch.long),
                               GenerationConfig(max_new_tokens=30), eos_token_id=None, pad_token_id=0))
    assert torch.stack(tokens, 1)[0].tolist() == greedy[0, 4:].tolist()


@pytest.mark.parametrize("settings", [dict(top_k=0, top_p=1.0, temperature=1.0),
                                      dict(top_k=20, top_p=0.9, temperature=1.3)])
def test_num_return_sequences_equal_transformers_sampling(gpt2, settings):
    """n samples of one prompt are generate(do_sample=True, num_return_sequences=n)'s under
    the same seed, token for token (the prompt repeated n times, one multinomial per step)."""
    folder, reference, tokenizer = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    prompt = "the quick brown"
    ours = pipe(prompt, do_sample=True, seed=7, num_return_sequences=3, max_new_tokens=15,
                return_full_text=False, **settings)
    assert isinstance(ours, list) and len(ours) == 3
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    torch.manual_seed(7)
    expected = reference.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=15, do_sample=True,
                                  num_return_sequences=3, pad_token_id=tokenizer.eos_token_id, **settings)
    texts = []
    for row in expected[:, ids.shape[1]:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[:row.index(tokenizer.eos_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True))
    assert [r["generated_text"] for r in ours] == texts
    assert len(set(texts)) > 1  # the three draws differ: the test compares samples, not one text thrice
    two = pipe([prompt, "a journey"], do_sample=True, seed=7, num_return_sequences=2, max_new_tokens=5)
    assert [len(r) for r in two] == [2, 2] and all(r["generated_text"].startswith(prompt) for r in two[0])


def test_num_return_sequences_is_checked(gpt2):
    folder, _, _ = gpt2
    pipe = hub.load("text-generate", model=str(folder), device="cpu")
    with pytest.raises(InvalidInputError, match="needs do_sample=True"):
        pipe("hi", num_return_sequences=2)
    with pytest.raises(InvalidInputError, match="num_return_sequences"):
        pipe("hi", do_sample=True, num_return_sequences=0)
    with pytest.raises(InvalidInputError, match="stream"):
        list(pipe.stream("hi", do_sample=True, num_return_sequences=2))
