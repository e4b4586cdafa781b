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
open_clip is compared only when it is installed (it is not a Hub dependency; the results
say when it was absent). Results: ``benchmarks/results/clip-<machine-tag>[-<dtype>].json``
+ a table appended to ``benchmarks/results/clip.md``, with the machine and its load average.
"""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    import hub
    from benchmarks.vision import pictures

    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    info["open_clip"] = "installed" if importlib.util.find_spec("open_clip") else "not installed (not compared)"
    with tempfile.TemporaryDirectory(prefix="hub-bench-clip-") as tmp:
        make_checkpoint(Path(tmp), args.seed)
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
    with torch.inference_mode():
        times = interleaved_times(calls, args.repeats, device, args.warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    rates = {"images_per_s": {"transformers": args.image_batch / med["transformers_image"],
                              "hub": args.image_batch / med["hub_image"]},
             "texts_per_s": {"transformers": args.text_batch / med["transformers_text"],
                             "hub": args.text_batch / med["hub_text"]}}
    info["load_average_end"] = load_average()
    for what, r in rates.items():
        print(f"{what}: transformers {r['transformers']:.2f}, hub {r['hub']:.2f} "
              f"({r['hub'] / r['transformers']:.2f}x)", flush=True)
    print(f"max abs difference: image embeds {image_diff:.2e}, text embeds {text_diff:.2e}")
    return {"benchmark": "clip", "machine": info, "machine_tag": args.tag or machine_tag(info), "dtype": args.dtype,
            "device": str(device), "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
            "image_batch": args.image_batch, "text_batch": args.text_batch, "text_tokens": int(text["input_ids"].shape[1]),
            "rates": rates, "max_abs_image_embed_diff": image_diff, "max_abs_text_embed_diff": text_diff,
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
             f"{report['max_abs_text_embed_diff']:.2e} |", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--image-batch", type=int, default=8)
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per side; median reported")
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
