"""The ``on_start`` hook the Ray tests give :func:`hub.serving.ray.build_ray_app`: shipped to the
replicas by value (``ray.cloudpickle.register_pickle_by_value``), so the workers need not
import the tests. It makes loading slow (readiness must say "not ready" meanwhile) and the
model served as ``slow`` slow (its requests are still in flight when the test deletes the
application). In :data:`MARKER_DIR` it leaves ``started-<time.time()>`` when a replica is about
to take traffic and ``entered-<id>`` as each slow call starts."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

#: how long each replica's start takes on top of loading its models
LOAD_SECONDS = 4.0
#: how long one call of the ``slow`` model takes
SLOW_SECONDS = 3.0
#: where the slow calls leave a file as they start (set by the test before deploying)
MARKER_DIR = ""


def _mark(name: str) -> None:
    if MARKER_DIR:
        with open(os.path.join(MARKER_DIR, name), "w"):
            pass


def slow_start(app: Any) -> None:
    time.sleep(LOAD_SECONDS)
    model = app.state.hub.models.get("slow")
    if model is None:
        _mark(f"started-{time.time()!r}")
        return
    inner, marker_dir, seconds = model.predict, MARKER_DIR, SLOW_SECONDS

    def predict(items: Any, **options: Any) -> Any:
        if marker_dir:
            with open(os.path.join(marker_dir, f"entered-{uuid.uuid4().hex}"), "w"):
                pass
        time.sleep(seconds)
        return inner(items, **options)

    model.predict = predict
    model.batcher.predict = predict
    _mark(f"started-{time.time()!r}")
