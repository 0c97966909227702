"""OpenTelemetry tracing: one trace from the request that enqueued a task to the handler that ran it.

With ``opentelemetry-api`` installed (``pip install "cloudtasks-kit[otel]"``) the kit:

- starts a PRODUCER span for each create (``create_task``, the decorator's ``enqueue``, ``buffer_task``)
  and each chunk of ``create_tasks``, with the outcome, the retries its policy made and, on failure, the
  error (status ERROR, the exception recorded);
- puts that span's context on the task as W3C ``traceparent``/``tracestate`` headers, through
  OpenTelemetry's propagator API (:func:`opentelemetry.propagate.inject`), unless the task already has a
  ``traceparent`` of the caller's (then that one is kept and the span links to it);
- runs each task function in a CONSUMER span whose parent (``TaskHandler(trace_mode="child")``, the
  default) or link (``trace_mode="link"``) is the context the task carried.

The attributes follow the messaging conventions of OpenTelemetry semantic conventions 1.44.0 (the schema
URL the kit's tracer declares; those conventions are still in Development): ``messaging.system`` is
``gcp_cloud_tasks``, ``messaging.operation.type`` ``send`` or ``process``, ``messaging.operation.name``
the RPC (``create_task``, ``batch_create_tasks``, ``buffer_task``) or ``process``,
``messaging.destination.name`` the queue id and ``messaging.message.id`` the task id. What the
conventions leave to each system is under ``messaging.gcp_cloud_tasks.*``. See docs/observability.md.

Without opentelemetry installed nothing is imported and nothing changes. With the API but no SDK and no
span active, a create pays one look at the current span (about 0.5% of a create on the fake; see
``python benchmarks/run.py tracing``). This module imports no OpenTelemetry itself: ``_otel`` does, on
first use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import logfields

if TYPE_CHECKING:
    from . import rules
    from ._otel import Otel
    from ._runner import Op, Plan
    from .bulk import Chunk
    from .context import TaskContext
    from .handler import HandlerResponse

__all__ = ["TRACE_HEADERS", "TraceMode"]

T = TypeVar("T")

TraceMode = Literal["child", "link"]
"""How a task's process span relates to the span that created the task: its ``child`` (one trace from the
request to the task, the default) or a ``link`` from a trace of its own."""

TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
"""The W3C Trace Context headers a task carries (lower case)."""

log = logging.getLogger("cloudtasks_kit.handler")

_looked = False  # for opentelemetry, once
_backend: Otel | None = None  # the kit's OpenTelemetry code, when opentelemetry is importable


def _load() -> Otel | None:
    global _backend, _looked
    if not _looked:
        try:
            from ._otel import OTEL
        except ImportError:  # opentelemetry-api is not installed (or was made unimportable)
            pass
        else:
            _backend = OTEL
        _looked = True
    return _backend


def _on() -> Otel | None:
    """The OpenTelemetry backend when there is something to trace: a span is active, or an SDK's tracer
    provider is set. None otherwise (and always without opentelemetry)."""
    backend = _backend if _looked else _load()
    if backend is not None and backend.wanted():
        return backend
    return None


def loaded() -> Otel | None:
    """The backend if a create or a task already loaded it; never imports OpenTelemetry (for logs)."""
    return _backend


# The creating side: hooks used by _operations, bulk and the runner.


def for_create(queue_name: str, request: Any, limits: rules.Limits) -> PlanTrace | None:
    """The span of one create (``request``: the raw CreateTaskRequest), or None when tracing is off."""
    otel = _backend if _looked else _load()  # _on(), inlined: this runs on every create
    if otel is None or not otel.wanted():
        return None
    return otel.send("create_task", queue_name, [request.task], limits)


def for_chunk(chunk: Chunk, limits: rules.Limits) -> PlanTrace | None:
    """The span of one chunk of a bulk create; its parent was captured when the chunk was made."""
    otel = loaded()
    if otel is None or chunk.trace_parent is None:  # nothing was traced where the chunk was made
        return None
    tasks = [request.task for _, request in chunk.pending]
    return otel.send("batch_create_tasks", chunk.queue_name, tasks, limits, chunk=chunk)


def capture() -> Any:
    """The caller's OpenTelemetry context, for work that will run in another thread (bulk chunks)."""
    otel = _on()
    return None if otel is None else otel.current_context()


def traced_buffer(op: Op[T], queue_name: str) -> Op[T]:
    """A BufferTask operation inside its span, its headers carrying the span's context."""
    otel = _on()
    return op if otel is None else otel.buffer(op, queue_name)


class PlanTrace:
    """A span around a plan (a create or a bulk chunk, retries included): what the runner calls."""

    def run(self, plan: Plan[T], go: Callable[[], T]) -> T:
        raise NotImplementedError

    async def arun(self, plan: Plan[T], go: Callable[[], Awaitable[T]]) -> T:
        raise NotImplementedError


# The receiving side: hooks used by the handler.


def carrier(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The trace headers of a task request (lower-cased names), or None: none, or OpenTelemetry absent."""
    found: dict[str, str] | None = None
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in TRACE_HEADERS:
            if found is None:
                if _load() is None:
                    return None
                found = {}
            found[lowered] = value
    return found


class Processing:
    """One task function's run: its process span (when tracing) and the structured log of its outcome.

    ``with Processing(...) as processing: return processing.answered(response)``
    """

    __slots__ = ("_function", "_mode", "_span", "_started", "carrier", "context")

    def __init__(
        self, context: TaskContext, function: str, carrier: Mapping[str, str] | None, mode: TraceMode
    ) -> None:
        self.context = context
        self.carrier = carrier
        self._function = function
        self._mode = mode
        self._span: Any = None
        self._started = 0.0

    def __enter__(self) -> Processing:
        self._started = time.monotonic()
        otel = _on() if self.carrier is None else _load()
        if otel is not None:
            self._span = otel.process(self.context, self._function, self.carrier, self._mode)
        return self

    def answered(self, response: HandlerResponse) -> HandlerResponse:
        """Record the answer on the span and in the log; returns it."""
        if self._span is not None:
            self._span.answered(response.status)
        if log.isEnabledFor(logging.INFO):
            latency_ms = (time.monotonic() - self._started) * 1000
            context = self.context
            log.info(
                "task %s (queue %s, %s) attempt %d -> %d in %.1f ms",
                context.task_id or "?",
                context.queue or "?",
                self._function,
                context.retry_count + 1,
                response.status,
                latency_ms,
                extra=logfields.task_fields(context, response.status, latency_ms, self._function),
            )
        return response

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._span is not None:
            self._span.end(error)


def failed(error: BaseException) -> None:
    """Record a task function's exception on its process span (the handler answers 500)."""
    otel = loaded()
    if otel is not None:
        otel.failed(error)
