"""Dynamic batching across concurrent requests, one :class:`Batcher` per served model.

Why here and not in a library: the batch must keep the pipeline's contract (one result per
input, in order, options applied to the whole call), and one bad request must never fail
another (LitServe #294/#412/#340 are the failures of batchers that do not). So:

* Requests are queued with their *options key* (the JSON of their call options). A batch
  takes the oldest request and the queued ones with the same key, up to ``max_batch_size``
  inputs and ``max_batch_tokens`` estimated tokens, waiting at most ``max_wait_ms`` after the
  oldest arrived for more to come. Requests whose options cannot be shared (a list value such
  as recommend's per-user ``history``, or a ``seed``: sampling depends on the batch) run alone.
* The wait is only an upper bound: when every request the server is answering is already in
  the queue (the ``in_flight`` count the app gives), no other can join, so the batch goes at
  once. A lone request is never delayed by ``max_wait_ms``, and under load requests pile up
  while a batch runs and go together as the next one (the continuous-batching shape).
* The batch is ONE pipeline call, run in the model's own inference thread (off the event loop,
  so health and metrics answer during a long batch); the pipeline's length-sorted batching then
  works across requests. Results are split back per request.
* If the call raises, each request of the batch is retried alone, so only the culprit gets the
  error (with input indices counted within its own request).
* The queue is bounded: past ``max_queue`` waiting requests :meth:`Batcher.submit` raises a
  503 :class:`~hub.serving.errors.ServeError` at once. A request cancelled while it waits
  (client gone, timeout) is removed before it runs.

The batcher runs on the server's asyncio loop; :meth:`start` in the app's startup and
:meth:`close` in its shutdown, which drains what is queued first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.serving.errors import ServeError

logger = logging.getLogger("hub.serving.batcher")

#: call options whose effect depends on the batch they run in; a request giving one runs alone
UNSHARED_OPTIONS = frozenset({"seed"})


class BatchObserver(Protocol):
    """What the batcher reports (the metrics implement it)."""

    def batch_ran(self, model: str, size: int, seconds: float) -> None: ...

    def queue_depth(self, model: str, depth: int) -> None: ...


def options_key(options: dict[str, Any]) -> str | None:
    """The key requests must share to be batched together: their options as canonical JSON;
    ``None`` (run alone) when a value is not a JSON scalar or an option is in
    :data:`UNSHARED_OPTIONS`."""
    for name, value in options.items():
        if name in UNSHARED_OPTIONS or not (value is None or isinstance(value, (str, int, float, bool))):
            return None
    return json.dumps(options, sort_keys=True)


def text_cost(item: Any) -> int:
    """An input's share of the token budget: an estimate of a text's tokens (UTF-8 bytes / 4,
    plus 2 special tokens; close to WordPiece and BPE on English, cheap: no second
    tokenisation); 1 for anything else."""
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass")) // 4 + 2
    return 1


@dataclass(eq=False)
class Work:
    """One request's inputs waiting for (or in) a batch."""

    items: list[Any]
    options: dict[str, Any]
    key: str | None
    cost: int
    future: asyncio.Future
    request_id: str = ""
    single: bool = False  # one input, not a list of one (how a lone run calls predict)
    arrived: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued -> running -> done, or dropped


class Batcher:
    """The queue and inference thread of one model.

    Args:
        name: the served model's name (for metrics and logs).
        predict: ``predict(items, **options) -> list of results`` (a pipeline called on a
            list; a one-input request running alone calls ``predict(item, **options) ->
            result``); run in this batcher's single inference thread.
        max_batch_size, max_wait_ms, max_batch_tokens, max_queue: see
            :class:`~hub.serving.settings.ServeSettings`.
        batching: False: every request is its own call (the queue and thread stay).
        retry_after_s: the ``Retry-After`` of the 503 a full queue answers.
        cost: an input's share of ``max_batch_tokens`` (default :func:`text_cost`).
        observer: receives batch sizes and queue depths.
        in_flight: ``in_flight() -> int``, how many requests the server is answering now (any
            model, any route); when the queue holds that many, nobody else can join the batch,
            which then goes without waiting ``max_wait_ms``. ``None``: always wait (as long as
            the batch is not full). Call :meth:`poke` when the count drops.
    """

    def __init__(self, name: str, predict: Callable[..., Sequence[Any]], *, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, max_batch_tokens: int = 16384, max_queue: int = 256,
                 batching: bool = True, retry_after_s: int = 1, cost: Callable[[Any], int] = text_cost,
                 observer: BatchObserver | None = None, in_flight: Callable[[], int] | None = None) -> None:
        self.name = name
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_batch_tokens = max_batch_tokens
        self.max_queue = max_queue
        self.batching = batching
        self.retry_after_s = retry_after_s
        self.cost = cost
        self.observer = observer
        self.in_flight = in_flight
        self._gathering = False  # _gather is waiting for more requests (poke wakes it)
        self._queue: deque[Work] = deque()
        self._arrived: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self.running = 0  # inputs in the batch now running

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker on the running loop (the app's startup calls it)."""
        if self._worker is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hub-infer-{self.name}")
        self._worker = self._loop.create_task(self._run_forever(), name=f"hub-batcher-{self.name}")

    async def close(self) -> None:
        """Stop taking requests, finish the queued and running ones, stop the thread."""
        self._closing = True
        if self._worker is None:
            return
        assert self._arrived is not None
        self._arrived.set()
        await self._worker
        self._worker = None
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)

    async def iterate(self, factory: Callable[[], Iterator[Any]], *, ahead: int = 16) -> AsyncIterator[Any]:
        """Stream what ``factory()`` yields, computed in this model's inference thread (so it
        takes turns with the batches and never runs beside them), as an async iterator.

        For streaming routes (e.g. ``pipe.stream(prompt)`` for server-sent events). Leaving the
        ``async for`` early (client gone) stops the producer before its next piece.

        Args:
            factory: called in the inference thread; returns the iterator of pieces.
            ahead: how many pieces the producer may compute before the consumer takes them
                (then it waits: a slow client slows its own stream, not the server's memory).

        Yields:
            The pieces, in order; an exception raised by the producer is raised here.
        """
        if self._worker is None or self._closing or self._executor is None:
            raise ServeError(503, "unavailable", f"model {self.name!r} is not taking requests; retry shortly.",
                             {"Retry-After": str(self.retry_after_s)})
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        space = threading.Semaphore(ahead)
        done = object()

        def produce() -> None:
            iterator = factory()
            try:
                for piece in iterator:
                    while not space.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, (True, piece))
            except BaseException as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, (False, exc))
                return
            finally:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
            loop.call_soon_threadsafe(queue.put_nowait, (True, done))

        producer = loop.run_in_executor(self._executor, produce)
        try:
            while True:
                ok, value = await queue.get()
                if not ok:
                    raise value
                if value is done:
                    break
                space.release()
                yield value
        finally:
            stop.set()
            if producer.done():
                producer.result()

    def poke(self) -> None:
        """Re-check a batch being gathered (the app calls it when a request is answered, so
        ``in_flight`` dropped: the queued requests may now be all there is)."""
        if self._gathering and self._arrived is not None:
            self._arrived.set()

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a batch)."""
        return len(self._queue)

    # -- submitting ----------------------------------------------------------------------
    async def submit(self, items: list[Any], options: dict[str, Any], *, single: bool = False,
                     request_id: str = "") -> list[Any]:
        """Queue one request's inputs and wait for their results.

        Args:
            items: the request's inputs (already validated and decoded).
            options: its call options (already checked); equal options share batches.
            single: the request was one input (not a list of one); when it runs alone the
                pipeline is called with that input itself, exactly as the Python call.
            request_id: for the logs.

        Returns:
            One result per input, in order.

        Raises:
            ServeError: 503 when the queue is full or the server is shutting down.
            Exception: what the pipeline raised for this request when it ran alone.
        """
        if self._worker is None or self._closing:
            raise ServeError(503, "unavailable", f"model {self.name!r} is not taking requests (the server is "
                             "starting or shutting down); retry shortly.",
                             {"Retry-After": str(self.retry_after_s)})
        if len(self._queue) >= self.max_queue:
            raise ServeError(503, "overloaded", f"model {self.name!r} has {len(self._queue)} requests waiting "
                             f"(max_queue={self.max_queue}); retry after {self.retry_after_s} s, or raise "
                             "--max-queue.", {"Retry-After": str(self.retry_after_s)})
        assert self._loop is not None and self._arrived is not None
        key = options_key(options) if self.batching else None
        work = Work(list(items), dict(options), key, sum(self.cost(x) for x in items),
                    self._loop.create_future(), request_id, single and len(items) == 1)
        self._queue.append(work)
        self._report_depth()
        self._arrived.set()
        try:
            return await work.future
        except asyncio.CancelledError:
            self._drop(work)
            raise

    def _drop(self, work: Work) -> None:
        if work.state == "queued":
            work.state = "dropped"
            try:
                self._queue.remove(work)
            except ValueError:
                pass
            self._report_depth()
            logger.debug("request %s dropped before it ran (%s)", work.request_id, self.name)

    def _report_depth(self) -> None:
        if self.observer is not None:
            self.observer.queue_depth(self.name, len(self._queue))

    # -- the worker ----------------------------------------------------------------------
    async def _run_forever(self) -> None:
        assert self._arrived is not None and self._loop is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = await self._gather()
            if not batch:
                continue
            for work in batch:
                work.state = "running"
            self._report_depth()
            self.running = sum(len(w.items) for w in batch)
            try:
                outcomes = await self._loop.run_in_executor(self._executor, self._run_batch, batch)
            except BaseException as exc:  # the executor itself failed: answer everyone, keep going
                if isinstance(exc, asyncio.CancelledError):
                    raise
                outcomes = [(False, exc)] * len(batch)
            finally:
                self.running = 0
            for work, (ok, value) in zip(batch, outcomes):
                work.state = "done"
                if work.future.done():  # cancelled meanwhile: the result is discarded
                    continue
                if ok:
                    work.future.set_result(value)
                else:
                    work.future.set_exception(value)

    def _select(self, first: Work) -> tuple[list[Work], bool]:
        """The queued requests that join ``first`` (same key, FIFO, within the limits) and
        whether the batch is full."""
        batch, size, cost = [first], len(first.items), first.cost
        if first.key is None:
            return batch, True
        for work in self._queue:
            if work is first or work.key != first.key:
                continue
            if size + len(work.items) > self.max_batch_size or cost + work.cost > self.max_batch_tokens:
                return batch, True
            batch.append(work)
            size += len(work.items)
            cost += work.cost
        return batch, size >= self.max_batch_size or cost >= self.max_batch_tokens

    def _all_here(self) -> bool:
        """Every request the server is answering is queued here: no other can join a batch."""
        return self.in_flight is not None and len(self._queue) >= self.in_flight()

    async def _gather(self) -> list[Work]:
        """Wait (up to ``max_wait_ms`` after the oldest request arrived, and only while more
        requests may come) for a batch to fill, then take it off the queue. Empty when the
        oldest request left meanwhile."""
        assert self._arrived is not None
        first = self._queue[0]
        deadline = first.arrived + self.max_wait_s
        while True:
            batch, full = self._select(first)
            remaining = deadline - time.monotonic()
            if full or remaining <= 0 or self._closing or self._all_here():
                break
            self._arrived.clear()
            self._gathering = True
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                self._gathering = False
            if first.state != "queued":  # dropped while we waited: start over from the new head
                return []
        for work in batch:
            self._queue.remove(work)
        return batch

    # -- in the inference thread -------------------------------------------------------------
    def _call(self, items: list[Any], options: dict[str, Any], single: bool = False) -> list[Any]:
        """``predict(items, **options)``; a request of one input that runs alone is called as
        the Python call was, ``predict(item, **options)`` (an option such as recommend's
        ``history`` means one thing for one input and another for a list)."""
        start = time.perf_counter()
        try:
            results = [self.predict(items[0], **options)] if single else list(self.predict(items, **options))
        finally:
            if self.observer is not None:
                self.observer.batch_ran(self.name, len(items), time.perf_counter() - start)
        if len(results) != len(items):
            raise RuntimeError(f"model {self.name!r} returned {len(results)} results for {len(items)} inputs")
        return results

    def _run_batch(self, batch: list[Work]) -> list[tuple[bool, Any]]:
        """One call for the whole batch; if it raises, each request alone (only the culprit
        fails). Returns ``(ok, results or exception)`` per request."""
        items = [item for work in batch for item in work.items]
        try:
            results = self._call(items, batch[0].options, single=len(batch) == 1 and batch[0].single)
        except Exception as exc:
            if len(batch) == 1:
                return [(False, exc)]
            logger.warning("a batch of %d requests for %r failed (%s: %s); retrying each alone", len(batch),
                           self.name, type(exc).__name__, exc)
        else:
            outcomes, start = [], 0
            for work in batch:
                outcomes.append((True, results[start:start + len(work.items)]))
                start += len(work.items)
            return outcomes
        outcomes = []
        for work in batch:
            if work.future.cancelled():  # gone while the batch ran: no need to retry it
                outcomes.append((False, asyncio.CancelledError()))
                continue
            try:
                outcomes.append((True, self._call(work.items, work.options, work.single)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes
