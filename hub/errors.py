"""Exceptions Hub raises on purpose.

Every error a user can cause derives from :class:`HubError` and says what went wrong
and how to fix it, so callers never have to read a traceback from deep inside torch.
Each also derives from the matching builtin (``LookupError``, ``ValueError``, ...) so
existing ``except`` clauses keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HubError(Exception):
    """Base class of every error Hub raises deliberately."""


class UnknownNameError(HubError, LookupError):
    """A task, model, architecture or converter name that nothing registers."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known = sorted(set(known))
        self.kind, self.name, self.known = kind, name, known
        self.close_matches = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        msg = f"Unknown {kind} {name!r}."
        if self.close_matches:
            msg += " Did you mean: " + ", ".join(repr(m) for m in self.close_matches) + "?"
        elif known:
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            msg += f" Known {kind}s: {shown}."
        if hint:
            msg += " " + hint
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return self.args[0]


class RegistryError(HubError, ValueError):
    """registry.yaml (or an overlay) is malformed; names the file, entry and field."""

    def __init__(self, file: str, entry: str | None, field: str | None, problem: str) -> None:
        self.file, self.entry, self.field = file, entry, field
        where = file
        if entry:
            where += f": entry {entry!r}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class PluginError(HubError, RuntimeError):
    """A plugin failed to import or returned malformed registrations."""


class ModelLoadError(HubError, OSError):
    """A folder or file is not a loadable model (missing config, corrupt weights...)."""


class SaveTargetError(HubError, FileExistsError):
    """A save target holds something Hub did not write (a file, other files, the working directory).

    Hub never deletes what it did not write: a model is saved into a new or empty folder, or
    replaces a folder that holds a Hub model and nothing else.
    """


class OfflineModelNotCachedError(ModelLoadError):
    """The model lives on the Hugging Face Hub, we are offline, and it is not cached."""


class InvalidInputError(HubError, ValueError):
    """An input value a pipeline cannot process (empty text, wrong shape...)."""


class InputTypeError(HubError, TypeError):
    """An input of a type a pipeline does not accept."""


class ConfigError(HubError, ValueError):
    """Invalid training or model configuration (unknown key, wrong type)."""


class DataError(HubError, ValueError):
    """A dataset file or row that cannot be read; names the file and line."""


class NotSupportedError(HubError, NotImplementedError):
    """A verb (``from_scratch``, ``fine_tune``, ``pretrain``, ``evaluate``) or option the task
    does not offer; the message names the task and what it does offer."""


class MissingExtraError(HubError, ImportError):
    """An optional dependency of a feature is not installed; the message names the extra to
    install (``pip install 'hub-sdk[datasets]'``)."""
