"""The servers ``benchmarks/serve.py`` compares Hub with, each run in its own process.

* ``naive``: the app a user writes today, FastAPI + uvicorn calling transformers' ``pipeline``
  once per request (a plain ``def`` route, so FastAPI runs it in its thread pool, as its docs
  advise for blocking code);
* ``litserve``: LitServe with its dynamic batching (``max_batch_size``, ``batch_timeout``) on the
  same transformers pipeline, called on the whole batch (for text-embed, the pipeline's model and
  tokenizer on the batch with a masked mean, since the feature-extraction pipeline's batching
  would average the padding in).

Both answer ``POST /predict`` with ``{"inputs": "<text>"}``: text-classify returns
``{"label", "score"}``, text-embed the sentence embedding (mean of the token states, L2
normalised: all-MiniLM-L6-v2's sentence-transformers pooling) as a list.

    python benchmarks/_serve_apps.py naive --task text-classify --model FOLDER --port 8001
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


def make_pipeline(task: str, folder: str) -> Any:
    from transformers import pipeline

    kind = "text-classification" if task == "text-classify" else "feature-extraction"
    return pipeline(kind, model=folder, device="cpu")


def postprocess(task: str, output: Any) -> Any:
    """One input's answer in JSON types."""
    if task == "text-classify":
        return {"label": output["label"], "score": float(output["score"])}
    states = np.asarray(output, dtype=np.float32)[0]  # [1, tokens, hidden] for one unpadded text
    vector = states.mean(axis=0)
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).tolist()


def run_naive(task: str, folder: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    pipe = make_pipeline(task, folder)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: dict) -> Any:
        return postprocess(task, pipe(body["inputs"])[0] if task == "text-classify" else pipe(body["inputs"]))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


try:  # module level: LitServe's workers are spawned processes, which unpickle the API by name
    import litserve as ls
except ImportError:  # only the naive server runs without it
    ls = None


if ls is not None:
    class PipelineAPI(ls.LitAPI):
        """The transformers pipeline behind LitServe, batched by LitServe."""

        def __init__(self, task: str, folder: str, **options: Any) -> None:
            super().__init__(**options)
            self.task, self.folder = task, folder

        def setup(self, device: str) -> None:
            self.pipe = make_pipeline(self.task, self.folder)

        def decode_request(self, request: dict) -> str:
            return request["inputs"]

        def predict(self, texts: list[str]) -> list[Any]:
            if self.task == "text-classify":
                return [postprocess(self.task, out) for out in self.pipe(list(texts), batch_size=len(texts))]
            # the pipeline's own batching would average the padding into each embedding: the
            # same model and tokenizer, batched, with the mean over the real tokens
            import torch

            encoded = self.pipe.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                states = self.pipe.model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
            vectors = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
            return vectors.tolist()

        def encode_response(self, output: Any) -> Any:
            return output


def run_litserve(task: str, folder: str, port: int, max_batch_size: int, batch_timeout: float) -> None:
    if ls is None:
        raise SystemExit("pip install litserve")
    api = PipelineAPI(task, folder, max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("naive", "litserve"))
    parser.add_argument("--task", choices=("text-classify", "text-embed"), required=True)
    parser.add_argument("--model", required=True, help="a transformers folder")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout", type=float, default=0.005, help="seconds")
    args = parser.parse_args()
    if args.kind == "naive":
        run_naive(args.task, args.model, args.port)
    else:
        run_litserve(args.task, args.model, args.port, args.max_batch_size, args.batch_timeout)


if __name__ == "__main__":
    main()
