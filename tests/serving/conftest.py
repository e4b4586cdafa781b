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

SPEECH_CONFIG = {"backbone": {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "rotary_dim": 16,
                              "intermediate_size": 64}, "subsample_channels": 8}


class _Folders:
    """Model folders made on first use (a test of one model does not pay for the others)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._made:
            self._made[name] = getattr(self, f"_make_{name}")(self.root / name)
        return self._made[name]

    @staticmethod
    def _make_clf(folder: Path) -> Path:
        from tests.text.checkpoints import make_bert_classifier

        make_bert_classifier(folder, num_labels=3, max_positions=32, layers=1)
        return folder

    @staticmethod
    def _make_emb(folder: Path) -> Path:
        import torch
        from transformers import BertConfig, BertModel

        from tests.text.checkpoints import make_wordpiece_tokenizer

        tokenizer = make_wordpiece_tokenizer(folder)
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=37, max_position_embeddings=32)).save_pretrained(str(folder))
        return folder

    @staticmethod
    def _make_asr(folder: Path) -> Path:
        import hub

        hub.create("speech-recognize", config=SPEECH_CONFIG, device="cpu", seed=0).save(folder)
        return folder

    @staticmethod
    def _make_rec(folder: Path) -> Path:
        import hub

        rows = [(f"u{u}", f"i{(u * 3 + t) % 24}", 1.0, 1000 + t) for u in range(30) for t in range(8)]
        rec = hub.create("recommend", config={"architecture": "mf", "factors": 8}, device="cpu", seed=0)
        rec.fine_tune(rows, progress=False, epochs=1)
        rec.save(folder)
        return folder

    @staticmethod
    def _make_img(folder: Path) -> Path:
        import hub

        hub.create("image-classify", config=IMAGE_CONFIG, device="cpu", seed=0).save(folder)
        return folder


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> _Folders:
    """``folders["clf"]``: a random BERT classifier (text-classify); ``["emb"]``: a random BERT
    encoder (text-embed); ``["img"]``: a ViT from hub.create (image-classify); ``["asr"]``: a CTC
    recogniser from hub.create (speech-recognize); ``["rec"]``: a matrix-factorisation
    recommender trained for an epoch on synthetic interactions (recommend)."""
    return _Folders(tmp_path_factory.mktemp("served"))


class _Pipes:
    """The in-process pipelines on the same folders (the reference for every answer), loaded on
    first use."""

    def __init__(self, folders: _Folders) -> None:
        self.folders = folders
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = fresh(self.folders, name)
        return self._loaded[name]


@pytest.fixture(scope="session")
def pipes(folders) -> _Pipes:
    return _Pipes(folders)


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


def fresh(folders, name: str) -> Any:
    """A pipeline of its own for a server (a pipeline is not shared between the server's
    inference thread and the test's reference calls: fast tokenizers are not thread-safe)."""
    import hub

    task = {"clf": "text-classify", "emb": "text-embed", "img": "image-classify", "asr": "speech-recognize",
            "rec": "recommend"}[name]
    return hub.load(task, model=str(folders[name]), device="cpu")


class Recorder:
    """A ``predict`` that records each call's inputs and options, then runs the pipeline;
    ``fail_on``: an input that makes the call raise ``error(items)``."""

    def __init__(self, pipe: Any, fail_on: Any = None, error: Any = None) -> None:
        self.pipe, self.fail_on, self.error = pipe, fail_on, error
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []

    def __call__(self, items: Any, **options: Any) -> Any:
        inputs = items if isinstance(items, list) else [items]  # one input: a request running alone
        self.calls.append((inputs, dict(options)))
        if self.fail_on is not None and self.fail_on in inputs:
            raise self.error(inputs)
        return self.pipe(items, **options)


def run_concurrently(url: str, requests: list[tuple[str, Any]], concurrency: int = 32,
                     headers: dict[str, str] | None = None) -> list[Any]:
    """POST each ``(path, json body or raw bytes)`` from ``concurrency`` threads, each with its
    own keep-alive httpx client (several times faster than one AsyncClient's pool here); the
    responses in order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    local = threading.local()
    clients: list[httpx.Client] = []

    def one(request: tuple[str, Any]) -> Any:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60, headers=headers)
            clients.append(client)
        path, body = request
        if isinstance(body, bytes):
            return client.post(path, content=body, headers={"content-type": "application/json"})
        return client.post(path, json=body)

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, requests))
    finally:
        for client in clients:
            client.close()


def wav_bytes(seed: int, seconds: float = 0.6, rate: int = 16000) -> tuple[bytes, Any]:
    """A WAV file of a noisy tone and its samples."""
    import io

    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * (300 + 100 * seed) * t)
               + 0.05 * np.random.RandomState(seed).randn(t.size)).astype("float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue(), samples
