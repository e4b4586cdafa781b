"""Command line of the recommender plugin: split data, train, evaluate, recommend.

    python -m hub_recsys split ratings.csv --out splits/            # chronological leave-one-out
    python -m hub_recsys split ratings.csv --out splits/ --random 0.2
    python -m hub_recsys train --arch sasrec --train splits/train.csv --eval splits/valid.csv --output my-rec
    python -m hub_recsys evaluate --model my-rec --test splits/test.csv --protocol full
    python -m hub_recsys recommend --model my-rec 1 2 3 --k 5

Results are printed as JSON; every evaluation names its protocol.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _csv_text(data: Any) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["user", "item"] + (["rating"] if data.ratings is not None else []) + \
        (["timestamp"] if data.timestamps is not None else [])
    writer.writerow(header)
    for row in range(len(data)):
        values = [data.user_ids.ids[data.users[row]], data.item_ids.ids[data.items[row]]]
        if data.ratings is not None:
            values.append(f"{float(data.ratings[row]):g}")
        if data.timestamps is not None:
            values.append(int(data.timestamps[row]))
        writer.writerow(values)
    return buffer.getvalue()


def cmd_split(args: argparse.Namespace) -> dict[str, Any]:
    from hub._fs import atomic_write_text
    from hub.errors import SaveTargetError
    from hub_recsys.data import leave_one_out, random_split, read_interactions

    out = Path(args.out)
    names = ("train", "test") if args.random else ("train", "valid", "test")
    targets = {name: out / f"{name}.csv" for name in names}
    source = Path(args.data).resolve()
    for path in targets.values():  # checked before any work: never replace the input or a user's file
        if path.resolve() == source:
            raise SaveTargetError(f"--out {str(out)!r} would overwrite the input file {str(path)!r}; "
                                  "choose another folder.")
        if path.exists() and not args.overwrite:
            raise SaveTargetError(f"{str(path)!r} already exists; pass --overwrite to replace it, or "
                                  "choose another --out folder.")
    data = read_interactions(args.data, duplicates=args.duplicates)
    if args.random:
        parts = dict(zip(names, random_split(data, test_fraction=args.random, seed=args.seed)))
    else:
        parts = dict(zip(names, leave_one_out(data)))
    for name, part in parts.items():
        atomic_write_text(targets[name], _csv_text(part))  # a crash never leaves half a file
    return {name: {"path": str(targets[name]), "rows": len(part)} for name, part in parts.items()}


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    import hub
    from hub._fs import check_save_target

    check_save_target(args.output)  # a bad --output fails now, not after training
    config = {"architecture": args.arch, **json.loads(args.config or "{}")}
    rec = hub.create("recommend", config=config, device=args.device, seed=args.seed)
    training = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.learning_rate),
                                  ("batch_size", args.batch_size), ("seed", args.seed)) if v is not None}
    result = rec.fine_tune(args.train, args.eval, **training)
    folder = rec.save(args.output)
    return {"output": str(folder), "best_metric": result.best_metric, "best_epoch": result.best_epoch,
            "epochs": result.epochs_run, "train_seconds": result.train_seconds}


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    import hub

    rec = hub.load("recommend", model=args.model, device=args.device)
    return rec.evaluate(args.test, k=args.k, protocol=args.protocol, negatives=args.negatives, seed=args.seed)


def cmd_recommend(args: argparse.Namespace) -> Any:
    import hub

    rec = hub.load("recommend", model=args.model, device=args.device)
    results = rec(list(args.users), k=args.k)
    return {user: {"items": list(r), **r.metadata} for user, r in zip(args.users, results)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub_recsys", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split", help="write train/valid/test CSVs (leave-one-out, or --random FRACTION)")
    p.add_argument("data")
    p.add_argument("--out", required=True)
    p.add_argument("--random", type=float, default=None, metavar="FRACTION")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duplicates", default="last", choices=("last", "first", "keep", "error"))
    p.add_argument("--overwrite", action="store_true", help="replace train/valid/test CSVs already in --out")
    p.set_defaults(func=cmd_split)
    p = sub.add_parser("train", help="train a new recommender and save it")
    p.add_argument("--arch", required=True, choices=("mf", "bpr", "ncf", "sasrec", "bert4rec"))
    p.add_argument("--train", required=True)
    p.add_argument("--eval")
    p.add_argument("--output", required=True)
    p.add_argument("--config", help='model sizes as JSON, e.g. \'{"hidden_size": 64}\'')
    p.add_argument("--epochs", type=float)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="HR@K, NDCG@K, MRR (and RMSE/MAE for mf) on held-out interactions")
    p.add_argument("--model", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--protocol", default="full", choices=("full", "sampled"))
    p.add_argument("--negatives", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("recommend", help="top-k items for user ids")
    p.add_argument("--model")
    p.add_argument("users", nargs="+")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--device")
    p.set_defaults(func=cmd_recommend)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hub.errors import HubError

    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
