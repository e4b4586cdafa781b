"""CLIP image and text embedding throughput: Hub vs transformers' CLIPModel, same weights.

Run by hand (not a test)::

    python benchmarks/clip.py --threads 1                 # CPU fp32, ViT-B/32-sized CLIP
    python benchmarks/clip.py --image-batch 16 --text-batch 128 --repeats 5
    python benchmarks/clip.py --device cuda               # on a GPU machine

A CLIP the size of ``openai/clip-vit-base-patch32`` (vision: 224 px, patch 32, 12 blocks of
768; text: 12 blocks of 512, 77 positions, vocabulary 49,408; projection 512; quick_gelu)
with seeded random weights is saved by transformers (``save_pretrained``, with a
CLIPTokenizer trained offline on the benchmark's captions and a CLIPImageProcessor) and
loaded by ``hub.load("zero-shot-image-classify", model=folder)``, which converts it into the
shared backbone. Timed on the same inputs, under ``torch.inference_mode``, warmed up,
repeats interleaved, median reported:

* **images/s**: one batch of ``--image-batch`` pictures preprocessed once (transformers'
  CLIPImageProcessor); transformers ``get_image_features(pixel_values)`` vs Hub's
  ``pipe.forward(batch)`` (the projected embedding, normalised: the batch step of
  ``pipe(images, candidate_labels=...)``);
* **texts/s**: ``--text-batch`` captions tokenised once and padded; transformers
  ``get_text_features(input_ids, attention_mask)`` vs Hub's ``model.embed_text`` (what
  ``text-embed`` on a CLIP folder runs per batch).

Agreement (max abs difference of the projected embeddings) is checked on the same inputs.

**open_clip** (when installed: ``pip install 'hub-sdk[clip]'``; the results say when it was
absent): an ``open_clip.model.CLIP`` of the same size (ViT-B-32-quickgelu's config) with its
own seeded random weights, saved in open_clip's Hugging Face layout (open_clip_config.json +
open_clip_model.safetensors) and loaded by ``hub.load`` from that folder: open_clip's
``encode_image`` / ``encode_text`` vs Hub on the converted weights, same pixels and token
ids (padded to the 77 positions open_clip's text tower always takes), in the same
interleaved loop. Results: ``benchmarks/results/clip-<machine-tag>[-<dtype>].json``
+ a table appended to ``benchmarks/results/clip.md``, with the machine and its load average.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
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

WORDS = ("a photo of a cat dog red blue house car tree person bird on the road in a field with sky "
         "document save open folder music network wireless drawing of small large old new").split()


def captions(count: int, seed: int) -> list[str]:
    """Seeded captions of 4 to 14 words (varied lengths: padding matters)."""
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(count)]


def make_checkpoint(folder: Path, seed: int) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from hub_vision.clip_tokenizer import train_clip_tokenizer

    tokenizer = train_clip_tokenizer(captions(512, seed) * 2, vocab_size=800, max_length=77)
    config = CLIPConfig(text_config={"vocab_size": 49408, "eos_token_id": tokenizer.eos_token_id,
                                     "bos_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id},
                        vision_config={"patch_size": 32}, projection_dim=512)
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    CLIPImageProcessor().save_pretrained(str(folder))


def make_open_clip(folder: Path, seed: int):
    """ViT-B-32-quickgelu-sized open_clip CLIP, random, saved as open_clip saves for the HF Hub."""
    import json

    from open_clip.model import CLIP
    from safetensors.torch import save_file

    cfg = {"embed_dim": 512, "quick_gelu": True,
           "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}
    torch.manual_seed(seed)
    model = CLIP(**cfg).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    return model


def run(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    import hub
    from benchmarks.vision import pictures

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    with_open_clip = importlib.util.find_spec("open_clip") is not None and not args.no_open_clip
    info["open_clip"] = (f"open_clip {importlib.import_module('open_clip').__version__}" if with_open_clip
                         else "not installed or --no-open-clip (not compared)")
    with tempfile.TemporaryDirectory(prefix="hub-bench-clip-") as tmp:
        make_checkpoint(Path(tmp), args.seed)
        if with_open_clip:
            (Path(tmp) / "open_clip").mkdir()
            oc = make_open_clip(Path(tmp) / "open_clip", args.seed).to(device=device, dtype=dtype)
            oc_pipe = hub.load("zero-shot-image-classify", model=str(Path(tmp) / "open_clip"), device=str(device),
                               dtype=None if args.dtype == "float32" else args.dtype)
        theirs = CLIPModel.from_pretrained(tmp, dtype=dtype).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp)
        processor = CLIPImageProcessor.from_pretrained(tmp)
        pipe = hub.load("zero-shot-image-classify", model=tmp, device=str(device),
                        dtype=None if args.dtype == "float32" else args.dtype)
    pixels = processor(images=pictures(args.image_batch, args.seed), return_tensors="pt")["pixel_values"].to(device)
    text = tokenizer(captions(args.text_batch, args.seed + 1), padding=True, return_tensors="pt").to(device)
    x = pixels.to(dtype)
    batch = {"pixel_values": pixels}
    with torch.inference_mode():
        ref_image = theirs.get_image_features(pixel_values=x).pooler_output.float()
        ref_text = theirs.get_text_features(**text).pooler_output.float()
        got_image = pipe.model.embed_images(x).float()
        got_text = pipe.model.embed_text(text["input_ids"], text["attention_mask"]).float()
    image_diff = (ref_image - got_image).abs().max().item()
    text_diff = (ref_text - got_text).abs().max().item()
    calls = {
        "transformers_image": lambda: theirs.get_image_features(pixel_values=x),
        "hub_image": lambda: pipe.forward(batch),
        "transformers_text": lambda: theirs.get_text_features(**text),
        "hub_text": lambda: pipe.model.embed_text(text["input_ids"], text["attention_mask"]),
    }
    oc_diff = {}
    if with_open_clip:
        # open_clip's text tower takes exactly its 77 positions: the same ids, padded out to them
        extra = 77 - text["input_ids"].shape[1]
        ids = torch.nn.functional.pad(text["input_ids"], (0, extra), value=tokenizer.pad_token_id)
        mask = torch.nn.functional.pad(text["attention_mask"], (0, extra), value=0)
        with torch.inference_mode():
            oc_diff = {"image": (oc.encode_image(x).float() - oc_pipe.model.embed_images(x).float()).abs().max().item(),
                       "text": (oc.encode_text(ids).float() - oc_pipe.model.embed_text(ids, mask).float()
                                ).abs().max().item()}
        calls.update({"open_clip_image": lambda: oc.encode_image(x), "hub_oc_image": lambda: oc_pipe.forward(batch),
                      "open_clip_text": lambda: oc.encode_text(ids),
                      "hub_oc_text": lambda: oc_pipe.model.embed_text(ids, mask)})
    with torch.inference_mode():
        times = interleaved_times(calls, args.repeats, device, args.warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    rates = {"images_per_s": {"transformers": args.image_batch / med["transformers_image"],
                              "hub": args.image_batch / med["hub_image"]},
             "texts_per_s": {"transformers": args.text_batch / med["transformers_text"],
                             "hub": args.text_batch / med["hub_text"]}}
    if with_open_clip:
        rates["open_clip"] = {"images_per_s": {"open_clip": args.image_batch / med["open_clip_image"],
                                               "hub": args.image_batch / med["hub_oc_image"]},
                              "texts_per_s": {"open_clip": args.text_batch / med["open_clip_text"],
                                              "hub": args.text_batch / med["hub_oc_text"]}}
    info["load_average_end"] = load_average()
    for what, r in rates.items():
        if what == "open_clip":
            for kind, q in r.items():
                diff = oc_diff["image" if kind.startswith("image") else "text"]
                print(f"open_clip {kind}: open_clip {q['open_clip']:.2f}, hub {q['hub']:.2f} "
                      f"({q['hub'] / q['open_clip']:.2f}x); max abs diff {diff:.2e}", flush=True)
            continue
        print(f"{what}: transformers {r['transformers']:.2f}, hub {r['hub']:.2f} "
              f"({r['hub'] / r['transformers']:.2f}x)", flush=True)
    print(f"max abs difference: image embeds {image_diff:.2e}, text embeds {text_diff:.2e}")
    return {"benchmark": "clip", "machine": info, "machine_tag": args.tag or machine_tag(info), "dtype": args.dtype,
            "device": str(device), "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
            "image_batch": args.image_batch, "text_batch": args.text_batch, "text_tokens": int(text["input_ids"].shape[1]),
            "rates": rates, "max_abs_image_embed_diff": image_diff, "max_abs_text_embed_diff": text_diff,
            "open_clip_max_abs_embed_diff": oc_diff,
            "times_s": times}


def markdown(report: dict) -> str:
    r, m = report["rates"], report["machine"]
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({m['date']})", "",
             machine_line(m) + f" open_clip: {m['open_clip']}.  ",
             "ViT-B/32-sized CLIP, seeded random weights saved by transformers and converted by Hub; inputs "
             f"preprocessed once; inference_mode; {report['warmup']} warm-up, median of {report['repeats']} "
             "interleaved repeats.", "",
             "| what | batch | transformers /s | Hub /s | Hub vs transformers | max abs embed diff |",
             "|---|---:|---:|---:|---:|---:|",
             f"| image embeddings (224 px) | {report['image_batch']} | {r['images_per_s']['transformers']:.2f} | "
             f"{r['images_per_s']['hub']:.2f} | {r['images_per_s']['hub'] / r['images_per_s']['transformers']:.2f}× | "
             f"{report['max_abs_image_embed_diff']:.2e} |",
             f"| text embeddings ({report['text_tokens']} tokens, padded) | {report['text_batch']} | "
             f"{r['texts_per_s']['transformers']:.2f} | {r['texts_per_s']['hub']:.2f} | "
             f"{r['texts_per_s']['hub'] / r['texts_per_s']['transformers']:.2f}× | "
             f"{report['max_abs_text_embed_diff']:.2e} |"]
    if "open_clip" in r:
        o, d = r["open_clip"], report["open_clip_max_abs_embed_diff"]
        lines += ["", "| open_clip (its own random weights, converted) | batch | open_clip /s | Hub /s | Hub vs open_clip "
                  "| max abs embed diff |", "|---|---:|---:|---:|---:|---:|",
                  f"| image embeddings (224 px) | {report['image_batch']} | {o['images_per_s']['open_clip']:.2f} | "
                  f"{o['images_per_s']['hub']:.2f} | {o['images_per_s']['hub'] / o['images_per_s']['open_clip']:.2f}× "
                  f"| {d['image']:.2e} |",
                  f"| text embeddings (77 tokens, padded) | {report['text_batch']} | "
                  f"{o['texts_per_s']['open_clip']:.2f} | {o['texts_per_s']['hub']:.2f} | "
                  f"{o['texts_per_s']['hub'] / o['texts_per_s']['open_clip']:.2f}× | {d['text']:.2e} |"]
    return "\n".join(lines + [""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--image-batch", type=int, default=8)
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per side; median reported")
    parser.add_argument("--no-open-clip", action="store_true", help="skip the open_clip rows even when installed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        write_results("clip", report, table, args.dtype)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
