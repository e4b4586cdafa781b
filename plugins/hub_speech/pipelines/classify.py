"""``audio-classify``: audio in, the top-k ``{"label", "score"}`` out (keyword spotting by default).

Clips longer than ``chunk_length_s`` (default 10 s) are cut into overlapping chunks and
the chunks' class probabilities averaged, weighted by their lengths. Silent audio (peak
below 1e-4) has nothing to classify and raises :class:`~hub.errors.InvalidInputError`;
``result.metadata`` holds ``seconds`` and ``chunks``.
"""

from __future__ import annotations

from typing import Any

import torch

from hub.errors import ConfigError, HubError, InvalidInputError
from hub.modeling import LoadedModel
from hub.pipeline import default_device
from hub.results import ranked_labels, weighted_mean_probabilities
from hub.validate import check_int
from hub_speech.augment import AugmentedClips
from hub_speech.models.encoder import AudioClassifier
from hub_speech.pipelines.base import AudioPipeline


class AudioClassificationPipeline(AudioPipeline):
    task = "audio-classify"
    architecture = "audio-classifier"
    model_types = AudioClassifier
    model_needs = "an audio classifier (Hub's audio-classifier)"
    default_chunk_length_s = 10.0

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        """The audio classifier, its labels into the metadata."""
        model = super()._model_from_loaded(loaded, metadata)
        metadata["labels"] = list(model.labels)
        return model

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> AudioClassificationPipeline:
        """A randomly initialised ``audio-classifier``; ``config["labels"]`` names the classes."""
        from hub_speech.models.encoder import new_model

        if tokenizer is not None:
            raise ConfigError(f"{cls.task} models take no tokenizer; the labels come from config['labels'].")
        torch.manual_seed(0 if seed is None else seed)  # reproducible by default
        model = new_model(AudioClassifier, dict(config or {}))  # unknown keys refused, size bounded first
        return cls(model.to(dtype=dtype).eval() if dtype else model.eval(), device=default_device(device),
                   dtype=dtype,
                   metadata={"task": cls.task, "architecture": cls.architecture, "labels": model.labels,
                             "from_scratch": True})

    # -- inference -----------------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        super().check_parameters(params)
        check_int("top_k", params.get("top_k", 1), minimum=1, none_ok=True)

    def preprocess(self, inputs: list[Any], *, sampling_rate: int | None = None, chunk_length_s: float | None = None,
                   stride_length_s: float | None = None, max_chunks: int | None = None,
                   max_audio_seconds: int | None = None) -> list[dict[str, Any]]:
        features = self.chunk(inputs, sampling_rate=sampling_rate, chunk_length_s=chunk_length_s,
                              stride_length_s=stride_length_s, max_chunks=max_chunks,
                              max_audio_seconds=max_audio_seconds)
        for feature in features:
            if feature["meta"]["silent"]:
                raise InvalidInputError(f"{self.task}: input {feature['input_index']} is silent (peak amplitude "
                                        "below 1e-4); there is nothing to classify.")
        return features

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**self.model_inputs(batch))["logits"].float()

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    top_k: int | None = 1) -> Any:
        # chunks of a long clip: the length-weighted mean of their probabilities
        probs = weighted_mean_probabilities(outputs, [f["length"] for f in features])
        ranked = ranked_labels(probs, self.labels, top_k, features[0]["meta"])
        return ranked[0] if top_k == 1 else ranked

    def evaluate(self, data: Any, *, batch_size: int | None = None, **params: Any) -> dict[str, float]:
        """Accuracy on labelled audio (same sources as :meth:`fine_tune`)."""
        from hub_speech.data import read_audio_records

        records = read_audio_records(data, target="label")
        predictions = self([r["audio"] for r in records], batch_size=batch_size, **params)
        correct = sum(p["label"] == str(r["label"]) for p, r in zip(predictions, records))
        return {"accuracy": correct / len(records), "n": len(records)}

    # -- training ------------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, labels: list[str] | None = None, augment: bool = False,
                  reset_head: bool = False, **training_args: Any):
        """Train on labelled audio (manifest, ``folder/<label>/*.wav`` or list; see :mod:`hub_speech.data`).

        Labels a trained output layer lacks are refused unless ``labels=[...]`` or
        ``reset_head=True`` asks for a new one (:mod:`hub.data.labels`). ``augment=True``
        perturbs speed and spectral tilt of every training draw (:mod:`hub_speech.augment`). Returns the
        :class:`~hub.train.TrainResult`; the pipeline keeps the best evaluation's weights.
        """
        from hub.data import resolve_labels
        from hub.data.labels import head_is_trained
        from hub.train import Trainer, TrainingArguments
        from hub.train.trainer import accuracy
        from hub_speech.data import read_audio_records

        args = TrainingArguments.from_kwargs(**training_args)
        train_rows = read_audio_records(train, target="label")
        eval_rows = read_audio_records(eval, target="label") if eval is not None else None
        labels, rebuild = resolve_labels([r["label"] for r in train_rows], [r["label"] for r in eval_rows or []],
                                         current=self.labels, labels=labels, reset_head=reset_head,
                                         head_trained=head_is_trained(self.metadata))
        if rebuild:
            self.model.reset_classifier(labels)
        index = {label: i for i, label in enumerate(labels)}
        encode = lambda label: index[str(label)]
        train_features = self.training_features(train_rows, "label", encode)
        if augment:
            train_features = AugmentedClips(train_features, min_samples=self.model.min_samples)
        trainer = Trainer(self.model, args, train_data=train_features,
                          collate=self.collate, compute_metrics=accuracy,
                          eval_data=self.training_features(eval_rows, "label", encode) if eval_rows else None,
                          save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        self.metadata.update(labels=labels, head_initialized=True)
        return result

    def pretrain(self, data: Any, eval: Any = None, *, mask_prob: float = 0.065, span: int = 5,
                 **training_args: Any):
        """Masked-frame pretraining of the encoder on unlabelled audio (the classifier is kept)."""
        from hub_speech.pretrain import pretrain_encoder

        if not isinstance(self.model, AudioClassifier):
            raise HubError(f"pretrain needs Hub's audio-classifier, not {type(self.model).__name__}.")
        return pretrain_encoder(self, self.model.encoder, data, eval=eval, mask_prob=mask_prob, span=span,
                                **training_args)
