"""Train the shipped ``image-classify`` default: what an icon is for, from its drawing.

Real, designed images from three Debian icon themes, labelled by the context folder the
designers filed them in (actions, apps, devices, mimetypes, places, status). A small
ResNet (timm ``resnet10t`` at half width, 1.26 M parameters, 64x64 inputs) is trained from
scratch with Hub's own ``fine_tune`` on Oxygen + Papirus (timm's training augmentation:
random resized crops, flips, colour jitter; 10 % of the icon names held out to pick the
best epoch) and measured on **Breeze, a theme held out of training entirely**, against a
logistic-regression baseline on pixels trained on the same split. The accuracy goes into
registry.yaml. Reproduce with::

    apt-get install -y oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin
    python -m examples.train_image_classify_default --update-registry

About 10-15 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

import hub
from examples.data_prep_vision import CLASSES, icons, read_csv

ROOT = Path(__file__).resolve().parent.parent
NAME = "icon-context-resnet"
DEFAULT_OUT = ROOT / "plugins" / "hub_vision" / "weights" / NAME
CONFIG = {
    "timm_model": "resnet10t",
    "model_args": {"channels": [32, 64, 128, 256], "stem_width": 32},
    "labels": list(CLASSES),
    "num_classes": len(CLASSES),
    "preprocess": {"input_size": [3, 64, 64], "crop_pct": 1.0, "interpolation": "bilinear",
                   "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
AUGMENT = {"scale": [0.6, 1.0], "hflip": 0.5, "color_jitter": 0.3}


def pixel_features(paths: list[Path], size: int = 32) -> np.ndarray:
    """Flattened RGB pixels (transparency over white, as the pipeline sees them), 0..1."""
    from hub_vision.images import to_pil

    return np.stack([np.asarray(to_pil(p, i).resize((size, size)), dtype=np.float32).ravel() / 255.0
                     for i, p in enumerate(paths)])


def baseline_accuracy(train: list[tuple[Path, str]], test: list[tuple[Path, str]], seed: int = 0) -> float:
    """Logistic regression on standardised 32x32 RGB pixels, same split as the network."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = pixel_features([p for p, _ in train]), pixel_features([p for p, _ in test])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000, random_state=seed))
    model.fit(x_train, [label for _, label in train])
    return float((model.predict(x_test) == np.array([label for _, label in test])).mean())


def update_registry(accuracy: float, baseline: float, path: Path = ROOT / "registry.yaml") -> None:
    """Write the measured held-out accuracy into the icon-context-resnet entry, keeping comments."""
    text = path.read_text(encoding="utf-8")
    block = re.search(rf"\n  {NAME}:\n(?:    .*\n|      .*\n)+", text)
    if block is None:
        raise SystemExit(f"{path}: no {NAME} entry to update")
    new = re.sub(r"(\n      accuracy: ).*", rf"\g<1>{accuracy:.4f}", block.group(0))
    new = re.sub(r"(\n      baseline_accuracy: ).*", rf"\g<1>{baseline:.4f}", new)
    path.write_text(text.replace(block.group(0), new), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/hub-icon-context"))
    parser.add_argument("--update-registry", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    splits = icons()
    pipe = hub.create("image-classify", config=CONFIG, seed=args.seed, device="cpu")
    start = time.time()
    result = pipe.fine_tune(str(splits["train"]), eval=str(splits["val"]), augment=AUGMENT, epochs=args.epochs,
                            batch_size=args.batch_size, learning_rate=args.learning_rate, weight_decay=0.05,
                            warmup_ratio=0.05, schedule="cosine", metric_for_best="accuracy", seed=args.seed,
                            output_dir=str(args.work_dir), save_checkpoints=False, device="cpu")
    seconds = time.time() - start
    test = pipe.evaluate(str(splits["test"]))
    baseline = baseline_accuracy(read_csv(splits["train"]) + read_csv(splits["val"]), read_csv(splits["test"]),
                                 args.seed)
    pipe.metadata.update(model_name=NAME, license="other",
                         metrics={"dataset": "breeze icon theme (held out)", "accuracy": round(test["accuracy"], 4)})
    pipe.save(args.output)
    report = {"best_epoch": result.best_epoch, "best_val_accuracy": result.best_metric, "train_seconds": seconds,
              "test_accuracy": test["accuracy"], "test_n": test["n"], "baseline_accuracy": baseline,
              "parameters": sum(p.numel() for p in pipe.model.parameters())}
    print(json.dumps(report, indent=2))
    if args.update_registry:
        update_registry(test["accuracy"], baseline)


if __name__ == "__main__":
    main()
