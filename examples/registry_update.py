"""Write measured figures into registry.yaml's entries, keeping its comments and layout
(used by the scripts that train or measure the shipped defaults: ``--update-registry``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def update_registry(name: str, figures: dict[str, float], path: Path = ROOT / "registry.yaml") -> None:
    """Replace the values of ``figures``' keys under ``models: NAME: metrics:``; each key must be there."""
    text = path.read_text(encoding="utf-8")
    block = re.search(rf"\n  {re.escape(name)}:\n(?:    .*\n|      .*\n)+", text)
    if block is None:
        raise SystemExit(f"{path}: no {name} entry to update")
    new = block.group(0)
    for key, value in figures.items():
        new, count = re.subn(rf"(\n      {re.escape(key)}: ).*", rf"\g<1>{value}", new)
        if not count:
            raise SystemExit(f"{path}: entry {name} has no metrics field {key!r}")
    path.write_text(text.replace(block.group(0), new), encoding="utf-8")
