"""Plain result types: dicts (JSON-ready, equal to transformers' results) that also
carry per-input metadata such as whether an input was truncated."""

from __future__ import annotations

from typing import Any


class Prediction(dict):
    """A ``dict`` result with a ``metadata`` attribute (not part of the dict itself).

    >>> p = Prediction(label="great", score=0.9, metadata={"truncated": False})
    >>> p == {"label": "great", "score": 0.9}, p.metadata["truncated"]
    (True, False)
    """

    def __init__(self, *args: Any, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metadata: dict[str, Any] = dict(metadata or {})
