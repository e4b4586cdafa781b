"""A worker for ``benchmarks/text_embed.py``: times sentence-transformers' own ONNX backend.

sentence-transformers' ``backend="onnx"`` needs ``optimum-onnx``, which pins
``transformers<4.58``, older than Hub's; so it runs in another interpreter (``--st-onnx-python``)
and is driven over a pipe, one command per line, so that its repeats interleave with the
main process's. Commands: ``run NAME`` (encode every text, reply ``{"name", "seconds"}`` and,
the first time, save the embeddings to ``OUT/NAME.npy``), ``quit``.

Usage (by text_embed.py): ``PYTHON _st_onnx_worker.py FOLDER TEXTS.json OUT BATCH THREADS``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> int:
    folder, texts_file, out, batch, threads = sys.argv[1:6]
    import numpy as np
    import onnxruntime as ort
    import sentence_transformers
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    kwargs = {"provider": "CPUExecutionProvider", "session_options": options}
    models = {"st onnx fp32": SentenceTransformer(folder, device="cpu", backend="onnx", model_kwargs=kwargs)}
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    config = "avx512_vnni" if "avx512_vnni" in flags else ("avx512" if "avx512f" in flags else "avx2")
    export_dynamic_quantized_onnx_model(models["st onnx fp32"], config, folder)
    models["st onnx int8"] = SentenceTransformer(
        folder, device="cpu", backend="onnx",
        model_kwargs={**kwargs, "file_name": f"onnx/model_qint8_{config}.onnx"})
    for model in models.values():
        model.encode(texts[:16], batch_size=int(batch))
    import optimum
    import transformers

    print(json.dumps({"ready": sorted(models), "int8_config": config,
                      "versions": {"sentence_transformers": sentence_transformers.__version__,
                                   "transformers": transformers.__version__, "onnxruntime": ort.__version__,
                                   "optimum": getattr(optimum, "__version__", "?")}}), flush=True)
    saved = set()
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        name = command.removeprefix("run ")
        start = time.perf_counter()
        vectors = models[name].encode(texts, batch_size=int(batch), convert_to_numpy=True)
        seconds = time.perf_counter() - start
        if name not in saved:
            np.save(Path(out) / f"{name.replace(' ', '_')}.npy", vectors)
            saved.add(name)
        print(json.dumps({"name": name, "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
