"""The shipped speech defaults: they load offline, and their held-out figures in registry.yaml
are what they score on voices of a synthesiser never heard in training (flite's awb and rms)."""

from __future__ import annotations

import shutil

import pytest

import hub
from hub.registry import get_registry

SYNTHESISERS = ("espeak-ng", "flite", "text2wave")


def test_defaults_are_the_shipped_models_and_load_offline():
    registry = get_registry()
    assert registry.task("audio-classify").default_model == "keywords-kws20"
    assert registry.task("speech-recognize").default_model == "commands-ctc"
    kws = hub.load("audio-classify", device="cpu")
    asr = hub.load("speech-recognize", device="cpu")
    assert kws.metadata["model_name"] == "keywords-kws20" and len(kws.labels) == 20
    assert asr.metadata["model_name"] == "commands-ctc" and asr.metadata["architecture"] == "speech-ctc"
    for name in ("keywords-kws20", "commands-ctc"):
        metrics = registry.model(name).metrics
        assert "flite" in metrics["dataset"] and metrics["n"] == 240


def _held_out(task: str):
    if any(shutil.which(tool) is None for tool in SYNTHESISERS):
        pytest.skip("needs espeak-ng, flite and festival (apt-get install -y espeak-ng flite festival "
                    "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)")
    from examples.data_prep_speech import manifest

    return manifest(task, "test")  # synthesised once (about a minute), then cached


@pytest.mark.data
@pytest.mark.slow
def test_keyword_spotting_accuracy_on_held_out_voices_matches_the_registry():
    test = _held_out("kws")
    reported = get_registry().model("keywords-kws20").metrics["accuracy"]
    measured = hub.load("audio-classify", device="cpu").evaluate(test, batch_size=32)
    assert measured["n"] == 240
    assert abs(measured["accuracy"] - reported) <= 0.02
    assert measured["accuracy"] > 5 * (1 / 20)  # far above the 5 % of guessing among 20 words


@pytest.mark.data
@pytest.mark.slow
def test_recogniser_word_error_rate_on_held_out_voices_matches_the_registry():
    test = _held_out("asr")
    metrics = get_registry().model("commands-ctc").metrics
    measured = hub.load("speech-recognize", device="cpu").evaluate(test, batch_size=32)
    assert measured["n"] == 240
    assert abs(measured["wer"] - metrics["wer"]) <= 0.02 and abs(measured["cer"] - metrics["cer"]) <= 0.02
    assert measured["wer"] < 0.9
