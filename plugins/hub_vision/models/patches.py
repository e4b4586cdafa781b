"""Patch front end of the vision plugin's ViT: images -> (B, T, C) hidden states.

:class:`PatchEmbedding` cuts an image into non-overlapping patches with one strided
convolution, prepends the optional class and register tokens and adds a learned position
embedding, laid out exactly as timm's ``VisionTransformer`` does (parameter names
``proj``, ``cls_token``, ``reg_token``, ``pos_embed``), so timm checkpoints map 1:1.
"""

from __future__ import annotations

import torch
from torch import nn


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


class PatchEmbedding(nn.Module):
    """Conv2d patchify + [class token] + [register tokens] + learned positions + dropout.

    The output sequence is ``[cls] [reg_1 .. reg_R] patch_1 .. patch_N`` (row-major patches),
    ``num_prefix_tokens = class_token + reg_tokens`` in front of the ``N = grid_h * grid_w``
    patches. Positions (``position="learned"``) cover every token, prefix tokens included,
    unless ``no_embed_class=True`` (DeiT-3, big_vision), where only the patches get one and
    the prefix tokens are prepended after the addition. A distillation token (DeiT) is laid
    out like one register token.
    """

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int | tuple[int, int] = 16,
                 in_chans: int = 3, hidden_size: int = 768, *, class_token: bool = True,
                 reg_tokens: int = 0, position: str = "learned", no_embed_class: bool = False,
                 bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if position not in ("learned", "none"):
            raise ValueError(f"position must be 'learned' or 'none', got {position!r}")
        self.img_size = _pair(img_size)
        self.patch_size = _pair(patch_size)
        if any(s % p for s, p in zip(self.img_size, self.patch_size)):
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}.")
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.num_prefix_tokens = int(class_token) + reg_tokens
        self.no_embed_class = no_embed_class
        self.proj = nn.Conv2d(in_chans, hidden_size, kernel_size=self.patch_size, stride=self.patch_size,
                              bias=bias)  # (B, in_chans, H, W) -> (B, C, grid_h, grid_w)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size)) if class_token else None  # (1, 1, C)
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, hidden_size)) if reg_tokens else None  # (1, R, C)
        length = self.num_patches + (0 if no_embed_class else self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.zeros(1, length, hidden_size)) if position == "learned" else None
        self.dropout = nn.Dropout(dropout)

    @property
    def num_tokens(self) -> int:
        """Sequence length T of the output."""
        return self.num_prefix_tokens + self.num_patches

    def reset_parameters(self, std: float = 0.02) -> None:
        """timm's initialisation: truncated-normal positions, near-zero prefix tokens."""
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=std)
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        nn.init.trunc_normal_(self.proj.weight, std=std)
        if self.proj.bias is not None:
            nn.init.zeros_(self.proj.bias)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) pixels, H x W == img_size -> (B, num_prefix_tokens + N, C)."""
        if tuple(pixel_values.shape[-2:]) != self.img_size:
            raise ValueError(f"image size {tuple(pixel_values.shape[-2:])} does not match the model's "
                             f"{self.img_size}; resize the images first.")
        x = self.proj(pixel_values).flatten(2).transpose(1, 2)  # (B, C, gh, gw) -> (B, N, C)
        batch = x.shape[0]
        prefix = [t.expand(batch, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.pos_embed is None:
            x = torch.cat([*prefix, x], dim=1) if prefix else x
        elif self.no_embed_class:  # positions for the patches only, then prepend the prefix
            x = x + self.pos_embed  # (B, N, C)
            x = torch.cat([*prefix, x], dim=1) if prefix else x
        else:  # original ViT/DeiT: the class (and register) tokens have positions too
            x = torch.cat([*prefix, x], dim=1) if prefix else x
            x = x + self.pos_embed  # (B, P + N, C)
        return self.dropout(x)
