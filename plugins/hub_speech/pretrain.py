"""Masked-frame pretraining of a speech encoder through the common Trainer."""

from __future__ import annotations

from typing import Any

from hub_speech.models.encoder import MaskedFramePretrainer, SpeechEncoder


def pretrain_encoder(pipeline: Any, encoder: SpeechEncoder, data: Any, *, eval: Any = None,
                     mask_prob: float = 0.065, span: int = 5, **training_args: Any):
    """Train ``encoder`` to reconstruct masked log-mel frames of unlabelled ``data`` (a folder of
    audio files, a manifest with ``path`` fields, or a list of paths/arrays). The
    reconstruction layer is discarded afterwards; the encoder keeps the learned weights.
    Returns the :class:`~hub.train.TrainResult`."""
    from hub.train import Trainer, TrainingArguments
    from hub_speech.data import read_audio_records

    args = TrainingArguments.from_kwargs(**training_args)
    objective = MaskedFramePretrainer(encoder, mask_prob=mask_prob, span=span)
    train_features = pipeline.training_features(read_audio_records(data, target=None), None)
    eval_features = pipeline.training_features(read_audio_records(eval, target=None), None) if eval else None
    # no labels: the objective's loss needs none, and the Trainer reads them only for compute_metrics
    trainer = Trainer(objective, args, train_data=train_features, collate=pipeline.collate, eval_data=eval_features)
    result = trainer.train()
    pipeline.model.to(pipeline.device).eval()
    return result
