"""Every built-in plugin has the same module layout, so the next engineer finds things in one place.

``plugin.py`` holds the hooks (data only), ``models/`` the architectures and converters,
``pipelines/`` one module per task (plus the plugin's shared ``base``), ``data.py`` the training
data readers. The hooks' ``"module:attr"`` strings are checked against it: a task whose pipeline
lives outside ``pipelines/`` or a builder outside ``models/`` fails here, naming it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PLUGINS = ("hub_text", "hub_vision", "hub_speech", "hub_recsys")
ROOT = Path(__file__).resolve().parents[1] / "plugins"


def _hook(package: str, name: str) -> list:
    module = importlib.import_module(f"{package}.plugin")
    return list(getattr(module, name)()) if hasattr(module, name) else []


@pytest.mark.parametrize("package", PLUGINS)
def test_every_plugin_has_the_common_layout(package):
    folder = ROOT / package
    missing = [part for part in ("plugin.py", "data.py", "models/__init__.py", "pipelines/__init__.py")
               if not (folder / part).is_file()]
    assert not missing, f"{package} lacks {missing} of the common plugin layout (README: Writing a plugin)"


@pytest.mark.parametrize("package", PLUGINS)
def test_hooks_point_into_the_layout(package):
    misplaced = []
    for spec in _hook(package, "hub_tasks"):
        if not spec.pipeline.startswith(f"{package}.pipelines."):
            misplaced.append(f"task {spec.name}: {spec.pipeline}")
    for spec in _hook(package, "hub_architectures"):
        if not spec.builder.startswith(f"{package}.models."):
            misplaced.append(f"architecture {spec.name}: {spec.builder}")
    for spec in _hook(package, "hub_converters"):
        if not spec.convert.startswith(f"{package}.models."):
            misplaced.append(f"converter {spec.name}: {spec.convert}")
    assert not misplaced, f"{package}: hooks point outside pipelines/ and models/: {misplaced}"
    assert _hook(package, "hub_tasks"), f"{package} registers no task"


@pytest.mark.parametrize("package", PLUGINS)
def test_every_hook_target_imports(package):
    """The strings resolve: a moved module would otherwise fail only when a user loads the task."""
    targets = ([s.pipeline for s in _hook(package, "hub_tasks")]
               + [s.builder for s in _hook(package, "hub_architectures")]
               + [s.convert for s in _hook(package, "hub_converters")])
    for target in targets:
        module, attr = target.split(":")
        assert hasattr(importlib.import_module(module), attr), target
