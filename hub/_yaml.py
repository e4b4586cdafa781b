"""One safe YAML reader for the files a user hands Hub: registry overlays and training recipes.

``yaml.safe_load`` already refuses code execution (no ``!!python/...`` tags), but it still
lets a small file do a lot of harm or say something other than what it looks like. This
reader is ``safe_load`` plus five rules:

* **No anchors or aliases** (``&name`` / ``*name``, hence no ``<<: *name`` merges either).
  A 1 KB "billion laughs" file expands into 10**9 strings the moment anything walks the
  loaded data (``hub list --json`` serialising it, a validator iterating it). Limiting the
  expansion would need a size the user has to understand and a walk of the whole graph;
  refusing is a rule anyone can follow, and registry entries and recipes are short, flat
  files that never need them (the shipped registry has none). The error names the line and
  says to write the value out.
* **Bounded size and depth**: at most :data:`DEFAULT_MAX_BYTES` bytes (``max_bytes=`` or
  ``HUB_YAML_MAX_BYTES``) and :data:`DEFAULT_MAX_DEPTH` nested collections (``max_depth=``
  or ``HUB_YAML_MAX_DEPTH``), so a 100 MB file or ``[[[[...`` 100,000 levels deep fails
  fast instead of exhausting memory or the recursion limit.
* **Duplicate keys are refused.** PyYAML silently keeps the last of two equal keys, so a
  second ``models:`` block would quietly drop the first.
* **Floats as people write them**: PyYAML follows YAML 1.1, where ``5e-5`` and ``1e3`` are
  *strings* (a float there needs a dot and a signed exponent). Here they are numbers, as in
  YAML 1.2 and JSON. Everything else keeps YAML 1.1 meaning (``yes``/``no`` are booleans).
* **Errors fit on one line**, ``FILE:LINE:COLUMN: problem``, for syntax errors, refused
  constructs, bytes that are not UTF-8 (the line of the bad byte, not an offset) and values
  a tag cannot hold (``!!int abc``, a date ``2024-13-45``). A UTF-8 byte-order mark at the
  start is accepted.

Errors are :class:`YAMLFileError`; callers re-raise them as their own kind
(:class:`~hub.errors.RegistryError`, :class:`~hub.errors.ConfigError`) keeping the one line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hub.errors import HubError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "MAX_BYTES_ENV", "MAX_DEPTH_ENV", "YAMLFileError",
           "load_yaml_file", "load_yaml_text"]

DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # the shipped registry is ~10 KB; a recipe well under 1 KB
DEFAULT_MAX_DEPTH = 64  # registry entries nest 3 deep, recipes 2
MAX_BYTES_ENV = "HUB_YAML_MAX_BYTES"
MAX_DEPTH_ENV = "HUB_YAML_MAX_DEPTH"

# YAML 1.2 / JSON floats PyYAML's YAML 1.1 resolver reads as strings: an exponent without a
# dot (5e-5, 1E3) or with an unsigned exponent (1.5e3). The 1.1 forms still resolve as before.
_FLOAT_12 = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+
                            |[-+]?\.[0-9_]+[eE][-+]?[0-9]+)$""", re.X)


class YAMLFileError(HubError, ValueError):
    """A YAML file Hub cannot read: ``FILE:LINE:COLUMN: problem`` (line/column 1-based, or None)."""

    def __init__(self, file: str, line: int | None, column: int | None, problem: str) -> None:
        self.file, self.line, self.column, self.problem = file, line, column, problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.problem}"


def _limit(value: int | None, env: str, default: int) -> int:
    if value is not None:
        return int(value)
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        parsed = int(raw)
    except ValueError:
        raise HubError(f"{env}={raw!r} is not a whole number; unset it or give a positive integer.") from None
    if parsed <= 0:
        raise HubError(f"{env}={raw!r} must be a positive integer.")
    return parsed


def _loader_class() -> type:
    """Build the loader on first use: ``import yaml`` stays out of ``import hub``."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml
    from yaml.constructor import ConstructorError

    class _Refused(yaml.MarkedYAMLError):
        """A construct this reader refuses; reported like a syntax error."""

    class SafeHubLoader(yaml.SafeLoader):
        max_depth = DEFAULT_MAX_DEPTH

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _Refused(None, None, f"YAML alias '*{event.anchor}' is not allowed here: Hub refuses "
                               "anchors and aliases in registry files and recipes (a few lines of them "
                               "can expand to gigabytes); write the value out instead",
                               event.start_mark)
            event = self.peek_event()
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                raise _Refused(None, None, f"YAML anchor '&{anchor}' is not allowed here: Hub refuses "
                               "anchors and aliases in registry files and recipes; write the values out "
                               "instead", event.start_mark)
            nests = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
            if nests:
                self._depth += 1
                if self._depth > self.max_depth:
                    raise _Refused(None, None, f"nested more than {self.max_depth} levels deep (the limit; "
                                   f"raise it with {MAX_DEPTH_ENV})", event.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                if nests:
                    self._depth -= 1

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (ValueError, TypeError, OverflowError) as exc:  # e.g. `!!int abc`, `2024-13-45`
                shown = "this value"
                if isinstance(node, yaml.ScalarNode):
                    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
                    shown = f"the value {text!r}"
                raise ConstructorError(None, None, f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]}: "
                                       f"{_short(exc)}; quote it to keep it text", node.start_mark) from None

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                        continue
                    key = self.construct_object(key_node)
                    try:
                        first = seen.get(key)
                    except TypeError:
                        continue  # unhashable: the base class reports it
                    if first is not None:
                        raise ConstructorError(None, None, f"duplicate key {key!r} (first given on line "
                                               f"{first.line + 1}); YAML would silently keep only the "
                                               "last one: remove or rename one of them", key_node.start_mark)
                    seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    SafeHubLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
    SafeHubLoader.refused_error = _Refused
    _LOADER = SafeHubLoader
    return _LOADER


_LOADER: type | None = None


def _short(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _decode(data: bytes, where: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YAMLFileError(where, 1, 1, "the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                                         "save it as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Windows editors) is fine
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise YAMLFileError(where, line, column, f"byte 0x{data[start]:02x} is not valid UTF-8 ({exc.reason}); "
                                                 "save the file as UTF-8") from None


def load_yaml_text(text: str, where: str, *, max_depth: int | None = None) -> Any:
    """Parse ``text`` under the rules above; ``where`` names it in errors (a file path)."""
    import yaml

    loader_cls = _loader_class()
    depth = _limit(max_depth, MAX_DEPTH_ENV, DEFAULT_MAX_DEPTH)
    loader = None
    try:
        loader = loader_cls(text)  # checks for unprintable characters right away
        loader.max_depth = depth
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.problem and not isinstance(exc, loader_cls.refused_error):
            problem = f"{exc.problem} ({exc.context}"
            if exc.context_mark is not None and exc.problem_mark is not None \
                    and exc.context_mark.line != exc.problem_mark.line:
                problem += f" on line {exc.context_mark.line + 1}"
            problem += ")"
        if not isinstance(exc, (loader_cls.refused_error, yaml.constructor.ConstructorError)):
            problem = f"not valid YAML: {problem}"
        raise YAMLFileError(where, mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                            " ".join(problem.split())) from None
    except yaml.reader.ReaderError as exc:  # a control character such as NUL
        before = text[:exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YAMLFileError(where, line, column, f"character {char} is not allowed in YAML (a control "
                                                 "character); remove it") from None
    except yaml.YAMLError as exc:
        raise YAMLFileError(where, None, None, "not valid YAML: " + " ".join(str(exc).split())) from None
    except RecursionError:  # deeper than Python's own limit even under max_depth
        raise YAMLFileError(where, None, None, "nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str | Path, *, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """Read one YAML file (UTF-8, optional BOM) under the rules above; errors are :class:`YAMLFileError`.

    An empty file gives ``None``.
    """
    path = Path(path)
    where = str(path)
    limit = _limit(max_bytes, MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise YAMLFileError(where, None, None, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise YAMLFileError(where, None, None, f"is larger than {limit} bytes (the limit for a YAML file; "
                                               f"raise it with {MAX_BYTES_ENV} or max_bytes=)")
    return load_yaml_text(_decode(data, where), where, max_depth=max_depth)
