"""``text-embed``: one vector per text (sentence embeddings).

The pooling (mean over real tokens, the [CLS] token, or the max), the optional L2
normalisation and the token limit come from the model folder: a sentence-transformers
folder (``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json``) or a
Hub one (``config.json``'s ``"embedding"``); a plain transformers encoder gets mean pooling.
Long texts are embedded window by window and the windows' pooled vectors averaged,
weighted by their token counts, before normalisation.

A model of another architecture joins through one method: a module with
``embed_text(input_ids, attention_mask) -> (B, D)`` (and ``max_positions``) is used as it is,
its own pooling inside, with the defaults of its ``embedding_options``. The vision plugin's
CLIP has one, so ``hub.load("text-embed", model=clip_folder)`` gives the projected text
embeddings in the space ``image-embed`` puts the same folder's images in (unit length by
default, as CLIP compares them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hub.backbone.pooling import pool
from hub.errors import InvalidInputError
from hub.modeling import LoadedModel, read_config, wrong_model
from hub.results import ResultList
from hub.validate import check_bool
from hub_text.models.bert import BertEncoder
from hub_text.pipelines.base import TextPipeline

POOLINGS = ("mean", "cls", "max")


def read_embedding_options(folder: Path) -> dict[str, Any]:
    """Pooling / normalisation / token limit from a sentence-transformers or Hub folder."""
    config = read_config(folder)
    if "embedding" in config:
        return dict(config["embedding"])
    options: dict[str, Any] = {"pooling": "mean", "normalize": False, "max_tokens": None}
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text(encoding="utf-8")):
            kind = module.get("type", "")
            if kind.endswith("Normalize"):
                options["normalize"] = True
            elif kind.endswith("Pooling"):
                pooling = json.loads((folder / module["path"] / "config.json").read_text(encoding="utf-8"))
                if pooling.get("pooling_mode_cls_token"):
                    options["pooling"] = "cls"
                elif pooling.get("pooling_mode_max_tokens"):
                    options["pooling"] = "max"
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        options["max_tokens"] = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
    return options


class TextEmbeddingPipeline(TextPipeline):
    task = "text-embed"
    architecture = "bert"
    runner_attribute = "encoder_module"  # forward calls the bare encoder

    def __init__(self, model: BertEncoder, tokenizer: Any, *, options: dict[str, Any], **kwargs: Any) -> None:
        self.encoder_module = model
        super().__init__(_EncoderHolder(model), tokenizer, **kwargs)
        if not _embeds_text(model) and options.get("pooling", "mean") not in POOLINGS:
            raise InvalidInputError(f"pooling must be one of {POOLINGS}, got {options['pooling']!r}.")
        self.options = {"pooling": "mean", "normalize": False, "max_tokens": None, **options}

    @property
    def max_tokens(self) -> int:
        limit = super().max_tokens
        return min(limit, self.options["max_tokens"]) if self.options.get("max_tokens") else limit

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        """The BERT-family encoder, alone or inside a task model (its ``.encoder``); or a model
        that embeds texts itself (``embed_text``, e.g. CLIP)."""
        if _embeds_text(loaded.module):
            return loaded.module
        encoder = loaded.module if isinstance(loaded.module, BertEncoder) else getattr(loaded.module, "encoder", None)
        if not isinstance(encoder, BertEncoder):  # e.g. an image model: say which task it is for
            raise wrong_model(loaded, cls.task, "a BERT-family encoder (bert, bert-classifier, bert-mlm, ...)")
        metadata["architecture"] = cls.architecture
        return encoder

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        """The embedding options (``embedding.json`` or a sentence-transformers layout) and the tokenizer."""
        options = read_embedding_options(folder)
        if _embeds_text(model) and "embedding" not in read_config(folder):
            options = {**options, **model.embedding_options}
        metadata["embedding"] = options
        return {"options": options, **super()._load_extra_files(folder, model, metadata)}

    def check_parameters(self, params: dict[str, Any]) -> None:
        super().check_parameters(params)
        check_bool("normalize", params.get("normalize"), none_ok=True)

    def preprocess(self, inputs: list[Any], *, long_inputs: str | None = None, stride: int | None = None,
                   max_windows: int | None = None) -> list[dict[str, Any]]:
        self.check_texts(inputs)
        return self.encode(inputs, long_inputs=long_inputs, stride=stride, max_windows=max_windows)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["attention_mask"]
        if _embeds_text(self.encoder_module):
            return self.encoder_module.embed_text(batch["input_ids"], mask).float()  # (B, D)
        hidden = self.encoder_module(batch["input_ids"], mask).float()  # (B, T, C)
        return pool(hidden, mask, self.options["pooling"])  # (B, C)

    def _export_spec(self) -> Any:
        """The encoder's last hidden state (B, T, C); pooling and normalisation stay Hub's."""
        spec = self._text_export_spec(self.encoder_module, "last_hidden_state", {0: "batch", 1: "sequence"},
                                      "the encoder's last hidden state (batch, sequence, hidden); Hub pools it "
                                      f"({self.options['pooling']}) over real tokens"
                                      f"{' and L2-normalises' if self.options['normalize'] else ''}",
                                      key=None, returns="tensor")
        spec.preprocessing["embedding"] = dict(self.options)
        return spec

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    normalize: bool | None = None) -> ResultList:
        vectors = torch.stack(outputs)
        if len(outputs) > 1:
            weights = torch.tensor([float(f["length"]) for f in features])
            vectors = (vectors * weights[:, None]).sum(0, keepdim=True) / weights.sum()
        vector = vectors[0]
        normalized = bool(self.options["normalize"] if normalize is None else normalize)
        if normalized:
            vector = torch.nn.functional.normalize(vector, dim=0)
        # the list of floats, with what happened to the text (num_tokens, truncated, windows)
        return ResultList(vector.tolist(), metadata={**features[0]["meta"], "normalized": normalized,
                                                    "pooling": self.options["pooling"]})

    # -- saving (Pipeline.save): the bare encoder, with its pooling options in config.json
    def _module_to_save(self) -> torch.nn.Module:
        return self.encoder_module

    def _config_extra(self) -> dict[str, Any]:
        return {"embedding": self.options}

    def _architecture_to_save(self) -> str:
        """``bert``, or the architecture of a model that embeds texts itself (``clip``)."""
        return self.metadata["architecture"] if _embeds_text(self.encoder_module) else self.architecture


def _embeds_text(model: Any) -> bool:
    """Whether ``model`` computes text embeddings itself (``embed_text``), as CLIP does."""
    return not isinstance(model, BertEncoder) and callable(getattr(model, "embed_text", None))


class _EncoderHolder(torch.nn.Module):
    """Gives TextPipeline its ``model.encoder`` view of a bare encoder."""

    def __init__(self, encoder: BertEncoder) -> None:
        super().__init__()
        self.encoder = encoder
