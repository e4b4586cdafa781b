"""Recommenders: quality on real MovieLens ratings and speed, Hub beside the reference libraries.

Run by hand (not a test)::

    python -m examples.recsys_data_prep               # once: movielens.csv into $HUB_DATA_CACHE
    python benchmarks/recsys.py --part quality        # the quality table (several CPU minutes)
    python benchmarks/recsys.py --part speed          # throughput and top-K latency
    python benchmarks/recsys.py                       # both

**Quality**: the real MovieLens "latest-small" ratings (100,004 ratings, 671 users, 9,066
movies). Ranking: chronological leave-one-out (each user's last rating is the test item,
the one before it validation); Hub's models train on the rest, choose their best epoch on
validation, and keep the validation item in the user's history; baselines and peer
libraries train on the rest plus the validation items. Every ranking figure comes from
``hub_recsys.metrics.evaluate_ranking`` in both protocols (full ranking over all items minus
the user's seen ones; the target among 100 sampled unseen negatives, same draw for every
model). Rating prediction: a fixed random 80/20 split (seed 0), RMSE/MAE by
``hub_recsys.metrics.rating_metrics``; no model looks at the test ratings while training.

**Speed**: training throughput (interactions/s) of BPR-MF through Hub's Trainer, through a
plain PyTorch loop over the same model and batches, and of ``implicit``'s BPR and ALS; and
the latency of top-10 retrieval (seen items excluded) for 10,000 users: Hub's pipeline, a
plain PyTorch matmul + topk, and ``implicit``'s ``recommend``.

Results: ``benchmarks/results/recsys-<machine-tag>.json`` and a markdown table appended to
``benchmarks/results/recsys.md``.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, load_average, machine, machine_tag, write_results

K = 10
logger = logging.getLogger("benchmarks.recsys")


# -- shared data ---------------------------------------------------------------------------
def load_movielens():
    from examples.recsys_data_prep import movielens
    from hub_recsys.data import read_interactions

    return read_interactions(movielens())


def seen_lists(known) -> list[np.ndarray]:
    return known.sequences()


# -- quality: ranking -------------------------------------------------------------------------
def ranking_rows(test) -> tuple[np.ndarray, np.ndarray]:
    return test.users, test.items


def evaluate_scorer(name: str, score_users: Callable[[np.ndarray], torch.Tensor], test, seen, num_items: int,
                    seconds: float) -> dict[str, Any]:
    from hub_recsys.metrics import evaluate_ranking

    users, targets = ranking_rows(test)
    row = {"model": name, "train_seconds": round(seconds, 1)}
    for protocol in ("full", "sampled"):
        result = evaluate_ranking(lambda rows: score_users(users[rows]), targets, [seen[u] for u in users],
                                  num_items, k=K, protocol=protocol, negatives=100, seed=0)
        row[protocol] = result
    return row


def hub_ranking(arch: str, train, valid, test, overrides: dict[str, Any], config: dict[str, Any],
                device: str) -> dict[str, Any]:
    import hub

    start = time.perf_counter()
    rec = hub.create("recommend", config={"architecture": arch, **config}, device=device, seed=0)
    result = rec.fine_tune(train, valid, progress=False, log_every=10_000, **overrides)
    seconds = time.perf_counter() - start
    row = {"model": f"Hub {arch}", "train_seconds": round(seconds, 1), "best_epoch": result.best_epoch,
           "epochs_run": result.epochs_run}
    for protocol in ("full", "sampled"):
        row[protocol] = rec.evaluate(test, k=K, protocol=protocol, negatives=100, seed=0)
    return row, rec


def saved_ranking(folder: Path, test, device: str) -> dict[str, Any]:
    """A model trained on this split by another script, evaluated here by the same code."""
    import hub

    for _ in range(180):  # by hand: the default-model script may still be running beside this one
        if (folder / "train.json").is_file():
            break
        time.sleep(10)
    rec = hub.load("recommend", model=str(folder), device=device)
    row = {"model": f"Hub {rec.architecture} (trained by examples/train_recommend_default.py)",
           "train_seconds": json.loads((folder / "train.json").read_text())["train_seconds"]
           if (folder / "train.json").is_file() else "see its log"}
    for protocol in ("full", "sampled"):
        row[protocol] = rec.evaluate(test, k=K, protocol=protocol, negatives=100, seed=0)
    return row


def peer_rankings(known, test, seen) -> Iterator[dict[str, Any]]:
    """Popularity, item-kNN and the peer libraries, all scored by the same evaluation code."""
    from hub_recsys.models.baselines import ItemKNN, popularity_scores

    start = time.perf_counter()
    pop = popularity_scores(known)
    yield (evaluate_scorer("Popularity", lambda u: pop[None].expand(len(u), -1), test, seen, known.num_items,
                                time.perf_counter() - start))
    start = time.perf_counter()
    knn = ItemKNN(known, neighbours=100)
    yield evaluate_scorer("Item-kNN (cosine, 100 neighbours)", lambda u: knn.scores(torch.as_tensor(u)), test,
                          seen, known.num_items, time.perf_counter() - start)
    knn = None  # free the (V, V) similarity matrix before the peers run
    matrix = _csr(known)
    try:
        import implicit
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, "blas")  # implicit checks the BLAS threads when a model is made
        for label, factory in (("implicit ALS (64 factors, 15 it.)",
                                lambda: implicit.cpu.als.AlternatingLeastSquares(factors=64, regularization=0.05,
                                                                                 iterations=15, random_state=0)),
                               ("implicit BPR (64 factors, 100 it.)",
                                lambda: implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, iterations=100,
                                                                                     random_state=0))):
            start = time.perf_counter()
            model = factory()
            with threadpool_limits(1, "blas"):
                model.fit(matrix, show_progress=False)
            users_f, items_f = torch.as_tensor(model.user_factors), torch.as_tensor(model.item_factors)
            yield evaluate_scorer(label, lambda u, users_f=users_f, items_f=items_f: users_f[torch.as_tensor(u)] @ items_f.T, test, seen,
                                  known.num_items, time.perf_counter() - start)
    except ImportError as exc:
        logger.warning("implicit not installed (%s); skipped", exc)
    try:
        yield from cornac_rankings(known, test, seen)
    except ImportError as exc:
        logger.warning("cornac not installed (%s); skipped", exc)


def cornac_rankings(known, test, seen) -> Iterator[dict[str, Any]]:
    import cornac
    from cornac.data import Dataset

    triples = [(str(u), str(i), 1.0) for u, i in zip(known.users, known.items)]
    data = Dataset.from_uir(triples, seed=0)
    user_pos = np.array([data.uid_map[str(u)] for u in range(known.num_users)])
    item_pos = np.array([data.iid_map.get(str(i), -1) for i in range(known.num_items)])
    for label, model in (("cornac BPR (64 factors, 100 it.)",
                          cornac.models.BPR(k=64, max_iter=100, learning_rate=0.01, lambda_reg=0.01, seed=0,
                                            verbose=False)),
                         ("cornac NeuMF (8 factors, 10 epochs)",
                          cornac.models.NeuMF(num_factors=8, layers=[64, 32, 16, 8], act_fn="relu", num_epochs=10,
                                              num_neg=4, batch_size=256, lr=0.001, seed=0, verbose=False,
                                              backend="pytorch"))):
        start = time.perf_counter()
        try:
            model.fit(data)
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            logger.warning("%s failed: %s", label, exc)
            continue
        seconds = time.perf_counter() - start

        def score(users: np.ndarray, model=model) -> torch.Tensor:
            out = torch.full((len(users), known.num_items), float("-inf"))
            for row, u in enumerate(users):
                s = np.asarray(model.score(int(user_pos[u])), dtype=np.float32)
                valid = item_pos >= 0
                out[row, torch.as_tensor(np.flatnonzero(valid))] = torch.as_tensor(s[item_pos[valid]])
            return out

        yield evaluate_scorer(label, score, test, seen, known.num_items, seconds)


def _csr(data):
    import scipy.sparse as sp

    values = np.ones(len(data), dtype=np.float32)
    matrix = sp.csr_matrix((values, (data.users, data.items)), shape=(data.num_users, data.num_items))
    matrix.data[:] = 1.0  # duplicates summed: binarise
    return matrix


# -- quality: rating prediction --------------------------------------------------------------
def rating_table(data, device: str) -> list[dict[str, Any]]:
    import hub
    from hub_recsys.data import random_split
    from hub_recsys.metrics import rating_metrics

    train, test = random_split(data, test_fraction=0.2, seed=0)
    rows = []
    start = time.perf_counter()
    rec = hub.create("recommend", config={"architecture": "mf"}, device=device, seed=0)
    rec.fine_tune(train, progress=False, log_every=10_000)
    seconds = time.perf_counter() - start
    result = rec.evaluate(test, k=K)
    rows.append({"model": "Hub mf (biased MF, 64 factors)", "rmse": result["rmse"], "mae": result["mae"],
                 "train_seconds": round(seconds, 1)})
    mean = float(train.ratings.mean())
    rows.append({"model": "Global mean", **_rm(rating_metrics(np.full(len(test), mean), test.ratings)),
                 "train_seconds": 0.0})
    try:
        import pandas as pd
        from surprise import SVD, BaselineOnly, Dataset, Reader

        frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
        for label, algo in (("scikit-surprise SVD (defaults: 100 factors, 20 epochs)", SVD(random_state=0)),
                            ("scikit-surprise BaselineOnly (ALS)", BaselineOnly(verbose=False))):
            start = time.perf_counter()
            algo.fit(trainset)
            seconds = time.perf_counter() - start
            pred = np.array([algo.predict(u, i).est for u, i in zip(test.users, test.items)])
            rows.append({"model": label, **_rm(rating_metrics(pred, test.ratings)), "train_seconds": round(seconds, 1)})
    except ImportError as exc:
        logger.warning("scikit-surprise not installed (%s); skipped", exc)
    return rows


def _rm(metrics: dict[str, float]) -> dict[str, float]:
    return {"rmse": metrics["rmse"], "mae": metrics["mae"]}


# -- speed -----------------------------------------------------------------------------------
def speed(data, device: str, repeats: int) -> dict[str, Any]:
    import hub
    from hub_recsys.models.recommenders import BPRMF
    from hub_recsys.training import PairBatches

    out: dict[str, Any] = {}
    epochs = 2
    batch = 1024
    # warm-up (imports, allocator, the optimizer's first-use compilation checks), not timed
    hub.create("recommend", config={"architecture": "bpr"}, device=device, seed=0).fine_tune(
        data, progress=False, max_steps=5, batch_size=batch)
    # Hub: BPR-MF through the Trainer
    times = []
    for _ in range(repeats):
        rec = hub.create("recommend", config={"architecture": "bpr"}, device=device, seed=0)
        start = time.perf_counter()
        rec.fine_tune(data, progress=False, log_every=10_000, epochs=epochs, batch_size=batch)
        times.append(time.perf_counter() - start)
    out["train_hub_interactions_per_s"] = epochs * len(data) / statistics.median(times)
    # plain PyTorch: the same model, batches and optimiser, in a bare loop
    times = []
    for _ in range(repeats):
        torch.manual_seed(0)
        model = BPRMF({"num_users": data.num_users, "num_items": data.num_items, "factors": 64}).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
        collate = PairBatches(data, negatives=1)
        start = time.perf_counter()
        for _epoch in range(epochs):
            order = torch.randperm(len(data))
            for s in range(0, len(data), batch):
                b = {k: v.to(device) for k, v in collate(order[s:s + batch].tolist()).items()}
                loss = model(**b)["loss"]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    out["train_torch_interactions_per_s"] = epochs * len(data) / statistics.median(times)
    try:
        import implicit
        from threadpoolctl import threadpool_limits

        matrix = _csr(data)
        for name, factory in (("bpr", lambda: implicit.cpu.bpr.BayesianPersonalizedRanking(
                                  factors=64, iterations=epochs, random_state=0)),
                              ("als", lambda: implicit.cpu.als.AlternatingLeastSquares(
                                  factors=64, iterations=epochs, random_state=0))):
            times = []
            for _ in range(repeats):
                model = factory()
                start = time.perf_counter()
                with threadpool_limits(1, "blas"):
                    model.fit(matrix, show_progress=False)
                times.append(time.perf_counter() - start)
            out[f"train_implicit_{name}_interactions_per_s"] = epochs * len(data) / statistics.median(times)
    except ImportError:
        pass
    out.update(retrieval_latency(data, device, repeats))
    return out


def retrieval_latency(data, device: str, repeats: int, users: int = 10_000) -> dict[str, Any]:
    """Top-10 for 10,000 users with their seen items excluded: MovieLens' 9,066 items, each
    synthetic user given the history of a real one (cycled), random factors (speed only)."""
    import scipy.sparse as sp

    from hub_recsys.data import IdMap
    from hub_recsys.models.recommenders import BPRMF
    from hub_recsys.pipelines.recommend import RecommendPipeline

    real = data.csr()
    indptr = [0]
    items = []
    for u in range(users):
        row = real[1][real[0][u % data.num_users]:real[0][u % data.num_users + 1]]
        items.append(row)
        indptr.append(indptr[-1] + len(row))
    seen = np.concatenate(items)
    indptr = np.asarray(indptr, dtype=np.int64)
    torch.manual_seed(0)
    model = BPRMF({"num_users": users, "num_items": data.num_items, "factors": 64})
    rec = RecommendPipeline(model, architecture="bpr", users=IdMap(range(users)), items=IdMap(data.item_ids.ids),
                            indptr=indptr, seen=seen, popularity=np.ones(data.num_items, dtype=np.float32),
                            device=torch.device(device))
    ids = list(range(users))
    out: dict[str, Any] = {"retrieval_users": users, "retrieval_items": data.num_items}

    def timed(fn) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)

    out["topk_hub_seconds"] = timed(lambda: rec(ids, k=K, batch_size=1024))
    user_f = model.user_factors.weight.detach().to(device)
    item_f = model.item_factors.weight.detach().to(device)
    bias = model.item_bias.weight.detach()[:, 0].to(device)
    rows = torch.as_tensor(np.repeat(np.arange(users), np.diff(indptr)), device=device)
    cols = torch.as_tensor(seen, device=device)

    def plain():
        with torch.inference_mode():
            results = []
            for s in range(0, users, 1024):
                scores = user_f[s:s + 1024] @ item_f.T + bias
                pick = (rows >= s) & (rows < s + 1024)
                scores[rows[pick] - s, cols[pick]] = float("-inf")
                results.append(scores.topk(K, dim=1).indices.cpu())
            return results

    out["topk_torch_seconds"] = timed(plain)
    try:
        import implicit
        from threadpoolctl import threadpool_limits

        als = implicit.cpu.als.AlternatingLeastSquares(factors=64)
        als.user_factors = user_f.cpu().numpy().astype(np.float32)
        als.item_factors = item_f.cpu().numpy().astype(np.float32)
        matrix = sp.csr_matrix((np.ones(len(seen), dtype=np.float32), seen, indptr), shape=(users, data.num_items))
        userids = np.arange(users)

        def implicit_topk():
            with threadpool_limits(1, "blas"):
                return als.recommend(userids, matrix, N=K, filter_already_liked_items=True)

        out["topk_implicit_seconds"] = timed(implicit_topk)
    except ImportError:
        pass
    return out


# -- tables ----------------------------------------------------------------------------------
def ranking_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | HR@10 full | NDCG@10 full | MRR full | HR@10 sampled-100 | NDCG@10 sampled-100 | "
             "MRR sampled-100 | train s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        f, s = r["full"], r["sampled"]
        lines.append(f"| {r['model']} | {f['hr@10']:.4f} | {f['ndcg@10']:.4f} | {f['mrr']:.4f} | {s['hr@10']:.4f} | "
                     f"{s['ndcg@10']:.4f} | {s['mrr']:.4f} | {r['train_seconds']} |")
    return "\n".join(lines)


def rating_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | RMSE | MAE | train s |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['rmse']:.4f} | {r['mae']:.4f} | {r['train_seconds']} |" for r in rows]
    return "\n".join(lines)


def speed_markdown(s: dict[str, Any]) -> str:
    lines = ["| measure | Hub | plain PyTorch | implicit |", "| --- | --- | --- | --- |",
             f"| BPR-MF training, interactions/s | {s['train_hub_interactions_per_s']:,.0f} | "
             f"{s['train_torch_interactions_per_s']:,.0f} | BPR {s.get('train_implicit_bpr_interactions_per_s', 0):,.0f}"
             f", ALS {s.get('train_implicit_als_interactions_per_s', 0):,.0f} |",
             f"| top-10 for {s['retrieval_users']:,} users ({s['retrieval_items']:,} items, seen excluded), s | "
             f"{s['topk_hub_seconds']:.3f} | {s['topk_torch_seconds']:.3f} | {s.get('topk_implicit_seconds', 0):.3f} |"]
    return "\n".join(lines)


HUB_RANKING = {  # (training-argument overrides, model config overrides) on top of the pipeline defaults
    "mf": ({}, {}),
    "bpr": ({}, {}),
    "ncf": ({}, {}),
    "sasrec": ({}, {}),
    "bert4rec": ({}, {}),
}


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--part", choices=("quality", "speed", "all"), default="all")
    parser.add_argument("--models", default=",".join(HUB_RANKING), help="Hub models in the ranking table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sasrec-from", type=Path, default=None,
                        help="evaluate this saved SASRec (trained by examples/train_recommend_default.py on the same "
                             "split) instead of training one here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    report: dict[str, Any] = {"machine": info, "machine_tag": args.tag or machine_tag(info), "k": K,
                              "data": "MovieLens latest-small (dslabs::movielens): 100,004 ratings, 671 users, "
                                      "9,066 movies"}
    data = load_movielens()
    tables = []
    if args.part in ("quality", "all"):
        from hub_recsys.data import leave_one_out
        from hub_recsys.pipelines.fitting import _concat

        train, valid, test = leave_one_out(data)
        known = _concat(train, valid)  # what the baselines train on, and every user's seen items
        seen = known.sequences()
        rows = []
        for arch in [m for m in args.models.split(",") if m]:
            overrides, config = HUB_RANKING[arch]
            if arch == "sasrec" and args.sasrec_from:
                row = saved_ranking(args.sasrec_from, test, str(device))
            else:
                row, _ = hub_ranking(arch, train, valid, test, overrides, config, str(device))
            rows.append(row)
            print(ranking_markdown([row]).splitlines()[-1], flush=True)
        for row in peer_rankings(known, test, seen):
            rows.append(row)
            print(ranking_markdown([row]).splitlines()[-1], flush=True)
        report["ranking"] = rows
        tables.append("Ranking, chronological leave-one-out (" + rows[0]["full"]["protocol"] + "; sampled: "
                      + rows[0]["sampled"]["protocol"] + "):\n\n" + ranking_markdown(rows))
        report["rating"] = rating_table(data, str(device))
        tables.append("Rating prediction, random 80/20 split (seed 0):\n\n" + rating_markdown(report["rating"]))
        print(tables[-1], flush=True)
    if args.part in ("speed", "all"):
        report["speed"] = speed(data, str(device), args.repeats)
        tables.append(speed_markdown(report["speed"]))
        print(tables[-1], flush=True)
    info["load_average_end"] = load_average()
    text = "\n\n".join([f"## {info['date']} ({report['machine_tag']})", _machine_line(info), *tables])
    if args.no_write:
        print(json.dumps(report, indent=2, default=str))
    else:
        write_results("recsys", report, text + "\n", "float32", tags=() if args.part == "all" else (args.part,))


def _machine_line(info: dict[str, Any]) -> str:
    from common import machine_line

    return machine_line(info)


if __name__ == "__main__":
    main()
