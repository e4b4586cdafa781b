"""Train SASRec on the synthetic cycles under torchrun (DDP on CPU, gloo); the distributed test
launches this. Each rank writes OUT/rank{RANK}.json: its test HR@10 and a weights checksum."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hub
from hub_recsys.data import leave_one_out, read_interactions
from tests.recsys.test_pipeline import SEQUENTIAL, cyclic_rows


def main(out: Path) -> None:
    torch.set_num_threads(1)
    train, valid, test = leave_one_out(read_interactions(cyclic_rows()))
    rec = hub.create("recommend", config={"architecture": "sasrec", **SEQUENTIAL}, device="cpu", seed=0)
    rec.fine_tune(train, valid, epochs=15, learning_rate=1e-2, batch_size=8, progress=False)
    checksum = float(sum(p.detach().double().sum() for p in rec.model.parameters()))
    rank = int(os.environ.get("RANK", "0"))
    (out / f"rank{rank}.json").write_text(json.dumps({"hr@10": rec.evaluate(test)["hr@10"], "checksum": checksum}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
