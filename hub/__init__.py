"""Hub: a plugin-based multimodal model hub and SDK.

``import hub`` is cheap: torch and the plugins are imported on first use.

>>> import hub
>>> clf = hub.load("text-classify")          # doctest: +SKIP
>>> clf("a wonderful product")               # doctest: +SKIP
{'label': 'great', 'score': 0.97}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub._version import __version__
from hub.hookspecs import hookimpl

if TYPE_CHECKING:
    from hub.api import create, load
    from hub.registry import Registry
    from hub.serving.server import serve

__all__ = ["__version__", "create", "get_registry", "hookimpl", "list_models", "list_tasks", "load", "serve"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from hub.api import load

        return load
    if name == "create":
        from hub.api import create

        return create
    if name == "serve":  # FastAPI/uvicorn are imported only when a server is built
        from hub.serving.server import serve

        return serve
    raise AttributeError(f"module 'hub' has no attribute {name!r}")


def get_registry() -> "Registry":
    """The merged catalogue (registry.yaml, overlays and plugins)."""
    from hub.registry import get_registry

    return get_registry()


def list_tasks() -> list[str]:
    return sorted(get_registry().tasks)


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Catalogue names matching a glob, e.g. ``hub.list_models("bert*")``."""
    return [m.name for m in get_registry().list_models(pattern, task=task)]
