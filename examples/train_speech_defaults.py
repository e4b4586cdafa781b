"""Train the shipped speech defaults from scratch on synthesised speech, and measure them on
a synthesiser held out of training.

    python -m examples.train_speech_defaults kws   # audio-classify default: keywords-kws20
    python -m examples.train_speech_defaults asr   # speech-recognize default: commands-ctc

Data: ``examples/data_prep_speech.py`` (espeak-ng + festival voices for training, flite's
awb and rms voices for the test). 10 % of the training clips (every tenth block of 20) are
kept aside for validation, which picks the best epoch; the flite test set is used once, at
the end.
Both add the festival-only supplement of their task to the training data and perturb the speed
and spectral tilt of every training draw (``augment=True``). The model is written to
``plugins/hub_speech/weights/<name>/`` with its test figures in ``metrics.json`` (copy them
into registry.yaml; ``tests/speech/test_default_models.py`` checks them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import hub
from examples.data_prep import cache_dir
from examples.data_prep_speech import manifest
from hub._fs import atomic_write_text

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "hub_speech" / "weights"
RECIPES = {
    "kws": {
        "name": "keywords-kws20", "task": "audio-classify",
        "extra_train": ["festival"],  # the festival-only supplement (3 voices, tape speed)
        "config": {"backbone": {"hidden_size": 96, "num_layers": 3, "num_heads": 4, "intermediate_size": 384,
                                "rotary_dim": 24}, "subsample_channels": 32, "mel_norm": "clip"},
        "training": {"epochs": 15, "batch_size": 32, "learning_rate": 2e-3, "warmup_ratio": 0.05,
                     "weight_decay": 0.05, "schedule": "cosine", "metric_for_best": "accuracy",
                     "augment": True},
    },
    "asr": {
        "name": "commands-ctc", "task": "speech-recognize",
        "extra_train": ["festival"],  # the festival-only supplement (3 voices, tape speed)
        "config": {"backbone": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "intermediate_size": 512,
                                "rotary_dim": 32}, "subsample_channels": 32, "mel_norm": "clip"},
        "training": {"epochs": 20, "batch_size": 24, "learning_rate": 1.5e-3, "warmup_ratio": 0.05,
                     "weight_decay": 0.05, "schedule": "cosine", "augment": True},
    },
}


def split(path: Path) -> tuple[list[dict], list[dict]]:
    """(train, validation) records of a manifest: every tenth block of 20 clips (one clip of
    each keyword) goes to validation."""
    base = path.parent
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = str(base / row["path"])
    held = [(i // 20) % 10 == 0 for i in range(len(rows))]
    return [r for r, h in zip(rows, held) if not h], [r for r, h in zip(rows, held) if h]


def data(which: str, extra_train: list[str]) -> tuple[list[dict], list[dict]]:
    train, val = split(manifest(which, "train"))
    for extra in extra_train:
        more, more_val = split(manifest(which, extra))
        train, val = train + more, val + more_val
    return train, val


def train_stage(pipe, which: str, name: str, stage: dict, epochs: float | None) -> dict:
    training = dict(stage["training"])
    if epochs:
        training["epochs"] = epochs
    train, val = data(which, stage.get("extra_train", []))
    print(f"{name}: {len(train)} train / {len(val)} validation clips, {training}", flush=True)
    start = time.perf_counter()
    result = pipe.fine_tune(train, eval=val, output_dir=str(cache_dir() / "speech" / f"run-{name}"),
                            save_checkpoints=False, progress=False, log_every=20, **training)
    minutes = (time.perf_counter() - start) / 60
    print(f"trained in {minutes:.1f} min; best {result.best_metric} at epoch {result.best_epoch}", flush=True)
    return {"validation_best": result.best_metric, "best_epoch": result.best_epoch, "train_minutes": round(minutes, 1),
            "training": training, "extra_train": stage.get("extra_train", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=float, default=None, help="override the recipe's epochs")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = RECIPES[args.which]
    name, output = recipe["name"], args.output or WEIGHTS / recipe["name"]
    config = dict(recipe["config"])
    if recipe["task"] == "audio-classify":
        config["labels"] = sorted({r["label"] for r in data(args.which, recipe.get("extra_train", []))[0]})
    pipe = hub.create(recipe["task"], config=config, device="cpu", seed=0)
    stages = [train_stage(pipe, args.which, name, recipe, args.epochs)]
    params = sum(p.numel() for p in pipe.model.parameters())
    figures = pipe.evaluate(manifest(args.which, "test"), batch_size=32)
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    print(f"{name} ({params / 1e6:.2f} M parameters) on held-out flite voices: {figures}", flush=True)
    pipe.metadata.update(model_name=name, license="apache-2.0",
                         metrics={"dataset": "flite awb+rms (held-out synthesiser)", **figures})
    pipe.save(output)
    atomic_write_text(output / "metrics.json", json.dumps(
        {"test": figures, "parameters": params, "config": recipe["config"], "stages": stages}, indent=2) + "\n")
    print(f"saved {output}", flush=True)


if __name__ == "__main__":
    main()
