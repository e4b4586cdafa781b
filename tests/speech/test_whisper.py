"""Whisper on the shared backbone: a random ``WhisperForConditionalGeneration`` (transformers,
save_pretrained) converts into Hub's ``whisper`` architecture with equal logits, cached
decoding equal to the full pass, and greedy / beam decoding token for token (through the
encoder-decoder generation the text tasks use). Decoding in speech-recognize:
tests/speech/test_whisper_recognize.py."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import InvalidInputError, ModelLoadError
from hub.modeling import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRAMES, MELS = 20, 8  # 2 x max_source_positions log-mel frames


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    folder = tmp_path_factory.mktemp("whisper")
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=120, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                           decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=MELS,
                           max_source_positions=FRAMES // 2, max_target_positions=32, pad_token_id=1, bos_token_id=2,
                           eos_token_id=3, decoder_start_token_id=4, suppress_tokens=[], begin_suppress_tokens=[])
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))
    return folder, model


def _features(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, MELS, FRAMES, generator=torch.Generator().manual_seed(1))


def test_logits_equal_transformers(whisper):
    folder, reference = whisper
    ours = load_model(folder).module
    targets = torch.randint(5, 120, (2, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = reference(input_features=_features(), decoder_input_ids=targets).logits
        got = ours(_features(), decoder_input_ids=targets)["logits"]
    assert (got - want).abs().max().item() <= 1e-4
    with pytest.raises(InvalidInputError, match="exactly 20 log-mel frames"):
        ours.encode(torch.randn(1, MELS, 18))


def test_cached_decoding_equals_the_full_pass(whisper):
    model = load_model(whisper[0]).module
    targets = torch.randint(5, 120, (2, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        memory = model.encode(_features())
        full = model.decode(targets, memory)
        cache = model.new_cache(2, 6)
        steps = [model.decode(targets[:, :2], memory, cache=cache)]
        steps += [model.decode(targets[:, t:t + 1], memory, cache=cache) for t in range(2, 6)]
    assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-4


@pytest.mark.parametrize("settings", [{"max_new_tokens": 10}, {"max_new_tokens": 10, "num_beams": 3}])
def test_decoding_equals_transformers_token_for_token(whisper, settings):
    from hub_text.models.seq2seq_generation import Seq2SeqGenerationConfig, generate_seq2seq

    folder, reference = whisper
    ours = load_model(folder).module
    with torch.no_grad():
        want = reference.generate(input_features=_features(), do_sample=False, **settings)
    got = generate_seq2seq(ours, _features(), None, Seq2SeqGenerationConfig(**settings), eos_token_id=3,
                           pad_token_id=1)
    rows = []
    for row in want.tolist():
        row = row[1:] if row and row[0] == 4 else row  # transformers may or may not return the start token
        rows.append(row[:row.index(3) + 1] if 3 in row else row)
    assert got == rows


def test_speech_recognize_needs_the_whisper_tokenizer(whisper):
    """speech-recognize decodes Whisper (tests/speech/test_whisper_recognize.py); a folder saved
    without its tokenizer is refused clearly."""
    with pytest.raises(ModelLoadError, match="has no tokenizer"):
        hub.load("speech-recognize", model=str(whisper[0]), device="cpu")
