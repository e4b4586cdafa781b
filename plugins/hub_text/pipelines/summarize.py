"""``summarize``: a text in, ``{"summary_text"}`` out, through an encoder-decoder (BART,
T5, ...), as transformers' SummarizationPipeline did (transformers 5 dropped it: Hub's
output equals ``model.generate`` + ``tokenizer.decode`` on the same weights).

Everything but the result's key and the T5 entry it reads (``task_specific_params
["summarization"]``: the ``"summarize: "`` prefix and the beam settings) is
:class:`~hub_text.pipelines.text2text.Seq2SeqPipeline`'s.
"""

from __future__ import annotations

from hub_text.pipelines.text2text import Seq2SeqPipeline


class SummarizationPipeline(Seq2SeqPipeline):
    task = "summarize"
    result_key = "summary_text"
    task_params_key = "summarization"
    target_field = "summary"
