"""Tiny random models saved to folders, the in-process pipelines on them, and a helper that
serves models on a free loopback port for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

IMAGE_CONFIG = {"img_size": 16, "patch_size": 8, "labels": ["cat", "dog", "owl"],
                "backbone": {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32}}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> dict[str, Path]:
    """text-classify (a random BERT classifier), text-embed (a random BERT encoder) and
    image-classify (a ViT from hub.create) folders."""
    import torch
    from transformers import BertConfig, BertModel

    import hub
    from tests.text.checkpoints import make_bert_classifier, make_wordpiece_tokenizer

    root = tmp_path_factory.mktemp("served")
    make_bert_classifier(root / "clf", num_labels=3, max_positions=32, layers=1)
    tokenizer = make_wordpiece_tokenizer(root / "emb")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=32)).save_pretrained(str(root / "emb"))
    hub.create("image-classify", config=IMAGE_CONFIG, device="cpu", seed=0).save(root / "img")
    return {"clf": root / "clf", "emb": root / "emb", "img": root / "img"}


@pytest.fixture(scope="session")
def pipes(folders) -> dict[str, Any]:
    """The in-process pipelines on the same folders (the reference for every answer)."""
    import hub

    return {"clf": hub.load("text-classify", model=str(folders["clf"]), device="cpu"),
            "emb": hub.load("text-embed", model=str(folders["emb"]), device="cpu"),
            "img": hub.load("image-classify", model=str(folders["img"]), device="cpu")}


@contextlib.contextmanager
def serving(models: Any, **settings: Any) -> Iterator[Any]:
    """A running server for ``models`` (specs, ServedModels or {name: pipeline}); yields it
    (``.url``, ``.app``); always shut down."""
    from hub.serving import BackgroundServer, ServeSettings, build_app

    settings.setdefault("log_level", "warning")
    app = build_app(models, ServeSettings(**settings), device="cpu")
    with BackgroundServer(app) as server:
        yield server


def png_bytes(seed: int, size: tuple[int, int] = (20, 24)) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = (np.random.RandomState(seed).rand(size[0], size[1], 3) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
