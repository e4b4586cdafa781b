"""Train the shipped ``recommend`` default: SASRec on the real MovieLens ratings.

Chronological leave-one-out on MovieLens "latest-small" (100,004 ratings, 671 users, 9,066
movies): each user's last rated movie is the test item, the one before it validation.
SASRec (2 layers, hidden 64, the last 50 items) trains on the rest through Hub's Trainer,
keeps its best epoch by validation NDCG@10, then stores every user's history including the
validation item. The test figures (both protocols) are printed and, with
``--update-registry``, written into the ``movielens-sasrec`` entry of registry.yaml; a
``data``-marked test recomputes them from the shipped folder.

    python -m examples.recsys_data_prep
    python -m examples.train_recommend_default --update-registry

About 15-25 minutes on a shared 2-core CPU (one torch thread).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
NAME = "movielens-sasrec"
DEFAULT_OUT = ROOT / "plugins" / "hub_recsys" / "weights" / NAME
CONFIG = {"architecture": "sasrec", "max_len": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2,
          "dropout": 0.2}


def update_registry(metrics: dict[str, dict[str, float]], path: Path = ROOT / "registry.yaml") -> None:
    """Write the measured test figures into the movielens-sasrec entry, keeping comments."""
    text = path.read_text(encoding="utf-8")
    block = re.search(rf"\n  {NAME}:\n(?:    .*\n|      .*\n)+", text)
    if block is None:
        raise SystemExit(f"{path}: no {NAME} entry to update")
    new = block.group(0)
    for key, value in (("hr@10_full", metrics["full"]["hr@10"]), ("ndcg@10_full", metrics["full"]["ndcg@10"]),
                       ("mrr_full", metrics["full"]["mrr"]), ("hr@10_sampled100", metrics["sampled"]["hr@10"]),
                       ("ndcg@10_sampled100", metrics["sampled"]["ndcg@10"])):
        new = re.sub(rf"(\n      {re.escape(key)}: ).*", rf"\g<1>{value:.4f}", new)
    path.write_text(text.replace(block.group(0), new), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--patience", type=int, default=10, help="evaluations without improvement before stopping")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy small CPU)")
    parser.add_argument("--update-registry", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))

    import hub
    from examples.recsys_data_prep import movielens
    from hub_recsys.data import leave_one_out, read_interactions

    train, valid, test = leave_one_out(read_interactions(movielens()))
    rec = hub.create("recommend", config=CONFIG, device=args.device, seed=args.seed)
    start = time.perf_counter()
    result = rec.fine_tune(train, valid, epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed,
                           early_stopping_patience=args.patience, progress=False, log_every=10_000)
    seconds = time.perf_counter() - start
    print(f"trained {result.epochs_run} epochs in {seconds:.0f} s; best epoch "
          f"{result.best_epoch} (validation NDCG@10 {result.best_metric:.4f})", flush=True)
    metrics = {protocol: rec.evaluate(test, k=10, protocol=protocol, negatives=100, seed=0)
               for protocol in ("full", "sampled")}
    print(json.dumps(metrics, indent=2))
    rec.metadata.update(model_name=NAME, license="other")  # trained on MovieLens: research use (GroupLens terms)
    rec.save(args.out)
    (args.out / "train.json").write_text(json.dumps(
        {"train_seconds": round(seconds, 1), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
         "validation_ndcg@10": result.best_metric, "threads": torch.get_num_threads()}, indent=2) + "\n")
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"saved {args.out} ({size / 1e6:.1f} MB)")
    if args.update_registry:
        update_registry(metrics)


if __name__ == "__main__":
    main()
