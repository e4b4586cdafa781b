"""``fill-mask``: the most likely tokens for each mask in a text, like transformers.

One mask: a list of ``{"score", "token", "token_str", "sequence"}`` (best first); several
masks: one such list per mask. The checkpoint must carry a masked-LM head.
"""

from __future__ import annotations

from typing import Any

import torch

from hub.errors import InvalidInputError
from hub.results import Prediction, ResultList
from hub.validate import check_int
from hub_text.models.bert import BertMaskedLM
from hub_text.pipelines.base import TextPipeline


class FillMaskPipeline(TextPipeline):
    task = "fill-mask"
    architecture = "bert-mlm"
    model_types = BertMaskedLM
    model_needs = "a masked-language model (e.g. transformers' BertForMaskedLM)"
    default_long_inputs = "error"  # a window without the mask has nothing to fill

    # -- pretraining ----------------------------------------------------------------
    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> "FillMaskPipeline":
        """A randomly initialised BERT masked LM (``bert-mlm``) for :meth:`pretrain`.

        ``config`` holds the sizes: backbone keys (``hidden_size``, ``num_layers``,
        ``num_heads``, ``intermediate_size``, ``dropout``, ...) at the top level or under
        ``"backbone"``, plus ``max_positions`` (512), ``type_vocab_size``, ``position``.
        Defaults make a tiny model (4 layers, hidden 256, 4 heads). The vocabulary size and
        padding token come from ``tokenizer`` (an object or a folder), which needs
        ``[MASK]``, ``[CLS]`` and ``[SEP]`` (``train_tokenizer(texts, kind="wordpiece")``).
        """
        from hub_text.pretrain import masked_lm_config, new_pipeline

        return new_pipeline(cls, masked_lm_config, config, tokenizer, device=device, dtype=dtype, seed=seed)

    def pretrain(self, data: Any, eval: Any = None, *, block_size: int | None = None, val_fraction: float = 0.05,
                 eval_every: int | None = None, mlm_probability: float = 0.15,
                 **training_args: Any) -> Any:
        """Masked-LM pretraining (BERT's dynamic 80/10/10 masking) with the common Trainer.

        ``data``: a .txt/.jsonl/.json file, a folder of them, or a list of strings (see
        :mod:`hub_text.pretrain`). Documents are packed into ``[CLS] ... [SEP]`` blocks of
        ``block_size`` tokens (default: the model's positions, at most 512);
        ``mlm_probability`` of the non-special tokens are predicted, masks drawn anew per
        batch from a generator seeded by ``seed``. A ``val_fraction`` of the documents is
        held out (seeded, masked once) unless ``eval=`` is given; evaluation reports
        ``eval_loss`` (per masked token) and ``eval_perplexity``, after every epoch or every
        ``eval_every`` optimizer steps. Other keywords are :class:`hub.train.TrainingArguments`
        (pretraining defaults: learning_rate 5e-4, cosine schedule, 5 % warm-up, batch 32,
        eval_batch_size = batch_size; device: the pipeline's). The pipeline keeps the best
        evaluation's weights. Returns the TrainResult.
        """
        from hub_text.pretrain import pretrain_language_model

        return pretrain_language_model(self, data, objective="mlm", block_size=block_size,
                                       val_fraction=val_fraction, eval=eval, eval_every=eval_every,
                                       mlm_probability=mlm_probability, **training_args)

    @property
    def mask_token(self) -> str:
        return self.tokenizer.mask_token

    def check_parameters(self, params: dict[str, Any]) -> None:
        super().check_parameters(params)
        if params.get("long_inputs") == "window":  # the result is read off one window only
            raise InvalidInputError("fill-mask cannot read a long text window by window (a window without "
                                    "the mask has nothing to fill); pass long_inputs='truncate' or 'error'.")
        check_int("top_k", params.get("top_k", 5), minimum=1)

    def preprocess(self, inputs: list[Any], *, long_inputs: str | None = None) -> list[dict[str, Any]]:
        self.check_texts(inputs)
        features = self.encode(inputs, long_inputs=long_inputs)
        mask_id = self.tokenizer.mask_token_id
        for feature in features:
            positions = [i for i, t in enumerate(feature["input_ids"]) if t == mask_id]
            if not positions:
                if feature["meta"]["truncated"] and mask_id in self.tokenizer(
                        inputs[feature["input_index"]], verbose=False)["input_ids"]:
                    raise InvalidInputError(
                        f"fill-mask: input {feature['input_index']} has its {self.mask_token} beyond the model's "
                        f"{self.max_tokens} tokens, which long_inputs='truncate' cut off; shorten the text.")
                raise InvalidInputError(f"fill-mask: input {feature['input_index']} has no {self.mask_token} "
                                        f"token; write {self.mask_token} where a word should be predicted.")
            feature["mask_positions"] = positions
        return features

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"])["logits"].float()  # (B, T, V)

    def _export_spec(self) -> Any:
        """The masked LM's logits (B, T, vocabulary) from input_ids and attention_mask."""
        return self._text_export_spec(self.model, "logits", {0: "batch", 1: "sequence"},
                                      "masked-LM logits (batch, sequence, vocabulary); Hub reads them at the mask "
                                      "positions and takes a softmax")

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    top_k: int = 5) -> Any:
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise InvalidInputError(f"top_k must be a positive integer, got {top_k!r}.")
        feature, logits = features[0], outputs[0]
        ids = list(feature["input_ids"])
        per_mask = []
        for position in feature["mask_positions"]:
            scores, tokens = logits[position].softmax(-1).topk(top_k)
            candidates = []
            for score, token in zip(scores.tolist(), tokens.tolist()):
                filled = ids[:position] + [token] + ids[position + 1:]
                candidates.append(Prediction(score=score, token=token, token_str=self.tokenizer.decode([token]),
                                             sequence=self.tokenizer.decode(filled, skip_special_tokens=True),
                                             metadata=feature["meta"]))
            per_mask.append(ResultList(candidates, metadata=feature["meta"]))
        return per_mask[0] if len(per_mask) == 1 else ResultList(per_mask, metadata=feature["meta"])
