"""Whisper's ``fine_tune`` in ``speech-recognize``: teacher forcing through the common Trainer.

The labels are transformers' Whisper fine-tuning recipe's (``WhisperTokenizer(language=,
task=)(text).input_ids`` without the start token, padded with -100); on the same batch Hub's
loss and logits equal ``WhisperForConditionalGeneration(input_features, labels=...)``'s, and the
label-smoothed loss equals transformers' ``LabelSmoother`` (what its Seq2SeqTrainer applies).
A short run lowers the loss on its training set; save + reload keeps the trained weights
exactly; bad data and keywords are clear errors."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import DataError, InvalidInputError
from tests.speech.whisper_checkpoints import RATE, audio, whisper_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [" hello there", " a cat.", " Whisper, fine-tuned!", " ok"]


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return whisper_folder(tmp_path_factory.mktemp("whisper-ft"), suppress=[], begin_suppress=None, scale=0.1,
                          max_target_positions=32)


def _records(count: int = 4) -> list[dict]:
    return [{"audio": {"array": audio(1.0 + 0.5 * i, i), "sampling_rate": RATE}, "text": TEXTS[i % len(TEXTS)]}
            for i in range(count)]


def _batch(pipe, language: str = "fr", task: str | None = None) -> dict[str, torch.Tensor]:
    whisper = pipe.whisper
    prompt = whisper.training_prompt(language, task)
    features = [{"input_values": r["audio"]["array"], "label": whisper.labels(r["text"], prompt, 448)}
                for r in _records()]
    return whisper.training_collate(features)


# (transformers' tokenizer places language tokens by their index in Whisper's full list: en and de sit
# where this small vocabulary has them)
@pytest.mark.parametrize(("language", "task"), [("en", None), ("de", "translate")])
def test_labels_loss_and_logits_equal_transformers(whisper_dir, language, task):
    from transformers import WhisperForConditionalGeneration, WhisperTokenizer
    from transformers.trainer_pt_utils import LabelSmoother

    pipe = hub.load("speech-recognize", model=str(whisper_dir), device="cpu")
    batch = _batch(pipe, language, task)
    tokenizer = WhisperTokenizer.from_pretrained(str(whisper_dir), language=language, task=task or "transcribe")
    start = pipe.model.decoder_start_token_id
    for row, text in zip(batch["labels"].tolist(), TEXTS):
        want = tokenizer(text).input_ids
        assert want[0] == start
        assert [t for t in row if t != -100] == want[1:]  # the recipe's collator drops the start token
    assert (batch["labels"] == -100).any()  # rows of different lengths: padding is ignored
    reference = WhisperForConditionalGeneration.from_pretrained(str(whisper_dir)).eval()
    with torch.no_grad():
        theirs = reference(input_features=batch["input_features"], labels=batch["labels"])
        ours = pipe.model(**batch)
        smoothed = pipe.model(**batch, label_smoothing=0.1)["loss"]
    assert (ours["logits"] - theirs.logits).abs().max().item() <= 1e-4
    assert abs(ours["loss"].item() - theirs.loss.item()) <= 1e-4
    assert abs(smoothed.item() - LabelSmoother(epsilon=0.1)(theirs, batch["labels"]).item()) <= 1e-4


def test_fine_tune_lowers_the_loss_and_reloads_exactly(whisper_dir, tmp_path):
    pipe = hub.load("speech-recognize", model=str(whisper_dir), device="cpu")
    batch = _batch(pipe)
    with torch.no_grad():
        before = pipe.model(**batch)["loss"].item()
    result = pipe.fine_tune(_records(), language="fr", max_steps=12, batch_size=4, learning_rate=5e-3,
                            warmup_ratio=0.0, label_smoothing=0.05, progress=False, save_checkpoints=False)
    with torch.no_grad():
        after = pipe.model(**batch)["loss"].item()
    assert result.steps == 12
    assert after < 0.65 * before, (before, after)  # 6.2 -> 3.5 here (uniform over the vocabulary: 7.5)
    again = hub.load("speech-recognize", model=str(pipe.save(tmp_path / "tuned")), device="cpu")
    with torch.no_grad():
        assert torch.equal(again.model(**batch)["logits"], pipe.model(**batch)["logits"])
    clip = _records(1)[0]["audio"]
    settings = {"language": "fr", "max_new_tokens": 8, "num_beams": 1}
    assert again(clip, **settings)["text"] == pipe(clip, **settings)["text"]


def test_fine_tune_with_evaluation_keeps_the_best(whisper_dir):
    pipe = hub.load("speech-recognize", model=str(whisper_dir), device="cpu")
    result = pipe.fine_tune(_records(), eval=_records(2), language="en", epochs=2, batch_size=2,
                            learning_rate=1e-3, progress=False, save_checkpoints=False)
    assert "eval_loss" in result.history[-1] and result.best_metric is not None


def test_bad_fine_tune_input_is_clear(whisper_dir):
    pipe = hub.load("speech-recognize", model=str(whisper_dir), device="cpu")
    with pytest.raises(InvalidInputError, match="needs the transcripts' language: pass language="):
        pipe.fine_tune(_records(1), max_steps=1)
    with pytest.raises(InvalidInputError, match="language 'xx' is not one this model knows"):
        pipe.fine_tune(_records(1), language="xx", max_steps=1)
    long = [{"audio": {"array": audio(31.0), "sampling_rate": RATE}, "text": " too long"}]
    with pytest.raises(DataError, match="training clip 0 is 31.0 s long; Whisper hears 30 s at once"):
        pipe.fine_tune(long, language="en", max_steps=1)
    with pytest.raises(InvalidInputError, match="label_smoothing"):
        pipe.fine_tune(_records(1), language="en", label_smoothing=1.5, max_steps=1)
    with pytest.raises(InvalidInputError, match="max_target_tokens=3 leaves no room"):
        pipe.fine_tune(_records(1), language="en", max_target_tokens=3, max_steps=1)
    ctc = hub.load("speech-recognize", device="cpu")
    with pytest.raises(InvalidInputError, match="language= only Whisper's fine_tune takes"):
        ctc.fine_tune(_records(1), language="en", max_steps=1)
