"""``translate``: a text in, ``{"translation_text"}`` out, through an encoder-decoder
(Marian's opus-mt models, T5, mBART-50-style), as transformers' TranslationPipeline did.

``src_lang`` / ``tgt_lang`` choose T5's entry ``task_specific_params["translation_en_to_de"]``
(its ``"translate English to German: "`` prefix); ``hub.load("translation_en_to_de",
model=...)`` sets both, as transformers' task name did. A tokenizer with language codes
(mBART-50's ``MBart50Tokenizer``: ``en_XX``, ``de_DE``, ...) needs both: the source is
encoded with ``src_lang``'s code as the tokenizer's prefix token and the decoder is forced to
start with ``tgt_lang``'s code (``forced_bos_token_id``), as transformers' pipeline and
``generate`` do; a bare ISO code (``"en"``) stands for the one code it begins (``en_XX``), and
an unknown code is an error listing the close ones. A Marian model translates one language
pair and needs neither.
"""

from __future__ import annotations

import copy
import difflib
import threading
from typing import Any

from hub.errors import InvalidInputError
from hub_text.models.seq2seq_generation import GENERATION_PARAMETERS
from hub_text.pipelines.text2text import Seq2SeqPipeline


def language_codes(tokenizer: Any) -> dict[str, int]:
    """A tokenizer's language codes and their token ids (mBART-50's ``lang_code_to_id``);
    empty for tokenizers without them."""
    codes = getattr(tokenizer, "lang_code_to_id", None)
    return {str(k): int(v) for k, v in codes.items()} if isinstance(codes, dict) else {}


def resolve_language(key: str, value: str, codes: dict[str, int]) -> str:
    """``value`` as one of ``codes``: itself, or the only code it is the language part of
    (``"de"`` -> ``"de_DE"``); else an InvalidInputError naming the close matches."""
    if value in codes:
        return value
    stem = [code for code in codes if code.split("_")[0].lower() == value.split("_")[0].lower()]
    if len(stem) == 1 and "_" not in value:
        return stem[0]
    close = list(dict.fromkeys(stem + difflib.get_close_matches(value, list(codes), n=5, cutoff=0.5)))[:5]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise InvalidInputError(f"{key}={value!r} is not a language code of this model's tokenizer; {hint}it knows "
                            f"{len(codes)}: {', '.join(sorted(codes)[:12])}{', ...' if len(codes) > 12 else ''}.")


class TranslationPipeline(Seq2SeqPipeline):
    task = "translate"
    result_key = "translation_text"
    target_field = "translation"
    call_parameters = frozenset({*GENERATION_PARAMETERS, "src_lang", "tgt_lang"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._source_tokenizers: dict[str, Any] = {}  # src_lang code -> a tokenizer copy set to it
        self._lock = threading.Lock()

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
        codes = language_codes(self.tokenizer)
        if codes:
            if params.get("src_lang") is None and self.model.config.get("generation", {}).get(
                    "forced_bos_token_id") is None:
                example = ", ".join(repr(c) for c in ("en_XX", "de_DE") if c in codes) or repr(sorted(codes)[0])
                raise InvalidInputError(f"translate: this model translates between the language codes of its "
                                        f"tokenizer; give src_lang= and tgt_lang= (e.g. {example}).")
            for key in ("src_lang", "tgt_lang"):
                if params.get(key) is not None:
                    resolve_language(key, params[key], codes)
        super().check_parameters(params)

    def source_tokenizer(self, params: dict[str, Any]) -> Any:
        """For a tokenizer with language codes, a copy whose prefix token is ``src_lang``'s
        (one per code, kept: the pipeline's own tokenizer is never changed, so concurrent
        calls with other source languages do not race)."""
        codes = language_codes(self.tokenizer)
        if not codes or params.get("src_lang") is None:
            return self.tokenizer
        code = resolve_language("src_lang", params["src_lang"], codes)
        with self._lock:
            if code not in self._source_tokenizers:
                tokenizer = copy.deepcopy(self.tokenizer)
                tokenizer.src_lang = code
                self._source_tokenizers[code] = tokenizer
            return self._source_tokenizers[code]

    def _forced_bos(self, params: dict[str, Any], default: int | None) -> int | None:
        target = params.get("tgt_lang")
        codes = language_codes(self.tokenizer)
        if target and codes:
            return codes[resolve_language("tgt_lang", target, codes)]
        if target and target in getattr(self.tokenizer, "all_special_tokens", ()):
            return int(self.tokenizer.convert_tokens_to_ids(target))
        return default
