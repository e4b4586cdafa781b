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

How hooks are called. Every hook is called through pluggy (``HookCaller.__call__``), never by
calling an implementation function directly, so pluggy's argument matching, ``firstresult``
and any hook wrappers apply. Isolation needs one call per plugin: a pluggy call of all
implementations stops at the first exception, and a hook wrapper sees that exception only
after the remaining implementations were skipped. So :meth:`PluginManager.call_each` asks
each plugin through ``pm.subset_hook_caller(name, remove_plugins=<every other plugin>)``,
pluggy's documented way to call a hook on part of the registered plugins, in registration
order (built-ins first; see :mod:`hub.hookspecs` on precedence), and records what raises.

Validation. After each registration :meth:`pluggy.PluginManager.check_pending` verifies that
every ``@hookimpl`` names a hook of :mod:`hub.hookspecs`. A misspelt hook (``hub_task``)
fails that plugin, reported by ``hub plugins`` with the closest hook name, instead of being
silently ignored; the plugin is unregistered, so none of its hooks half-count.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
from collections.abc import Iterator
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
            plugin = load()
            self._pm.register(plugin, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin (even sys.exit) must not break the hub
            info.status, info.error = "failed", _describe(exc)
        else:
            unknown = self._check_pending(plugin)
            if unknown:
                self._pm.unregister(plugin)
                info.status, info.error = "failed", unknown
        self.plugins = [p for p in self.plugins if p.name != name] + [info]
        return info

    def _check_pending(self, plugin: Any) -> str | None:
        """pluggy's ``check_pending()`` after registering ``plugin``: ``None`` when every hook it
        implements is a Hub hook, else a message naming each unknown one and its closest hook.

        Every plugin registered before was checked the same way (and unregistered if it
        failed), so an unknown hook found now is ``plugin``'s.
        """
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            pass
        else:
            return None
        known = [name for name in vars(self._pm.hook) if not name.startswith("_")
                 and getattr(self._pm.hook, name).has_spec()]
        unknown = sorted(caller.name for caller in self._pm.get_hookcallers(plugin) or ()
                         if not caller.has_spec() and any(not impl.optionalhook and impl.plugin is plugin
                                                          for impl in caller.get_hookimpls()))
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (f"PluginValidationError: unknown hook {', '.join(parts)}: @hookimpl functions must be named "
                f"after a Hub hook ({', '.join(sorted(known))}); mark a hook of a newer Hub "
                "@hookimpl(optionalhook=True). The plugin was not loaded.")

    # -- calling -----------------------------------------------------------------
    def registered_names(self) -> list[str]:
        """The registered plugins' names in registration order (built-ins first)."""
        return [name for name, plugin in self._pm.list_name_plugin() if plugin is not None]

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call hook ``hook_name`` through pluggy on one plugin at a time, in registration order
        (built-ins first); yield ``(plugin name, result)`` for each plugin that implements it.

        A plugin whose hook raises (``SystemExit`` included; only ``KeyboardInterrupt``
        passes) is recorded in :attr:`hook_errors` and skipped, so the others still answer.
        A generator: a ``firstresult`` caller stops asking at the first answer.
        """
        caller = getattr(self._pm.hook, hook_name)
        implementers = {id(impl.plugin) for impl in caller.get_hookimpls()}
        registered = self._pm.list_name_plugin()  # registration order
        for name, plugin in registered:
            if plugin is None or id(plugin) not in implementers:
                continue
            others = [p for _, p in registered if p is not None and p is not plugin]
            one = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                result = one(**kwargs)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit in a hook is a plugin failure
                self.record_hook_error(name, hook_name, _describe(exc))
                continue
            yield name, result

    def record_hook_error(self, plugin: str, hook_name: str, error: str) -> None:
        """Note a failed hook call for ``hub plugins``, once (a hook called at every model load,
        such as ``hub_select_converter``, would otherwise repeat it without end)."""
        if (plugin, hook_name, error) not in self.hook_errors:
            self.hook_errors.append((plugin, hook_name, error))

    def collect(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call registration hook ``hook_name`` on every plugin (:meth:`call_each`); return
        ``(plugin, item)`` pairs, flattening each plugin's list. A result that is not a list
        or tuple is recorded in :attr:`hook_errors`."""
        results: list[tuple[str, Any]] = []
        for plugin_name, answers in self.call_each(hook_name):
            # a historic-free, non-firstresult hook gives pluggy's list of answers: one per impl
            for items in answers:
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
    """Forget loaded plugins (tests, notebooks); the registry built from them goes too.

    The registry notices by itself (:func:`hub.registry.get_registry` rebuilds when the plugin
    manager is not the one it was built from), so this module does not import
    :mod:`hub.registry`: the registry depends on the plugins, never the other way round.
    """
    global _manager
    _manager = None
