"""No import cycles in ``hub/``.

Every ``import`` / ``from ... import`` statement of every module under ``hub/`` counts,
wherever it stands: at module level, inside a function (a deferred import still ties the
two modules together) or under ``if TYPE_CHECKING:``. ``from pkg import name`` points at
``pkg.name`` when that is a module, else at ``pkg`` itself. A submodule's implicit import
of its parent package is not an edge (every submodule would otherwise form a cycle with
an ``__init__`` that re-exports it).

``hub/backbone`` is held strictly: no cycle may pass through it. The rest of ``hub/`` may
hold only the cycles listed in :data:`KNOWN_CYCLES` (issue 13, item 8 removes them); each
is an expected failure, strict, so removing one turns its entry into an XPASS failure
that says to drop it from the list, and any new cycle fails
:func:`test_no_cycles_beyond_the_known_ones`.

Run as a script (``python tests/test_import_cycles.py``) to print every cycle found.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hub"

#: cycles outside hub/backbone that another session removes (issue 13, item 8); each one
#: written from its smallest module name, in import order
KNOWN_CYCLES: tuple[tuple[str, ...], ...] = (
)


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package`` (``__init__`` as the package)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (at ``path``) imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import hub.a.b`` -> hub.a.b; unknown tails trimmed
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Every elementary cycle, each written from its smallest name (Johnson-style search
    restricted to names >= the start, so each cycle is found once)."""
    found = []
    for start in sorted(graph):
        stack = [(start, iter(sorted(graph[start])))]
        path, on_path = [start], {start}
        while stack:
            node, successors = stack[-1]
            for nxt in successors:
                if nxt == start:
                    found.append(tuple(path))
                elif nxt > start and nxt not in on_path and nxt in graph:
                    stack.append((nxt, iter(sorted(graph[nxt]))))
                    path.append(nxt)
                    on_path.add(nxt)
                    break
            else:
                stack.pop()
                on_path.discard(path.pop())
    return sorted(found, key=lambda c: (len(c), c))


@pytest.fixture(scope="module")
def found() -> list[tuple[str, ...]]:
    return cycles(import_graph())


def test_the_cycle_finder_sees_deferred_relative_and_type_checking_imports(tmp_path):
    """The checker itself: a function-level import, a relative import and a TYPE_CHECKING
    import each close a cycle; a plain submodule/parent pair does not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.sub import c\n")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from ..sub.d import X\nimport pkg\n")
    (pkg / "sub" / "d.py").write_text("import pkg.sub.c\n")
    assert cycles(import_graph(pkg)) == [("pkg", "pkg.sub.c"), ("pkg.a", "pkg.b"), ("pkg.sub.c", "pkg.sub.d")]


def test_the_backbone_has_no_import_cycles(found):
    through_backbone = [c for c in found if any(m == "hub.backbone" or m.startswith("hub.backbone.") for m in c)]
    assert not through_backbone, f"import cycles through hub.backbone: {through_backbone}"


def test_no_cycles_beyond_the_known_ones(found):
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, f"new import cycles in hub/ (break them; see the module docstring): {new}"


@pytest.mark.parametrize("cycle", [pytest.param(c, marks=pytest.mark.xfail(
    strict=True, reason="a known cycle (issue 13, item 8); once it is gone, delete it from KNOWN_CYCLES"))
    for c in KNOWN_CYCLES], ids=" <-> ".join)
def test_known_cycle_is_gone(found, cycle):
    assert cycle not in found, f"import cycle {' -> '.join(cycle + cycle[:1])}"


if __name__ == "__main__":
    all_cycles = cycles(import_graph())
    for c in all_cycles:
        print(" -> ".join(c + c[:1]))
    print(f"{len(all_cycles)} cycle(s) in {PACKAGE}")
    sys.exit(1 if all_cycles else 0)
