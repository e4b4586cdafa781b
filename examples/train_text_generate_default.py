"""Train the shipped ``text-generate`` default, ``fortunes-gpt``: a small GPT on the fortunes.

A 2-layer GPT (hidden 128, 4 heads, 128 positions, 0.9 M parameters, most of them the
4,096-token embedding) with a byte-level BPE tokenizer, both trained from scratch on 95 % of
the Debian fortunes (``apt-get install -y fortunes fortunes-min``) by Hub's own ``pretrain``
(800 steps of 32 blocks of 128 tokens, about 4 passes over the data, AdamW, cosine decay
from 3e-3); small on purpose, so that it trains in well under an hour on a shared 2-core CPU
(``examples/pretrain_gpt.py`` trains the larger 4-layer one). 5 % of the fortunes are held out
(:mod:`examples.lm_defaults`). The model is saved with int8 weights into
``plugins/hub_text/weights/fortunes-gpt``, reloaded, and *that* model's held-out perplexity is
measured against unigram and bigram models counted on the same training tokens;
``--update-registry`` writes the figures into registry.yaml. Reproduce with::

    python -m examples.train_text_generate_default --threads 1 --update-registry

Measured: 800 steps took 3,706 s (62 minutes) on a 2-core CPU shared with other jobs (load about 12).
"""

from __future__ import annotations

import json
from pathlib import Path

from examples import lm_defaults
from examples.registry_update import update_registry

ROOT = Path(__file__).resolve().parent.parent
NAME = "fortunes-gpt"
DEFAULT_OUT = ROOT / "plugins" / "hub_text" / "weights" / NAME


def main() -> None:
    args = lm_defaults.training_parser(__doc__, max_steps=800, learning_rate=3e-3, eval_every=200, batch_size=32,
                                       out=DEFAULT_OUT, work_dir="/tmp/hub-fortunes-gpt").parse_args()
    from hub_text.pretrain import tokenize_documents

    run = lm_defaults.train_and_ship("text-generate", NAME, args, tokenizer_kind="bpe",
                                     config={"num_layers": 2, "hidden_size": 128, "num_heads": 4},
                                     weight_decay=0.1, warmup_ratio=0.05)
    shipped, held_out = run["pipe"], run["held_out"]
    blocks = lm_defaults.causal_blocks(shipped.tokenizer, held_out)
    measured = lm_defaults.causal_perplexity(shipped, blocks)
    baselines = lm_defaults.ngram_perplexities(tokenize_documents(shipped.tokenizer, run["train"]), blocks,
                                               len(shipped.tokenizer), shipped.tokenizer.eos_token_id)
    report = {**run["summary"], "tokens": measured["tokens"], "perplexity": round(measured["perplexity"], 2),
              **{k: round(v, 2) for k, v in baselines.items()},
              "sample": shipped("Q:\tWhat", max_new_tokens=40)["generated_text"]}
    print(json.dumps(report, indent=2))
    if args.update_registry:
        update_registry(NAME, {key: report[key] for key in ("perplexity", "unigram_perplexity", "bigram_perplexity",
                                                            "tokens")})


if __name__ == "__main__":
    main()
