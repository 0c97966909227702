"""One OpenTelemetry SDK provider for the whole test run, set as the global provider only inside the tests
that ask for it (the ``spans`` fixture), so every other test runs as an application without an SDK.

A global tracer provider cannot be replaced, and tracers handed out before it was set keep the first one
they saw: hence one provider, and resetting the API's globals (as OpenTelemetry's own tests do) around
each use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from cloudtasks_kit import _otel

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


def _reset_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    _otel.OTEL._provider_set = False


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The SDK on: every finished span lands in the exporter this yields."""
    _reset_globals()
    trace.set_tracer_provider(PROVIDER)
    EXPORTER.clear()
    try:
        yield EXPORTER
    finally:
        _reset_globals()
        EXPORTER.clear()


def tree(finished: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> str:
    """The spans as an indented tree, children under their parent, in start order (for docs and asserts)."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in finished if span.context is not None}
    for span in sorted(finished, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in by_parent.get(parent, []):
            assert span.context is not None
            attributes = span.attributes or {}
            details = [span.kind.name]
            for key in (
                "messaging.gcp_cloud_tasks.task.retry_count",
                "http.response.status_code",
                "messaging.gcp_cloud_tasks.client.retries",
                "messaging.batch.message_count",
            ):
                if key in attributes:
                    details.append(f"{key.rsplit('.', 1)[-1]}={attributes[key]}")
            if span.status.status_code.name == "ERROR":
                details.append("ERROR")
            trace_id = trace.format_trace_id(span.context.trace_id)[:8]
            lines.append(f"{'    ' * depth}{span.name}  [{', '.join(details)}]  trace={trace_id}")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
