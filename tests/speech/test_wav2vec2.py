"""transformers' Wav2Vec2ForCTC converted into the shared backbone: logits, decoding, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hub
from hub.errors import HubError
from hub.modeling import load_model
from tests.speech.checkpoints import VOCAB, tone, wav2vec2_ctc_folder


@pytest.fixture(scope="module", params=[False, True], ids=["base-layout", "stable-layer-norm"])
def checkpoint(request, tmp_path_factory):
    return wav2vec2_ctc_folder(tmp_path_factory.mktemp("w2v"), stable=request.param)


_REFERENCES: dict = {}


def _reference(folder):
    """transformers' model for ``folder``, loaded once per checkpoint (read-only in these tests)."""
    from transformers import Wav2Vec2ForCTC

    if folder not in _REFERENCES:
        _REFERENCES[folder] = Wav2Vec2ForCTC.from_pretrained(folder).eval()
    return _REFERENCES[folder]


def test_logits_equal_transformers(checkpoint):
    ref = _reference(checkpoint)
    ours = load_model(checkpoint).module
    assert type(ours.encoder).__module__ == "hub.backbone.transformer"
    x = torch.stack([torch.from_numpy(tone(0.8)), torch.from_numpy(tone(0.8, freq=220, seed=1))])
    with torch.no_grad():
        diff = (ref(x).logits - ours(x)["logits"]).abs().max().item()
    assert diff <= 1e-4


def test_padded_batch_equals_transformers_with_attention_mask(checkpoint):
    ref = _reference(checkpoint)
    ours = load_model(checkpoint).module
    x = torch.stack([torch.from_numpy(tone(1.0)), torch.from_numpy(tone(1.0, seed=3))])
    mask = torch.ones(2, x.shape[1], dtype=torch.long)
    mask[1, 11000:] = 0
    x[1, 11000:] = 0
    with torch.no_grad():
        expected = ref(x, attention_mask=mask).logits
        out = ours(x, mask)
    frames = out["frame_mask"]
    assert frames[0].all() and int(frames[1].sum()) == int(ref._get_feat_extract_output_lengths(torch.tensor(11000)))
    assert (expected - out["logits"])[frames].abs().max().item() <= 1e-4


def test_ctc_loss_equals_transformers(checkpoint):
    ref = _reference(checkpoint)
    ours = load_model(checkpoint).module
    x = torch.from_numpy(tone(0.6))[None]
    labels = torch.tensor([[5, 6, 4, 7, 8, -100]])
    with torch.no_grad():
        assert abs(ref(x, labels=labels).loss.item() - ours(x, labels=labels)["loss"].item()) <= 1e-4


def test_pipeline_text_equals_transformers_decoding(checkpoint):
    from transformers import Wav2Vec2CTCTokenizer

    tokenizer = Wav2Vec2CTCTokenizer(str(checkpoint / "vocab.json"))
    ref = _reference(checkpoint)
    pipe = hub.load("speech-recognize", model=str(checkpoint), device="cpu")
    assert pipe.metadata["converted_from"] == "transformers:wav2vec2"
    audio = tone(0.9, freq=330, seed=5)
    normalised = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    with torch.no_grad():
        ids = ref(torch.from_numpy(normalised)[None]).logits.argmax(-1)[0]
    expected = " ".join(tokenizer.decode(ids.tolist(), skip_special_tokens=True).split())
    result = pipe(audio, sampling_rate=16000)
    assert result["text"] == expected and result["text"]
    assert set(result["text"]) <= set(VOCAB[5:]) | {" "}


def test_saved_hub_folder_reloads_exactly(checkpoint, tmp_path):
    pipe = hub.load("speech-recognize", model=str(checkpoint), device="cpu")
    audio = tone(0.7, seed=2)
    before = pipe(audio, sampling_rate=16000, return_timestamps="word")
    folder = pipe.save(tmp_path / "saved")
    again = hub.load("speech-recognize", model=str(folder), device="cpu")
    assert again.metadata["architecture"] == "wav2vec2-ctc" and "converted_from" not in again.metadata
    assert again(audio, sampling_rate=16000, return_timestamps="word") == before
    with pytest.raises(HubError, match="fine_tune it instead"):  # converted checkpoints are pretrained
        again.pretrain([{"array": audio, "sampling_rate": 16000}])
