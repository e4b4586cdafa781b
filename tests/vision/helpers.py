"""Small random timm checkpoints in timm's Hugging Face Hub format, and test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every weight and batch-norm statistic off its initial value, so nothing agrees by
    symmetry (zero-initialised last norms, unit running variances, ...)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    return model.eval()


def make_timm(folder: Path, arch: str = "resnet10t", *, labels: list[str] | None = None, seed: int = 0,
              pretrained_cfg: dict | None = None, **kwargs) -> torch.nn.Module:
    """A random timm model saved exactly as timm publishes to the Hugging Face Hub."""
    import timm

    torch.manual_seed(seed)
    model = perturb(timm.create_model(arch, pretrained=False, pretrained_cfg_overlay=pretrained_cfg, **kwargs), seed)
    config = {"label_names": labels} if labels else None
    timm.models.save_for_hf(model, str(folder), model_config=config, safe_serialization=True)
    return model


TINY_RESNET = dict(arch="resnet10t", channels=(8, 16, 32, 64), stem_width=8,
                   pretrained_cfg={"input_size": (3, 48, 48), "crop_pct": 0.9, "interpolation": "bilinear"})


def photo(seed: int = 0, size: tuple[int, int] = (70, 90)) -> "np.ndarray":
    """A smooth random RGB picture (H, W, 3) uint8: gradients plus blobs, not white noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([np.sin(6 * x + rng.uniform(0, 6)) + np.cos(5 * y * rng.uniform(0.5, 2)) for _ in range(3)], -1)
    image += rng.normal(0, 0.2, image.shape)
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).round().astype(np.uint8)
