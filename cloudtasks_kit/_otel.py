"""The kit's OpenTelemetry code. Imported by :mod:`cloudtasks_kit.tracing` only when opentelemetry-api is
installed and a create or a task needs it; importing it fails without opentelemetry, which is how the
kit knows to stay out of the way.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Awaitable, Callable, Generator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ._version import __version__
from .names import short_id
from .tracing import TRACE_HEADERS, PlanTrace, TraceMode

if TYPE_CHECKING:
    from . import rules
    from ._runner import Op, Plan
    from .bulk import Chunk
    from .context import TaskContext

T = TypeVar("T")

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
SYSTEM = "gcp_cloud_tasks"

# Attribute names: the messaging conventions' own, then the system-specific ones they leave to us.
SYSTEM_ATTR = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
BATCH_COUNT = "messaging.batch.message_count"
ERROR_TYPE = "error.type"
CODE_FUNCTION = "code.function.name"
HTTP_STATUS = "http.response.status_code"
QUEUE_PATH = "messaging.gcp_cloud_tasks.queue.path"
CLIENT_RETRIES = "messaging.gcp_cloud_tasks.client.retries"
BATCH_FAILED = "messaging.gcp_cloud_tasks.batch.failed_count"
CONTEXT_DROPPED = "messaging.gcp_cloud_tasks.creation_context.dropped"
RETRY_COUNT = "messaging.gcp_cloud_tasks.task.retry_count"
EXECUTION_COUNT = "messaging.gcp_cloud_tasks.task.execution_count"

_get_current = otel_context.get_current  # bound once: it runs on every create
_cached: tuple[trace.TracerProvider, trace.Tracer] | None = None


def _tracer() -> trace.Tracer:
    """The kit's tracer from the global provider of the moment. Not kept from import time: a tracer got
    before the application set its provider stays a proxy, and one got from a provider that tests later
    replace would keep writing to it."""
    global _cached
    provider = trace.get_tracer_provider()
    if _cached is None or _cached[0] is not provider:
        tracer = trace.get_tracer(
            "cloudtasks_kit", __version__, tracer_provider=provider, schema_url=SCHEMA_URL
        )
        _cached = (provider, tracer)
    return _cached[1]


# The process span the handler is running now, so a task function's failure lands on it and not on a span
# of the web framework's.
_process_span: contextvars.ContextVar[ProcessSpan | None] = contextvars.ContextVar(
    "cloudtasks_kit_process_span", default=None
)


def _provider_probe() -> Callable[[], bool]:
    """How to ask "has an SDK's tracer provider been set?" cheaply.

    ``trace.get_tracer_provider()`` costs about 2 us while none is set (it looks the variable
    OTEL_PYTHON_TRACER_PROVIDER up in os.environ on every call): 1.4% of a create on the fake by itself.
    ``set_tracer_provider`` keeps the provider in ``trace._TRACER_PROVIDER``; reading that costs 0.07 us.
    The public call is the fallback if that name ever goes, or when the variable is set (the provider is
    then made on the first public call).
    """
    if hasattr(trace, "_TRACER_PROVIDER") and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ:
        return lambda: trace._TRACER_PROVIDER is not None
    return lambda: not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class Otel:
    """The kit's tracer and what it does with it; one instance, :data:`OTEL`."""

    def __init__(self) -> None:
        self._probe = _provider_probe()
        self._provider_set = False  # once set, a global tracer provider cannot be replaced or unset

    def wanted(self) -> bool:
        """Something to trace: an SDK provider is set, or a span (even a non-recording one) is active.

        The common "no" (the API installed, no SDK, no span) costs a provider probe and one context
        lookup: an empty context holds no span.
        """
        if self._provider_set or self._probe():
            self._provider_set = True
            return True
        current = _get_current()
        return bool(current) and trace.get_current_span(current).get_span_context().is_valid

    def current_context(self) -> Context:
        return otel_context.get_current()

    # Creating.

    def send(
        self,
        operation: str,
        queue_name: str,
        tasks: list[Any],
        limits: rules.Limits,
        *,
        chunk: Chunk | None = None,
    ) -> SendSpan:
        parent = chunk.trace_parent if chunk is not None else None
        return SendSpan(operation, queue_name, tasks, limits, parent=parent, chunk=chunk)

    def buffer(self, op: Op[T], queue_name: str) -> Op[T]:
        return _buffered(op, queue_name)

    # Processing.

    def process(
        self, context: TaskContext, function: str, carrier: Mapping[str, str] | None, mode: TraceMode
    ) -> ProcessSpan:
        return ProcessSpan(context, function, carrier, mode)

    def failed(self, error: BaseException) -> None:
        processing = _process_span.get()
        if processing is not None:
            processing.failed = True
            _record_failure(processing.span, error)

    # Logs.

    def current_ids(self) -> tuple[str, str] | None:
        """The current span's trace and span ids in hex, when it has a valid context."""
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return None
        return trace.format_trace_id(span_context.trace_id), trace.format_span_id(span_context.span_id)

    def ids_in(self, headers: Mapping[str, str]) -> tuple[str, str] | None:
        """The trace and span ids a request's headers carry, read by the configured propagator."""
        span_context = trace.get_current_span(propagate.extract(headers)).get_span_context()
        if not span_context.is_valid:
            return None
        return trace.format_trace_id(span_context.trace_id), trace.format_span_id(span_context.span_id)


OTEL = Otel()


def _record_failure(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
    span.set_attribute(ERROR_TYPE, f"{type(error).__module__}.{type(error).__qualname__}")


def _base_attributes(operation: str, queue_name: str) -> dict[str, AttributeValue]:
    return {
        SYSTEM_ATTR: SYSTEM,
        OPERATION_TYPE: "send",
        OPERATION_NAME: operation,
        DESTINATION: short_id(queue_name),
        QUEUE_PATH: queue_name,
    }


def _custom_context(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The caller's own trace headers on a task, if it has a ``traceparent``."""
    own = {name.lower(): value for name, value in headers.items() if name.lower() in TRACE_HEADERS}
    return own if "traceparent" in own else None


def _inject(span: Span, headers: MutableMapping[str, str], task: Any, limits: rules.Limits | None) -> None:
    """Put ``span``'s context on one task's headers (what the configured propagator writes: traceparent,
    tracestate, baggage...), leaving any header the caller set. A task the headers would push over the
    service's limits keeps none of them: the create must not fail for its trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    present = {name.lower() for name in headers}
    added = [name for name in carrier if name.lower() not in present]
    for name in added:
        headers[name] = carrier[name]
    if limits is None or task is None or not added:
        return
    total = sum(len(name) + len(value) for name, value in headers.items())
    if total >= limits.max_header_bytes or task.ByteSize() > limits.max_task_bytes:
        for name in added:
            del headers[name]
        span.set_attribute(CONTEXT_DROPPED, True)


class SendSpan(PlanTrace):
    """The PRODUCER span of one create or one bulk chunk, around every attempt its retry policy makes.

    Its context is the tasks' creation context: started before the first attempt, it goes on each task's
    headers (each attempt sends the same request).
    """

    def __init__(
        self,
        operation: str,
        queue_name: str,
        tasks: list[Any],
        limits: rules.Limits,
        *,
        parent: Context | None,
        chunk: Chunk | None,
    ) -> None:
        self.operation = operation
        self.queue_name = queue_name
        self.tasks = tasks
        self.limits = limits
        self.parent = parent if parent is not None else otel_context.get_current()
        self.chunk = chunk
        self.attempts = 0

    def _start(self) -> Span:
        attributes = _base_attributes(self.operation, self.queue_name)
        if self.chunk is not None:
            attributes[BATCH_COUNT] = len(self.tasks)
        elif self.tasks and self.tasks[0].name:
            attributes[MESSAGE_ID] = short_id(self.tasks[0].name)
        links: list[Link] = []
        injectable: list[Any] = []
        for task in self.tasks:
            headers = _headers_of(task)
            own = _custom_context(headers)
            if own is None:
                injectable.append(task)
                continue
            # The caller's own creation context is kept as it is, and linked (as the conventions say).
            linked = trace.get_current_span(propagate.extract(own)).get_span_context()
            if linked.is_valid:
                links.append(Link(linked))
        name = f"{self.operation} {short_id(self.queue_name)}"
        span = _tracer().start_span(
            name, context=self.parent, kind=SpanKind.PRODUCER, attributes=attributes, links=links
        )
        for task in injectable:
            _inject(span, _headers_of(task), task, self.limits)
        return span

    def _counted(self, plan: Plan[T]) -> None:
        make_op = plan.make_op

        def counted(retried: bool) -> Op[T]:
            self.attempts += 1
            return make_op(retried)

        plan.make_op = counted

    def _finish(self, span: Span, result: Any, error: BaseException | None) -> None:
        span.set_attribute(CLIENT_RETRIES, max(0, self.attempts - 1))
        if error is not None:
            _record_failure(span, error)
        elif self.chunk is None:
            name = getattr(result, "name", "")
            if name:
                span.set_attribute(MESSAGE_ID, short_id(name))
        else:
            failed = sum(1 for outcome in self.chunk.results.values() if not outcome.ok)
            span.set_attribute(BATCH_FAILED, failed)
        span.end()

    def run(self, plan: Plan[T], go: Callable[[], T]) -> T:
        span = self._start()
        self._counted(plan)
        with trace.use_span(span, record_exception=False, set_status_on_exception=False):
            try:
                result = go()
            except BaseException as exc:
                self._finish(span, None, exc)
                raise
        self._finish(span, result, None)
        return result

    async def arun(self, plan: Plan[T], go: Callable[[], Awaitable[T]]) -> T:
        span = self._start()
        self._counted(plan)
        with trace.use_span(span, record_exception=False, set_status_on_exception=False):
            try:
                result = await go()
            except BaseException as exc:
                self._finish(span, None, exc)
                raise
        self._finish(span, result, None)
        return result


def _buffered(op: Op[T], queue_name: str) -> Generator[Any, Any, T]:
    """BufferTask inside a PRODUCER span. The span is not made current (a generator must not hold a
    context across its yields); it is started before the request goes out, its context put on the
    request's headers, and ended with the answer."""
    span = _tracer().start_span(
        f"buffer_task {short_id(queue_name)}",
        kind=SpanKind.PRODUCER,
        attributes=_base_attributes("buffer_task", queue_name),
    )
    try:
        step = next(op)
        request = step.request
        if _custom_context(request.headers) is None:
            _inject(span, request.headers, None, None)  # the service measures the body alone
        if request.task_id:
            span.set_attribute(MESSAGE_ID, str(request.task_id))
        while True:
            try:
                response = yield step
            except BaseException as exc:
                step = op.throw(exc)
            else:
                step = op.send(response)
    except StopIteration as stop:
        name = getattr(stop.value, "name", "")
        if name:
            span.set_attribute(MESSAGE_ID, short_id(name))
        span.end()
        return stop.value  # type: ignore[no-any-return]
    except BaseException as exc:
        _record_failure(span, exc)
        span.end()
        raise


class ProcessSpan:
    """The CONSUMER span a task function runs in, current while it runs."""

    def __init__(
        self, context: TaskContext, function: str, carrier: Mapping[str, str] | None, mode: TraceMode
    ) -> None:
        parent: Context | None = None
        links: list[Link] = []
        if carrier:
            created = trace.get_current_span(propagate.extract(carrier)).get_span_context()
            if created.is_valid:
                # The conventions ask a process span to link to the message's creation context always;
                # "child" also makes it the parent, unless a server span of the same trace (a web
                # framework's instrumentation) is current, which then stays in between.
                links.append(Link(created))
                if mode == "child":
                    current = trace.get_current_span().get_span_context()
                    if not (current.is_valid and current.trace_id == created.trace_id):
                        parent = trace.set_span_in_context(trace.NonRecordingSpan(created))
        attributes: dict[str, AttributeValue] = {
            SYSTEM_ATTR: SYSTEM,
            OPERATION_TYPE: "process",
            OPERATION_NAME: "process",
            DESTINATION: context.queue,
            MESSAGE_ID: context.task_id,
            CODE_FUNCTION: function,
            RETRY_COUNT: context.retry_count,
            EXECUTION_COUNT: context.execution_count,
        }
        self.span = _tracer().start_span(
            f"process {context.queue or '?'}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        self.failed = False
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        self._current = _process_span.set(self)

    def answered(self, status: int) -> None:
        self.span.set_attribute(HTTP_STATUS, status)
        if status >= 500 and not self.failed:
            # A 5xx makes Cloud Tasks retry: this attempt failed. (A task function's own exception is
            # recorded by failed(); RetryLater's 503 is a failure too, one the function asked for.)
            self.span.set_status(Status(StatusCode.ERROR, f"answered {status}"))

    def end(self, error: BaseException | None) -> None:
        if error is not None:  # the kit's own code raised (not the task function: the handler catches that)
            _record_failure(self.span, error)
        _process_span.reset(self._current)
        otel_context.detach(self._token)
        self.span.end()


def _headers_of(task: Any) -> Any:
    """The headers map of a raw task, HTTP or App Engine (touching the other would switch the oneof)."""
    if task.HasField("app_engine_http_request"):
        return task.app_engine_http_request.headers
    return task.http_request.headers
