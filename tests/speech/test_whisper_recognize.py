"""Whisper checkpoints in ``speech-recognize``: a tiny random ``WhisperForConditionalGeneration``
with a multilingual generation config (language and task tokens, suppressed tokens) and a byte-level
``WhisperTokenizer`` built offline; Hub's transcripts equal transformers' ASR pipeline's on the same
folder and audio (greedy, 2 beams, the pipeline's default 5 beams, language / task prompts, 70 s
chunked); bad keywords and too-long windows are clear errors."""

from __future__ import annotations

import pytest

import hub
from hub.errors import InvalidInputError, NotSupportedError
from tests.speech.whisper_checkpoints import RATE, whisper_folder
from tests.speech.whisper_checkpoints import audio as _audio

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: tokens this random model writes most (an "n" and the first token it usually starts with): suppressing
#: them changes its transcripts, so equal transcripts show the suppression is transformers'
SUPPRESS, BEGIN_SUPPRESS = [77, 110], 101


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return whisper_folder(tmp_path_factory.mktemp("whisper-asr"), suppress=SUPPRESS, begin_suppress=BEGIN_SUPPRESS)


@pytest.fixture(scope="module")
def pipes(whisper_dir):
    from transformers import pipeline

    return (hub.load("speech-recognize", model=str(whisper_dir), device="cpu"),
            pipeline("automatic-speech-recognition", model=str(whisper_dir), device="cpu"))


@pytest.mark.parametrize("settings", [
    {"max_new_tokens": 8, "num_beams": 1},
    {"max_new_tokens": 8, "num_beams": 2},
    {"max_new_tokens": 8, "num_beams": 1, "language": "fr"},
    {"max_new_tokens": 8, "num_beams": 1, "language": "german", "task": "translate"},
    {"max_new_tokens": 8, "num_beams": 2, "task": "transcribe"},
    {"max_new_tokens": 6},  # the pipeline's default beams (5)
])
def test_transcripts_equal_transformers_pipeline(pipes, settings):
    ours, theirs = pipes
    clips = [_audio(2.0, 0), _audio(3.5, 1)]
    got = [r["text"] for r in ours([{"array": c, "sampling_rate": RATE} for c in clips], **settings)]
    want = [theirs({"raw": c.copy(), "sampling_rate": RATE}, generate_kwargs=dict(settings))["text"] for c in clips]
    assert got == want
    assert any(got)  # the model writes something


def test_prompt_follows_transformers(pipes, whisper_dir):
    """The decoder prompt Hub builds is the one transformers' generate starts from."""
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    ours = pipes[0].whisper
    model = WhisperForConditionalGeneration.from_pretrained(str(whisper_dir)).eval()
    features = WhisperFeatureExtractor(feature_size=80)(_audio(1.0), sampling_rate=RATE,
                                                        return_tensors="pt").input_features
    for language, task in ((None, None), ("fr", None), ("de", "translate"), (None, "transcribe")):
        model.generation_config.language, model.generation_config.task = language, task
        model.generation_config.return_timestamps = False
        want = model._retrieve_init_tokens(features, 1, model.generation_config, model.config, 3000, {})
        got = ours.prompt(language, task)
        if -1 in got:  # detection: transformers' detected token in that slot
            got[got.index(-1)] = int(want[0, 1])
        assert got == want[0].tolist(), (language, task)
    assert ours.prompt("fr", "translate") != ours.prompt("de", "translate")
    # a checkpoint's legacy forced_decoder_ids (openai/whisper-tiny's: language to detect, then a task)
    forced = [[1, None], [2, model.generation_config.task_to_id["translate"]]]
    legacy = type(ours)(ours.model, ours.tokenizer)
    legacy.generation["forced_decoder_ids"] = forced
    model.generation_config.language = model.generation_config.task = None
    model.generation_config.forced_decoder_ids = forced
    want = model._retrieve_init_tokens(features, 1, model.generation_config, model.config, 3000, {})[0].tolist()
    got = legacy.prompt()
    assert len(want) == 4 and got == [want[0], -1, *want[2:]]


def test_long_audio_is_chunked_like_transformers(pipes):
    ours, theirs = pipes
    clip = _audio(70.0, 2)
    settings = {"max_new_tokens": 8, "num_beams": 1, "language": "en"}
    got = ours({"array": clip, "sampling_rate": RATE}, chunk_length_s=30, **settings)
    want = theirs({"raw": clip.copy(), "sampling_rate": RATE}, chunk_length_s=30, generate_kwargs=settings)
    assert got.metadata["chunks"] == 3
    assert got["text"] == want["text"]
    with pytest.raises(InvalidInputError, match="chunk_length_s=40 is longer than the 30 s"):
        ours({"array": clip, "sampling_rate": RATE}, chunk_length_s=40)


def test_audio_longer_than_a_window_is_never_cut_silently(pipes):
    """transformers' Whisper refuses > 30 s of features without chunking or timestamps (ValueError);
    Hub cuts such audio into 30 s windows by default (chunk_length_s <= 30 enforced above) and
    says so in the metadata, so no audio is dropped; the model itself refuses longer features."""
    ours, theirs = pipes
    clip = _audio(40.0, 5)
    settings = {"max_new_tokens": 8, "num_beams": 1, "language": "en"}
    got = ours({"array": clip, "sampling_rate": RATE}, **settings)
    assert got.metadata["chunks"] == 2
    assert got["text"] == theirs({"raw": clip.copy(), "sampling_rate": RATE}, chunk_length_s=30,
                                 generate_kwargs=settings)["text"]
    features = ours.whisper.extractor(clip, sampling_rate=RATE, truncation=False, padding="longest",
                                      return_tensors="pt")["input_features"]
    with pytest.raises(InvalidInputError, match="exactly 3000 log-mel frames .* got 4000"):
        ours.model.encode(features)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"language": "klingon"}, "language 'klingon' is not one this model knows; pass one of de, en, fr"),
    ({"task": "summarise"}, "task"),
    ({"decoder": "beam"}, "decoder= is for CTC recognisers.*num_beams"),
    ({"num_beams": 0}, "num_beams"),
    ({"max_new_tokens": 100, "language": "fr"}, "4-token prompt .* pass max_new_tokens <= 36"),
])
def test_bad_keywords_are_clear(pipes, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        pipes[0]({"array": _audio(1.0), "sampling_rate": RATE}, **kwargs)


def test_ctc_models_refuse_whisper_keywords():
    pipe = hub.load("speech-recognize", device="cpu")
    with pytest.raises(InvalidInputError, match="language= only Whisper models take; this is a CTC recogniser"):
        pipe({"array": _audio(1.0), "sampling_rate": RATE}, language="fr")
    with pytest.raises(InvalidInputError, match="num_beams= only Whisper models take.*decoder='beam' and beam_width="):
        pipe({"array": _audio(1.0), "sampling_rate": RATE}, num_beams=2)


def test_save_and_reload_keeps_the_transcripts(pipes, tmp_path):
    ours = pipes[0]
    clip = {"array": _audio(2.0, 3), "sampling_rate": RATE}
    settings = {"max_new_tokens": 8, "num_beams": 2, "language": "de", "length_penalty": 0.7}
    saved = ours.save(tmp_path / "saved")
    again = hub.load("speech-recognize", model=str(saved), device="cpu")
    assert again(clip, **settings)["text"] == ours(clip, **settings)["text"]


def test_suppressed_tokens_are_never_written(pipes):
    ours = pipes[0]
    features = ours.chunk([{"array": _audio(2.0, seed), "sampling_rate": RATE} for seed in range(3)])
    for settings in ({"num_beams": 1}, {"num_beams": 2, "language": "fr"}):
        batch = ours.whisper.collate(ours.whisper.annotate(features, {"max_new_tokens": 8, **settings}))
        rows = ours.whisper.generate(batch, None)
        assert all(rows) and not any(set(SUPPRESS) & set(row) for row in rows)
        assert all(row[0] != BEGIN_SUPPRESS for row in rows)


def test_export_is_refused_clearly(pipes):
    """(fine_tune: tests/speech/test_whisper_fine_tune.py)"""
    ours = pipes[0]
    with pytest.raises(NotSupportedError, match="Exporting a Whisper"):
        ours._export_spec()


def test_evaluate_scores_whisper_transcripts(pipes):
    ours = pipes[0]
    clips = [{"array": _audio(2.0, seed), "sampling_rate": RATE} for seed in (0, 1)]
    settings = {"max_new_tokens": 8, "num_beams": 1}
    texts = [r["text"] for r in ours(clips, **settings)]
    perfect = ours.evaluate([{"audio": c, "text": t} for c, t in zip(clips, texts)], **settings)
    assert perfect["n"] == 2 and perfect["wer"] == 0.0
    wrong = ours.evaluate([{"audio": c, "text": "quite other words"} for c in clips], **settings)
    assert wrong["wer"] > 0.5
