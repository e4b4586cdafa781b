"""image-classify: Hub vs timm's model called directly, same weights, same preprocessed batch.

Run by hand (not a test)::

    python benchmarks/vision.py                          # CPU fp32, ResNet-50 and ViT-B/16, batch 8
    python benchmarks/vision.py --dtype bfloat16         # both sides with bf16 weights and inputs
    python benchmarks/vision.py --models resnet50 --batch 16 --repeats 5
    python benchmarks/vision.py --device cuda            # on a GPU machine

For each model (timm ``resnet50`` and ``vit_base_patch16_224``, seeded random weights with
batch-norm statistics moved off their initial values) the script saves the timm model in
timm's Hugging Face Hub format (``timm.models.save_for_hf``: config.json +
model.safetensors) and loads that folder with ``hub.load("image-classify", model=folder)``:
the ResNet runs timm's own modules inside Hub (channels-last), the ViT is converted to
Hub's shared backbone. Both sides get the same batch of ``--batch`` pictures preprocessed
once with timm's ``resolve_model_data_config`` + ``create_transform``; timed are

* **timm**: ``model(batch)`` as the timm README calls it (NCHW);
* **timm, channels-last**: the same model and batch in channels-last memory format (what a
  user who tunes timm by hand would run; for reference);
* **Hub**: the pipeline's ``forward`` on the batch (the batch step of ``pipe(images)``:
  dtype and memory-format handling included, softmax and labels excluded).

All under ``torch.inference_mode``, warmed up, repeats interleaved, median reported as
images/s; speed-up = Hub images/s / timm images/s. Logit agreement (max abs difference,
argmax agreement) is checked on the same batch. Results:
``benchmarks/results/vision-<machine-tag>[-<dtype>].json`` + a table appended to
``benchmarks/results/vision.md``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DTYPES,
    ROOT,
    base_parser,
    interleaved_times,
    load_average,
    machine,
    machine_line,
    machine_tag,
    write_results,
)

MODELS = {"resnet50": "resnet50", "vit_b16": "vit_base_patch16_224"}


def random_timm(name: str, seed: int) -> torch.nn.Module:
    """timm model with seeded random weights and non-trivial batch-norm statistics."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    with torch.no_grad():
        for buffer_name, buffer in model.named_buffers():
            if buffer_name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif buffer_name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    return model


def pictures(count: int, seed: int) -> list:
    """Smooth random RGB pictures of varied sizes (PIL), as a camera roll would hold."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        h, w = int(rng.integers(240, 400)), int(rng.integers(240, 400))
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        image = np.stack([np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 6)) + np.cos(rng.uniform(2, 9) * y)
                          for _ in range(3)], -1) + rng.normal(0, 0.1, (h, w, 3))
        image = (image - image.min()) / (image.max() - image.min())
        out.append(Image.fromarray((image * 255).astype("uint8")))
    return out


def timed(calls: dict, warmup: int, repeats: int, device: torch.device) -> dict[str, list[float]]:
    with torch.inference_mode():
        return interleaved_times(calls, repeats, device, warmup)



def ort_pipelines(folder: str, device: torch.device, dtype: str) -> dict:
    """``hub_ort_fp32`` / ``hub_ort_int8``: the model on ONNX Runtime (``backend="onnxruntime"``,
    exported on the fly and parity-checked, ORT's own int8), CPU float32 runs only."""
    import atexit
    import os
    import shutil

    import hub
    from hub.errors import HubError

    if device.type != "cpu" or dtype != "float32":
        return {}
    cache = tempfile.mkdtemp(prefix="hub-bench-onnx-")  # a fresh export, removed at exit
    atexit.register(shutil.rmtree, cache, True)
    os.environ["HUB_ONNX_CACHE"] = cache
    pipes = {}
    for side, quantize in (("hub_ort_fp32", None), ("hub_ort_int8", "int8")):
        try:
            pipes[side] = hub.load("image-classify", model=folder, device="cpu", backend="onnxruntime",
                                   quantize=quantize)
        except (ImportError, HubError) as exc:  # no onnx extra, or an export failing its own check
            print(f"{side} not run: {exc}", file=sys.stderr)
    return pipes


def ort_summary(ort: dict, ips: dict, ref: torch.Tensor, features: dict) -> dict:
    """Speed vs Hub's torch path and agreement with timm of the ONNX Runtime rows."""
    out = {}
    for side, pipe in ort.items():
        with torch.inference_mode():
            logits = pipe.forward(features).float()
        out[f"{side}_speedup_vs_hub"] = ips[side] / ips["hub"]
        out[f"{side}_max_abs_logit_diff"] = (ref - logits).abs().max().item()
        out[f"{side}_argmax_agreement"] = (ref.argmax(-1) == logits.argmax(-1)).float().mean().item()
        print(f"{side}: {ips[side]:.2f} img/s ({out[f'{side}_speedup_vs_hub']:.2f}x Hub torch), max abs logit "
              f"diff {out[f'{side}_max_abs_logit_diff']:.2e}, argmax agreement "
              f"{out[f'{side}_argmax_agreement']:.0%}", flush=True)
    return out


def run(args: argparse.Namespace) -> dict:
    import timm

    import hub

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    info["timm"] = timm.__version__
    results = []
    for key in args.models:
        name = MODELS[key]
        reference = random_timm(name, args.seed)
        with tempfile.TemporaryDirectory(prefix=f"hub-bench-{key}-") as tmp:
            timm.models.save_for_hf(reference, tmp, safe_serialization=True)
            pipe = hub.load("image-classify", model=tmp, device=str(device),
                            dtype=None if args.dtype == "float32" else args.dtype)
            # int8 compute (hub.int8_compute: every Linear; convolutions stay float): CPU float32 runs
            int8 = (hub.load("image-classify", model=tmp, device="cpu", quantize="int8")
                    if device.type == "cpu" and args.dtype == "float32" else None)
            ort = ort_pipelines(tmp, device, args.dtype)  # ONNX Runtime fp32 / int8 (CPU float32 runs)
        theirs = reference.to(device=device, dtype=dtype).eval()
        theirs_cl = copy.deepcopy(theirs).to(memory_format=torch.channels_last)
        transform = timm.data.create_transform(**timm.data.resolve_model_data_config(reference))
        batch = torch.stack([transform(p) for p in pictures(args.batch, args.seed)]).to(device)
        x = batch.to(dtype)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        features = {"pixel_values": batch}
        calls = {"timm": lambda m=theirs, x=x: m(x), "timm_channels_last": lambda m=theirs_cl, x=x_cl: m(x),
                 "hub": lambda p=pipe, f=features: p.forward(f)}
        if int8 is not None:
            calls["hub_int8"] = lambda p=int8, f=features: p.forward(f)
        calls.update({side: (lambda p=p, f=features: p.forward(f)) for side, p in ort.items()})
        with torch.inference_mode():
            ref, got = theirs(x).float(), pipe.forward(features).float()
            got8 = int8.forward(features).float() if int8 is not None else None
        diff = (ref - got).abs().max().item()
        agree = (ref.argmax(-1) == got.argmax(-1)).float().mean().item()
        times = timed(calls, args.warmup, args.repeats, device)
        ips = {side: args.batch / statistics.median(v) for side, v in times.items()}
        row = {"model": key, "timm_name": name, "hub_architecture": pipe.architecture, "batch": args.batch,
               "images_per_s": ips, "hub_speedup": ips["hub"] / ips["timm"],
               "hub_speedup_vs_channels_last": ips["hub"] / ips["timm_channels_last"],
               "max_abs_logit_diff": diff, "argmax_agreement": agree,
               "times_s": times}
        if int8 is not None:
            row.update(hub_int8_speedup_vs_hub=ips["hub_int8"] / ips["hub"],
                       int8_max_abs_logit_diff=(ref - got8).abs().max().item(),
                       int8_argmax_agreement=(ref.argmax(-1) == got8.argmax(-1)).float().mean().item(),
                       int8_compute=int8.metadata["compute"])
            print(f"{key}: hub int8 {ips['hub_int8']:.2f} img/s ({row['hub_int8_speedup_vs_hub']:.2f}x Hub fp32; "
                  f"{row['int8_compute']['linear_layers']} int8 Linear layers), max abs logit diff "
                  f"{row['int8_max_abs_logit_diff']:.2e}, argmax agreement {row['int8_argmax_agreement']:.0%}",
                  flush=True)
        row.update(ort_summary(ort, ips, ref, features))
        results.append(row)
        print(f"{key}: timm {ips['timm']:.2f} img/s, timm channels-last {ips['timm_channels_last']:.2f} img/s, "
              f"hub {ips['hub']:.2f} img/s ({row['hub_speedup']:.2f}x); max abs logit diff {diff:.2e}, "
              f"argmax agreement {agree:.0%}", flush=True)
        del theirs, theirs_cl, pipe, int8, ort, calls  # free this model before the next is built
    info["load_average_end"] = load_average()
    return {"benchmark": "vision", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "dtype": args.dtype, "device": str(device), "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed, "results": results}


def markdown(report: dict) -> str:
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({report['machine']['date']})",
             "", machine_line(report["machine"]) + f" timm {report['machine']['timm']}.  ",
             f"Seeded random weights saved in timm's HF format and loaded by Hub; one batch preprocessed by timm's "
             f"transform; eval + inference_mode; {report['warmup']} warm-up, median of {report['repeats']} "
             "interleaved repeats.", "",
             "| model | batch | timm img/s | timm channels-last img/s | Hub img/s | Hub vs timm | "
             "Hub vs timm channels-last | max abs logit diff | argmax agreement |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        ips = r["images_per_s"]
        lines.append(f"| {r['timm_name']} (Hub: {r['hub_architecture']}) | {r['batch']} | {ips['timm']:.2f} | "
                     f"{ips['timm_channels_last']:.2f} | {ips['hub']:.2f} | {r['hub_speedup']:.2f}× | "
                     f"{r['hub_speedup_vs_channels_last']:.2f}× | {r['max_abs_logit_diff']:.2e} | "
                     f"{r['argmax_agreement']:.0%} |")
    int8_rows = [r for r in report["results"] if "hub_int8" in r["images_per_s"]]
    if int8_rows:
        lines += ["", "Hub int8 compute (`quantize=\"int8\"`: every Linear in int8, convolutions float):", "",
                  "| model | int8 Linear layers | Hub fp32 img/s | Hub int8 img/s | int8 vs fp32 | "
                  "max abs logit diff vs timm | argmax agreement |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in int8_rows:
            ips = r["images_per_s"]
            lines.append(f"| {r['timm_name']} | {r['int8_compute']['linear_layers']} | {ips['hub']:.2f} | "
                         f"{ips['hub_int8']:.2f} | {r['hub_int8_speedup_vs_hub']:.2f}× | "
                         f"{r['int8_max_abs_logit_diff']:.2e} | {r['int8_argmax_agreement']:.0%} |")
    ort_rows = [(r, side) for r in report["results"] for side in ("hub_ort_fp32", "hub_ort_int8")
                if side in r["images_per_s"]]
    if ort_rows:
        lines += ["", "Hub on ONNX Runtime (`backend=\"onnxruntime\"`, exported on the fly; int8: ORT's dynamic "
                  "int8 of the MatMuls, convolutions float):", "",
                  "| model | rows | img/s | vs Hub torch fp32 | max abs logit diff vs timm | argmax agreement |",
                  "|---|---|---:|---:|---:|---:|"]
        for r, side in ort_rows:
            lines.append(f"| {r['timm_name']} | {side.removeprefix('hub_').replace('_', ' ')} | "
                         f"{r['images_per_s'][side]:.2f} | {r[f'{side}_speedup_vs_hub']:.2f}× | "
                         f"{r[f'{side}_max_abs_logit_diff']:.2e} | {r[f'{side}_argmax_agreement']:.0%} |")
    lines += ["", "Hub vs timm = Hub images/s / timm images/s (> 1: Hub faster).", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--models", type=lambda s: [x for x in s.split(",") if x], default=list(MODELS),
                        help=f"comma separated: {', '.join(MODELS)} (default both)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per side; median reported")
    args = parser.parse_args(argv)
    bad = set(args.models) - set(MODELS)
    if bad:
        parser.error(f"unknown models {sorted(bad)}; known: {', '.join(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        write_results("vision", report, table, args.dtype)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
