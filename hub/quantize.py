"""Weight-only int8 quantisation for storage (shipping small models in the wheel).

Each large 2-D weight is stored as int8 with one fp32 scale per output row
(symmetric, absmax/127). Loading dequantises back to floating point, so inference
runs at full speed in fp32/bf16 while the file is about 4x smaller.
"""

from __future__ import annotations

import torch

SCALE_SUFFIX = ":int8_scale"
FORMAT = "int8-rowwise"


def quantize_state_dict(state: dict[str, torch.Tensor], *, min_numel: int = 1024) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if tensor.ndim == 2 and tensor.numel() >= min_numel and tensor.is_floating_point():
            t = tensor.float()
            scale = t.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (rows, 1)
            out[name] = torch.round(t / scale).clamp(-127, 127).to(torch.int8).contiguous()
            out[name + SCALE_SUFFIX] = scale.squeeze(1).contiguous()
        else:
            out[name] = tensor.contiguous()
    return out


def dequantize_state_dict(state: dict[str, torch.Tensor],
                          dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        scale = state.get(name + SCALE_SUFFIX)
        out[name] = tensor.to(dtype) * scale.to(dtype)[:, None] if scale is not None else tensor
    return out
