"""Plugin discovery and isolation on top of pluggy.

Plugins are found through the ``hub.plugins`` entry-point group. The built-in
plugins (shipped in the ``hub-sdk`` distribution) register there too, exactly as a
third party does. ``HUB_DISABLE_PLUGIN_AUTOLOAD=1`` skips third-party entry points
(built-ins stay, as with pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``); plugins can
still be named explicitly through ``HUB_PLUGINS=mod1,mod2`` or :meth:`register`.

A plugin that fails to import, or whose hook raises, is recorded with its error
(``hub plugins`` shows it) and never takes the rest of the hub down. "Raises" means any
``BaseException``: a plugin calling ``sys.exit()`` (``SystemExit``), raising
``GeneratorExit`` or running out of memory (``MemoryError``) is a failed plugin like any
other. Only ``KeyboardInterrupt`` passes through, so Ctrl-C still stops Hub. (A plugin
can still end the process with ``os._exit`` or a signal; plugins are code you installed.)
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from hub import hookspecs

ENTRY_POINT_GROUP = "hub.plugins"
BUILTIN_DISTRIBUTION = "hub-sdk"
AUTOLOAD_ENV = "HUB_DISABLE_PLUGIN_AUTOLOAD"
EXPLICIT_ENV = "HUB_PLUGINS"


@dataclass
class PluginInfo:
    """What ``hub plugins`` reports for one plugin."""

    name: str
    module: str
    distribution: str | None
    builtin: bool
    status: str  # "loaded" | "failed" | "skipped"
    error: str | None = None


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


class PluginManager:
    """Loads plugins and collects their registrations hook by hook."""

    def __init__(self, *, autoload: bool | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.autoload = (not _autoload_disabled()) if autoload is None else autoload
        self.plugins: list[PluginInfo] = []
        self.hook_errors: list[tuple[str, str, str]] = []  # (plugin, hook, error)

    # -- loading -----------------------------------------------------------------
    def load_entry_points(self) -> None:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first):
            dist = ep.dist.name if ep.dist is not None else None
            builtin = dist == BUILTIN_DISTRIBUTION
            if any(p.name == ep.name for p in self.plugins):
                continue  # the same entry point seen twice (e.g. editable + site install)
            if not builtin and not self.autoload:
                self.plugins.append(PluginInfo(ep.name, ep.value, dist, False, "skipped",
                                               f"{AUTOLOAD_ENV} is set"))
                continue
            self._register_lazily(ep.name, ep.value, dist, builtin, ep.load)

    def load_explicit(self) -> None:
        for module in filter(None, (m.strip() for m in os.environ.get(EXPLICIT_ENV, "").split(","))):
            known = next((p for p in self.plugins if p.module == module), None)
            if known is None or known.status != "loaded":  # keep an entry point's own name
                self.register_module(module, name=known.name if known else None)

    def register_module(self, module: str, name: str | None = None) -> PluginInfo:
        """Register a plugin by module name (what ``HUB_PLUGINS`` does)."""
        return self._register_lazily(name or module, module, None, False,
                                     lambda: importlib.import_module(module))

    def register(self, plugin: Any, name: str) -> PluginInfo:
        """Register an already imported plugin object (handy in tests and notebooks)."""
        return self._register_lazily(name, getattr(plugin, "__name__", name), None, False, lambda: plugin)

    def _register_lazily(self, name: str, module: str, dist: str | None, builtin: bool,
                         load: Any) -> PluginInfo:
        info = PluginInfo(name, module, dist, builtin, "loaded")
        try:
            self._pm.register(load(), name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin (even sys.exit) must not break the hub
            info.status, info.error = "failed", _describe(exc)
        self.plugins = [p for p in self.plugins if p.name != name] + [info]
        return info

    # -- collecting --------------------------------------------------------------
    def collect(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call ``hook_name`` on every plugin separately; return (plugin, item) pairs.

        Each implementation runs on its own so that one raising plugin is reported
        and skipped instead of failing the whole call.
        """
        caller = getattr(self._pm.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            plugin_name = self._pm.get_name(impl.plugin) or "?"
            try:
                items = impl.function()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit in a hook is a plugin failure
                self.hook_errors.append((plugin_name, hook_name, _describe(exc)))
                continue
            if items is None:
                continue
            if not isinstance(items, (list, tuple)):
                self.hook_errors.append((plugin_name, hook_name,
                                         f"returned {type(items).__name__}, expected a list"))
                continue
            results.extend((plugin_name, item) for item in items)
        return results


def _builtin_first(ep: EntryPoint) -> tuple[int, str]:
    dist = ep.dist.name if ep.dist is not None else ""
    return (0 if dist == BUILTIN_DISTRIBUTION else 1, ep.name)


def _describe(exc: BaseException) -> str:
    """``Type: message (at FILE:LINE)``, on one line; a ``SystemExit`` says the plugin called sys.exit."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r}){where}"
    return f"{type(exc).__name__}: {exc}{where}"


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    if _manager is None:
        manager = PluginManager()
        manager.load_entry_points()
        manager.load_explicit()
        _manager = manager
    return _manager


def reset() -> None:
    """Forget loaded plugins and the registry built from them (tests, notebooks)."""
    global _manager
    _manager = None
    from hub import registry

    registry.reset()
