"""Training-time waveform augmentation: random tape speed and spectral tilt per draw.

Synthesised training speech comes from few voices; changing the speed (pitch and tempo
together, by resampling) and the spectral tilt (a first-order filter) each time a clip is
drawn makes a model depend less on one synthesiser's timbre. Only training data is wrapped;
evaluation data is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hub_speech.audio import normalize


def perturb(samples: np.ndarray, speed: float, tilt: float) -> np.ndarray:
    """Resample by ``speed`` (> 1: faster and higher) and filter with ``y[t] = x[t] - tilt * x[t-1]``."""
    x = torch.from_numpy(samples)[None, None]
    length = max(2, int(round(samples.size / speed)))
    y = F.interpolate(x, size=length, mode="linear", align_corners=False)[0, 0].numpy()
    y = np.concatenate([y[:1], y[1:] - tilt * y[:-1]]) if tilt else y
    return normalize(y.astype(np.float32))


class AugmentedClips(Sequence):
    """Training features whose waveforms are perturbed afresh on every access (seeded by torch)."""

    def __init__(self, features: list[dict[str, Any]], *, speed: tuple[float, float] = (0.85, 1.15),
                 tilt: tuple[float, float] = (-0.3, 0.9), min_samples: int = 400) -> None:
        self.features, self.speed, self.tilt, self.min_samples = features, speed, tilt, min_samples

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        feature = self.features[index]
        low, high = self.speed
        speed = float(torch.empty(()).uniform_(low, high))
        tilt = float(torch.empty(()).uniform_(*self.tilt))
        samples = perturb(np.asarray(feature["input_values"], dtype=np.float32), speed, tilt)
        if samples.size < self.min_samples:
            return feature
        return {**feature, "input_values": samples, "length": samples.size}
