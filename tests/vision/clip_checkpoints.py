"""Tiny random transformers CLIP checkpoints, saved as transformers publishes them
(config.json + model.safetensors + tokenizer + preprocessor_config.json), built offline:
the tokenizer is a CLIPTokenizer whose BPE merges are learned from a few captions."""

from __future__ import annotations

from pathlib import Path

import torch

CAPTIONS = ["a photo of a cat", "a photo of a dog", "a drawing of a red house", "document save", "document open",
            "network wireless", "folder music", "the cat sees the dog", "a blue car on a road"]


def make_tokenizer():
    from hub_vision.clip_tokenizer import train_clip_tokenizer

    return train_clip_tokenizer(CAPTIONS * 3, vocab_size=600, max_length=32)


def make_clip(folder: Path, *, seed: int = 0, hidden_act: str = "quick_gelu", legacy_eos: bool = False,
              image_size: int = 32, patch_size: int = 8, channels: int = 3):
    """A random ``CLIPModel`` (weights moved off their init so nothing passes by symmetry)
    with its tokenizer and image processor, saved to ``folder``; returns the model."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = make_tokenizer()
    text = dict(vocab_size=len(tokenizer) + 3, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=32, hidden_act=hidden_act,
                eos_token_id=2 if legacy_eos else tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=3,
                  image_size=image_size, patch_size=patch_size, num_channels=channels, hidden_act=hidden_act)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=24, logit_scale_init_value=2.0)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
                       ).save_pretrained(str(folder))
    return model
