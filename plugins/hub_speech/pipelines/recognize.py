"""``speech-recognize``: audio in, ``{"text": ...}`` out, from a CTC recogniser.

Models: Hub's own ``speech-ctc`` (log-mel + conv subsampling + shared backbone + CTC
head) and wav2vec2 CTC checkpoints converted from transformers (``wav2vec2-ctc``).

Options per call: ``decoder="greedy"`` (best path, default) or ``"beam"`` (CTC prefix beam
search, ``beam_width``); ``return_timestamps="word"`` or ``"char"`` adds ``"chunks"``:
``[{"text", "timestamp": (start_s, end_s)}, ...]`` as transformers' pipeline returns them;
``chunk_length_s`` / ``stride_length_s`` control how long audio is cut (see
:mod:`hub_speech.pipelines.base`). Silent audio (peak below 1e-4) gives ``{"text": ""}`` without
running the decoder; each result's ``metadata`` holds ``seconds``, ``chunks`` and ``silent``.

Whisper checkpoints (transformers' ``WhisperForConditionalGeneration`` folders) decode their own way
(:mod:`hub_speech.pipelines.whisper_decoding`): ``language=``, ``task=`` ("transcribe" /
"translate"), ``num_beams``, ``max_new_tokens``, ``length_penalty``, ``return_timestamps=True``
(``chunks`` with (start, end) seconds from Whisper's timestamp tokens, as transformers'
pipeline); chunks of at most 30 s (longer audio is always cut: ``chunk_length_s`` defaults to 30).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hub.errors import DataError, HubError, InvalidInputError, NotSupportedError
from hub.pipeline import default_device
from hub.results import Prediction
from hub.validate import check_choice, check_int
from hub_speech.augment import AugmentedClips
from hub_speech.ctc_decode import CTCVocab, char_timestamps, word_timestamps
from hub_speech.metrics import error_rate
from hub_speech.models.encoder import SpeechCTC
from hub_speech.models.wav2vec2 import Wav2Vec2CTC
from hub_speech.models.whisper import WhisperModel
from hub_speech.pipelines.base import AudioPipeline
from hub_speech.pipelines.whisper_decoding import WHISPER_PARAMETERS, WhisperDecoding

DEFAULT_VOCAB = ["<pad>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
DECODERS = ("greedy", "beam")
#: the widest beam search offered (its cost grows with the width times the vocabulary per frame)
MAX_BEAM_WIDTH = 1024
TIMESTAMPS = (None, False, "word", "char")


class SpeechRecognitionPipeline(AudioPipeline):
    task = "speech-recognize"
    architecture = "speech-ctc"
    model_types = (SpeechCTC, Wav2Vec2CTC, WhisperModel)
    model_needs = ("a CTC recogniser (Hub's speech-ctc or transformers' Wav2Vec2ForCTC) or "
                   "transformers' WhisperForConditionalGeneration")
    export_outputs = {"logits": {0: "batch", 1: "frames"}, "frame_mask": {0: "batch", 1: "frames"}}

    def __init__(self, model: torch.nn.Module, *, whisper: WhisperDecoding | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        #: a Whisper model's decoding (tokenizer, features, prompt); None for CTC models
        self.whisper = whisper

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        if isinstance(model, WhisperModel):
            return {"whisper": WhisperDecoding.from_folder(folder, model)}
        return super()._load_extra_files(folder, model, metadata)

    def _save_extra_files(self, folder: Path) -> None:
        if self.whisper is not None:
            self.whisper.tokenizer.save_pretrained(str(folder))

    @property
    def vocab(self) -> CTCVocab:
        config = self.model.config
        return CTCVocab(config["vocab"], blank=config.get("blank", 0), delimiter=config.get("word_delimiter", "|"))

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> SpeechRecognitionPipeline:
        """A randomly initialised ``speech-ctc`` model (character vocabulary unless
        ``config["vocab"]`` or ``tokenizer`` (a token list) says otherwise), to pretrain or fine-tune."""
        from hub_speech.models.encoder import new_model

        config = dict(config or {})
        config.setdefault("vocab", list(tokenizer) if tokenizer is not None else DEFAULT_VOCAB)
        torch.manual_seed(0 if seed is None else seed)  # reproducible by default
        model = new_model(SpeechCTC, config)  # unknown keys refused, size bounded before allocating
        return cls(model.to(dtype=dtype).eval() if dtype else model.eval(), device=default_device(device),
                   dtype=dtype,
                   metadata={"task": cls.task, "architecture": cls.architecture, "from_scratch": True})

    # -- inference -----------------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        super().check_parameters(params)
        if self.whisper is not None:
            self.whisper.check_parameters(params)
            return
        given = [name for name in WHISPER_PARAMETERS if params.get(name) is not None]
        if given:
            raise InvalidInputError(f"{'= / '.join(given)}= only Whisper models take; this is a CTC recogniser "
                                    "(for beam search pass decoder='beam' and beam_width=).")
        check_choice("decoder", params.get("decoder", "greedy"), DECODERS)
        if params.get("return_timestamps") not in TIMESTAMPS:
            raise InvalidInputError(f"return_timestamps must be 'word', 'char' or None, got "
                                    f"{params['return_timestamps']!r}.")
        check_int("beam_width", params.get("beam_width", 8), minimum=1, maximum=MAX_BEAM_WIDTH)

    def preprocess(self, inputs: list[Any], *, sampling_rate: int | None = None, chunk_length_s: float | None = None,
                   stride_length_s: float | None = None, decoder: str = "greedy",
                   return_timestamps: Any = None, max_chunks: int | None = None,
                   max_audio_seconds: int | None = None, language: str | None = None, task: str | None = None,
                   max_new_tokens: int | None = None, num_beams: int | None = None,
                   length_penalty: float | None = None) -> list[dict[str, Any]]:
        if self.whisper is not None:  # 30 s windows at most, each with the call's decoder prompt
            features = self.chunk(inputs, sampling_rate=sampling_rate,
                                  chunk_length_s=self.whisper.window_s if chunk_length_s is None else chunk_length_s,
                                  stride_length_s=stride_length_s, max_chunks=max_chunks,
                                  max_audio_seconds=max_audio_seconds)
            return self.whisper.annotate(features, {"language": language, "task": task,
                                                    "max_new_tokens": max_new_tokens, "num_beams": num_beams,
                                                    "length_penalty": length_penalty,
                                                    "return_timestamps": return_timestamps})
        if decoder not in DECODERS:
            raise InvalidInputError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        if return_timestamps not in TIMESTAMPS:
            raise InvalidInputError(f"return_timestamps must be 'word', 'char' or None, got {return_timestamps!r}.")
        return self.chunk(inputs, sampling_rate=sampling_rate, chunk_length_s=chunk_length_s,
                          stride_length_s=stride_length_s, max_chunks=max_chunks,
                          max_audio_seconds=max_audio_seconds)

    def _export_spec(self) -> Any:
        if self.whisper is not None:  # generation is a loop around the decoder, not one traced graph
            raise NotSupportedError("Exporting a Whisper speech-recognize pipeline is not supported yet; export "
                                    "the transformers folder with optimum (optimum-cli export onnx) instead.")
        return super()._export_spec()

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.whisper is not None and "label" not in features[0]:
            return self.whisper.collate(features)
        return super().collate(features)

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        if self.whisper is not None:
            return self.whisper.generate(batch, self.dtype)
        out = self.model(**self.model_inputs(batch))
        logits = out["logits"].float().log_softmax(-1)
        frames = out["frame_mask"].sum(-1) if "frame_mask" in out else \
            torch.full((logits.shape[0],), logits.shape[1], device=logits.device)
        return {"log_probs": logits, "frames": frames}

    def unbatch(self, outputs: Any) -> list[Any]:
        if isinstance(outputs, list):  # Whisper: each row's token ids
            return outputs
        log_probs, frames = outputs["log_probs"].cpu(), outputs["frames"].tolist()
        return [log_probs[i, :n] for i, n in enumerate(frames)]

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *, decoder: str = "greedy",
                    beam_width: int = 8, return_timestamps: Any = None) -> Prediction:
        meta = features[0]["meta"]
        if meta["silent"]:
            return Prediction(text="", **({"chunks": []} if return_timestamps else {}), metadata=meta)
        if self.whisper is not None:  # each window's ids and (length, left, right) stride in seconds
            rate = self.sample_rate
            strides = [(f["length"] / rate, f["left"] / rate, f["right"] / rate) for f in features]
            timestamps = self.whisper.timestamps(return_timestamps)
            text, chunks = self.whisper.decode(outputs, strides, timestamps)
            return Prediction({"text": text, **({"chunks": chunks} if timestamps else {})}, metadata=meta)
        frame = self.model.samples_per_frame
        pieces = []
        for log_probs, feature in zip(outputs, features):  # drop each chunk's overlap frames, then join
            # frames [left, (length - right) / frame) of the chunk are its own; the next chunk's begin there
            end = (feature["length"] - feature["right"]) // frame if feature["right"] else log_probs.shape[0]
            pieces.append(log_probs[feature["left"] // frame: end])
        log_probs = torch.cat(pieces)
        vocab = self.vocab
        decoded = vocab.beam_search(log_probs, beam_width=beam_width) if decoder == "beam" else vocab.greedy(log_probs)
        result = {"text": decoded.text}
        seconds = frame / self.sample_rate
        if return_timestamps == "word":
            result["chunks"] = word_timestamps(decoded, vocab.delimiter, seconds)
        elif return_timestamps == "char":
            result["chunks"] = char_timestamps(decoded, vocab.delimiter, seconds)
        return Prediction(result, metadata=meta)

    def evaluate(self, data: Any, *, batch_size: int | None = None, **params: Any) -> dict[str, float]:
        """Word and character error rates on transcribed audio (same sources as :meth:`fine_tune`)."""
        from hub_speech.data import read_audio_records

        records = read_audio_records(data, target="text")
        predictions = self([r["audio"] for r in records], batch_size=batch_size, **params)
        if self.whisper is not None:  # Whisper writes cased, punctuated text: compare case-folded
            refs = [str(r["text"]).strip().lower() for r in records]
        else:
            refs = [self.vocab.normalise(str(r["text"])).lower() for r in records]
        hyps = [p["text"].lower() for p in predictions]
        return {"wer": error_rate(refs, hyps, words=True), "cer": error_rate(refs, hyps, words=False),
                "n": len(records)}

    # -- training ------------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, augment: bool = False, language: str | None = None,
                  task: str | None = None, max_target_tokens: int = 448, label_smoothing: float = 0.0,
                  **training_args: Any):
        """Training on transcribed audio (manifest, folder or list; see :mod:`hub_speech.data`)
        with the common Trainer: CTC for CTC recognisers, teacher forcing for Whisper.

        Args:
            train: transcribed clips; eval: held-out ones (``eval_loss``; the best is kept).
            augment: perturb speed and spectral tilt of every training draw (:mod:`hub_speech.augment`).
            language, task: Whisper only: the prompt the decoder is taught
                (``<|startoftranscript|> <|language|> <|task|> <|notimestamps|>``; a multilingual
                checkpoint needs ``language``; ``task`` defaults to transcribe).
            max_target_tokens: Whisper only: labels (prompt, text, end token) are cut to this.
            label_smoothing: Whisper only: the cross-entropy's label smoothing (0 to 0.99).
            **training_args: :class:`hub.train.TrainingArguments`.

        Clips are used whole (a Whisper clip at most 30 s). CTC transcripts are written in the
        model's vocabulary (case folded; a character it lacks raises); Whisper's are tokenised
        as given, after the prompt (loss on every label but the start token, as transformers'
        fine-tuning recipe). Returns the :class:`~hub.train.TrainResult`; the pipeline keeps
        the best evaluation's weights (lowest loss).
        """
        from hub.train import Trainer, TrainingArguments
        from hub_speech.data import read_audio_records

        if self.whisper is not None:
            return self._fine_tune_whisper(train, eval, augment=augment, language=language, task=task,
                                           max_target_tokens=max_target_tokens, label_smoothing=label_smoothing,
                                           **training_args)
        given = {k: v for k, v in {"language": language, "task": task}.items() if v is not None}
        if given or label_smoothing:
            raise InvalidInputError(f"{', '.join([*given, *(['label_smoothing'] if label_smoothing else [])])}= "
                                    "only Whisper's fine_tune takes; this is a CTC recogniser.")
        args = TrainingArguments.from_kwargs(**training_args)
        vocab = self.vocab
        train_features = self.training_features(read_audio_records(train, target="text"), "text", vocab.encode)
        eval_features = (self.training_features(read_audio_records(eval, target="text"), "text", vocab.encode)
                         if eval is not None else None)
        if augment:
            train_features = AugmentedClips(train_features, min_samples=self.model.min_samples)
        trainer = Trainer(self.model, args, train_data=train_features, collate=self.collate,
                          eval_data=eval_features, save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        return result

    def _fine_tune_whisper(self, train: Any, eval: Any, *, augment: bool, language: str | None, task: str | None,
                           max_target_tokens: int, label_smoothing: float, **training_args: Any):
        """Whisper's teacher-forced fine-tuning (see :meth:`fine_tune`)."""
        from hub.train import Trainer, TrainingArguments
        from hub.validate import check_number
        from hub_speech.data import read_audio_records

        whisper = self.whisper
        label_smoothing = check_number("label_smoothing", label_smoothing, minimum=0.0, maximum=0.99)
        max_target_tokens = check_int("max_target_tokens", max_target_tokens, minimum=2)
        args = TrainingArguments.from_kwargs(**training_args)
        prompt = whisper.training_prompt(language, task)
        window = int(whisper.window_s * self.sample_rate)

        def featurise(data: Any, name: str) -> list[dict[str, Any]]:
            records = read_audio_records(data, target="text")
            features = self.training_features(records, "text",
                                              lambda text: whisper.labels(str(text), prompt, max_target_tokens))
            for index, feature in enumerate(features):
                if feature["length"] > window:
                    raise DataError(f"{name} clip {index} is {feature['length'] / self.sample_rate:.1f} s long; "
                                    f"Whisper hears {whisper.window_s:g} s at once: cut it into clips of at most "
                                    f"{whisper.window_s:g} s, each with its own transcript.")
            return features

        train_features = featurise(train, "training")
        eval_features = featurise(eval, "evaluation") if eval is not None else None
        if augment:
            train_features = AugmentedClips(train_features, min_samples=self.model.min_samples)
        trainer = Trainer(_Smoothed(self.model, label_smoothing), args, train_data=train_features,
                          collate=whisper.training_collate, eval_data=eval_features,
                          save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        return result

    def pretrain(self, data: Any, eval: Any = None, *, mask_prob: float = 0.065, span: int = 5,
                 **training_args: Any):
        """Masked-frame pretraining of the acoustic encoder on unlabelled audio (see
        :class:`hub_speech.models.encoder.MaskedFramePretrainer`); the CTC head is left untouched."""
        from hub_speech.pretrain import pretrain_encoder

        if not isinstance(self.model, SpeechCTC):
            raise HubError(f"pretrain needs Hub's own speech-ctc model; {type(self.model).__name__} "
                           "(a converted checkpoint) is already pretrained: fine_tune it instead.")
        return pretrain_encoder(self, self.model.encoder, data, eval=eval, mask_prob=mask_prob, span=span,
                                **training_args)


class _Smoothed(torch.nn.Module):
    """The model as the Trainer calls it (``model(**batch)``), with the run's label smoothing
    (a setting of the loss, not a tensor of the batch)."""

    def __init__(self, model: torch.nn.Module, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(**batch, label_smoothing=self.label_smoothing)
