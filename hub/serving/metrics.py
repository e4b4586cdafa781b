"""Prometheus metrics of one app, in its own registry (two apps in one process, as in the tests,
never share or clash), served at ``GET /metrics`` in the text exposition format.

* ``hub_requests_total{model, route, status}``: every answered request (the route is its path
  template, e.g. ``/v2/models/{name}/infer``, so the label set stays small; ``model`` is empty
  for routes without one and for names no model has).
* ``hub_request_duration_seconds{model, route}``: arrival to answer.
* ``hub_batch_size{model}``: inputs per pipeline call (a call of 1 under load means batching
  found nothing to merge).
* ``hub_batch_duration_seconds{model}``: one pipeline call.
* ``hub_queue_depth{model}``: requests waiting for a batch.
* ``hub_inflight_requests``: requests being answered now.

Under Ray Serve every sample also carries ``replica="<Ray replica id>"`` (the ``X-Hub-Replica``
header of the answer): ``GET /metrics`` through Ray's proxy reaches one replica per scrape, and
the label keeps each replica's counters apart (sum them over ``replica`` for the application).
"""

from __future__ import annotations

from typing import Any

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The app's collectors (prometheus-client) and the observer interface the batcher uses.

    Args:
        replica: a label value added to every sample as ``replica`` (Ray Serve replicas); empty:
            no such label (one process).
    """

    def __init__(self, replica: str = "") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.replica = replica
        extra = ["replica"] if replica else []
        self._extra = (replica,) if replica else ()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("hub_requests", "Requests answered, by model, route and HTTP status.",
                                ["model", "route", "status", *extra], registry=self.registry)
        self.latency = Histogram("hub_request_duration_seconds", "Time from a request's arrival to its answer.",
                                 ["model", "route", *extra], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("hub_batch_size", "Inputs per pipeline call.", ["model", *extra],
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram("hub_batch_duration_seconds", "Duration of one pipeline call.",
                                       ["model", *extra], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue = Gauge("hub_queue_depth", "Requests waiting for a batch.", ["model", *extra],
                           registry=self.registry)
        inflight = Gauge("hub_inflight_requests", "Requests being answered now.", extra, registry=self.registry)
        self.inflight = inflight.labels(replica) if replica else inflight

    def request_done(self, model: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(model, route, str(status), *self._extra).inc()
        self.latency.labels(model, route, *self._extra).observe(seconds)

    # BatchObserver
    def batch_ran(self, model: str, size: int, seconds: float) -> None:
        self.batch_size.labels(model, *self._extra).observe(size)
        self.batch_seconds.labels(model, *self._extra).observe(seconds)

    def queue_depth(self, model: str, depth: int) -> None:
        self.queue.labels(model, *self._extra).set(depth)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def sample(self, name: str, labels: dict[str, Any] | None = None) -> float | None:
        """One sample's value (for tests and the benchmark), e.g.
        ``sample("hub_batch_size_count", {"model": "clf"})`` (this replica's, under Ray)."""
        wanted = {k: str(v) for k, v in (labels or {}).items()}
        if self.replica:
            wanted.setdefault("replica", self.replica)
        return self.registry.get_sample_value(name, wanted)
