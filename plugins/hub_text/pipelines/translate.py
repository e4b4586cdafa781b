"""``translate``: a text in, ``{"translation_text"}`` out, through an encoder-decoder
(Marian's opus-mt models, T5, mBART-style), as transformers' TranslationPipeline did.

``src_lang`` / ``tgt_lang`` (language codes, e.g. ``"en"``, ``"de"``) choose T5's entry
``task_specific_params["translation_en_to_de"]`` (its ``"translate English to German: "``
prefix); ``hub.load("translation_en_to_de", model=...)`` sets both, as transformers' task
name did. When the tokenizer knows ``tgt_lang`` as a token (mBART-50's ``"de_DE"``) the
decoder is made to start with it. A Marian model translates one language pair and needs
neither.
"""

from __future__ import annotations

from typing import Any

from hub.errors import InvalidInputError
from hub_text.models.seq2seq_generation import GENERATION_PARAMETERS
from hub_text.pipelines.text2text import Seq2SeqPipeline


class TranslationPipeline(Seq2SeqPipeline):
    task = "translate"
    result_key = "translation_text"
    target_field = "translation"
    call_parameters = frozenset({*GENERATION_PARAMETERS, "src_lang", "tgt_lang"})

    def task_params(self, params: dict[str, Any]) -> dict[str, Any]:
        src, tgt = params.get("src_lang"), params.get("tgt_lang")
        if src is None or tgt is None:
            return {}
        entry = (self.model.config.get("task_specific_params") or {}).get(f"translation_{src}_to_{tgt}")
        return dict(entry) if isinstance(entry, dict) else {}

    def check_parameters(self, params: dict[str, Any]) -> None:
        for key in ("src_lang", "tgt_lang"):
            value = params.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInputError(f"{key} must be a language code such as 'en' or 'de', got {value!r:.40}.")
        if (params.get("src_lang") is None) != (params.get("tgt_lang") is None):
            raise InvalidInputError("translate: give both src_lang and tgt_lang (e.g. src_lang='en', "
                                    "tgt_lang='de'), or neither.")
        super().check_parameters(params)

    def _forced_bos(self, params: dict[str, Any], default: int | None) -> int | None:
        target = params.get("tgt_lang")
        if target and target in getattr(self.tokenizer, "all_special_tokens", ()):
            return int(self.tokenizer.convert_tokens_to_ids(target))
        return default
