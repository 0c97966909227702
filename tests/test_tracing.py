"""OpenTelemetry: one trace from the span that enqueued a task to each attempt of its function, on the fake
and on the emulator over real HTTP; the client's own spans; nothing at all without OpenTelemetry."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import cloudtasks_kit as kit
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.errors import StatusCode as Code
from cloudtasks_kit.logfields import TRACE_FIELD, CloudLoggingFormatter
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.fake import FakeTransport

from .conftest import wait_until
from .otel_support import spans, tree

__all__ = ["spans"]  # the fixture, imported to be used here

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
BASE = "https://worker.test"
tracer = trace.get_tracer("tests")


def by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name.startswith(prefix)]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(fake: FakeTransport) -> kit.TaskApp:
    client = fake.client()
    client.queue("default").create()
    return kit.TaskApp(client, base_url=BASE, oidc=kit.OidcToken(service_account_email=ACCOUNT))


def flaky_task(app: kit.TaskApp, failures: int = 2) -> kit.TaskFunction[[int], None]:
    @app.task
    def charge(order: int) -> None:
        with tracer.start_as_current_span("charge the card"):
            if kit.task_context().retry_count < failures:
                raise RuntimeError("the card service is down")

    return charge


@pytest.mark.parametrize("face", ["wsgi", "asgi"])
def test_one_trace_from_the_enqueue_to_every_attempt(
    spans: InMemorySpanExporter, app: kit.TaskApp, fake: FakeTransport, face: str
) -> None:
    charge = flaky_task(app)
    with tracer.start_as_current_span("POST /checkout"):
        task = charge.enqueue(42)
    handler = kit.TaskHandler(app, certs=fake.certs())
    fake.deliver_to_wsgi(handler.wsgi) if face == "wsgi" else fake.deliver_to_asgi(handler.asgi)
    assert [a.status for a in fake.run_until_idle()] == [500, 500, 200]

    finished = spans.get_finished_spans()
    assert len({trace_id(span) for span in finished}) == 1, tree(finished)
    (request,) = by_name(finished, "POST /checkout")
    (send,) = by_name(finished, "create_task default")
    processes = by_name(finished, "process default")
    assert send.kind is SpanKind.PRODUCER and send.parent is not None
    assert send.parent.span_id == span_id(request)
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "gcp_cloud_tasks"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.operation.name"] == "create_task"
    assert send.attributes["messaging.destination.name"] == "default"
    assert send.attributes["messaging.message.id"] == task.id
    assert send.attributes["messaging.gcp_cloud_tasks.client.retries"] == 0
    assert send.status.status_code is StatusCode.UNSET

    assert len(processes) == 3
    for attempt, process in enumerate(processes):
        assert process.kind is SpanKind.CONSUMER
        assert process.parent is not None and process.parent.span_id == span_id(send)
        assert [link.context.span_id for link in process.links] == [span_id(send)]
        attributes = process.attributes or {}
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.message.id"] == task.id
        assert attributes["messaging.gcp_cloud_tasks.task.retry_count"] == attempt
        assert attributes["code.function.name"] == "charge"
    assert [p.status.status_code for p in processes] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    assert [p.attributes["http.response.status_code"] for p in processes if p.attributes] == [500, 500, 200]
    assert processes[0].events[0].name == "exception"
    assert processes[0].attributes is not None
    assert processes[0].attributes["error.type"] == "builtins.RuntimeError"
    # The task function's own spans are children of its process span.
    for inner in by_name(finished, "charge the card"):
        assert inner.parent is not None and inner.parent.span_id in {span_id(p) for p in processes}


def test_link_mode_starts_a_trace_per_attempt_linked_to_the_enqueue(
    spans: InMemorySpanExporter, app: kit.TaskApp, fake: FakeTransport
) -> None:
    charge = flaky_task(app, failures=1)
    with tracer.start_as_current_span("POST /checkout"):
        charge.enqueue(1)
    fake.deliver_to_wsgi(kit.TaskHandler(app, certs=fake.certs(), trace_mode="link").wsgi)
    fake.run_until_idle()
    finished = spans.get_finished_spans()
    (send,) = by_name(finished, "create_task")
    processes = by_name(finished, "process")
    assert len(processes) == 2
    for process in processes:
        assert process.parent is None and trace_id(process) != trace_id(send)
        assert [link.context.span_id for link in process.links] == [span_id(send)]
    with pytest.raises(kit.UsageError, match="trace_mode"):
        kit.TaskHandler(app, certs=fake.certs(), trace_mode="sibling")  # type: ignore[arg-type]


def test_the_callers_own_traceparent_is_kept_and_linked(
    spans: InMemorySpanExporter, fake: FakeTransport
) -> None:
    queue = fake.client().queue("q")
    queue.create()
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer.start_as_current_span("request"):
        queue.create_task("https://w.test/", headers={"traceparent": own})
        queue.create_task("https://w.test/")
    first, second = fake.tasks("q")
    assert first.headers["traceparent"] == own
    sends = by_name(spans.get_finished_spans(), "create_task")
    assert [link.context.trace_id for link in sends[0].links] == [0x0AF7651916CD43DD8448EB211C80319C]
    # The kit's own context is the send span's, through the configured propagator.
    carried = trace.get_current_span(propagate.extract(second.headers)).get_span_context()
    assert carried.span_id == span_id(sends[1])


def test_a_create_span_counts_retries_and_records_the_failure(
    spans: InMemorySpanExporter, fake: FakeTransport
) -> None:
    policy = RetryPolicy(attempts=3, sleep=lambda _: None, deadline=None)
    queue = fake.client(retry_policy=policy).queue("q")
    queue.create()
    fake.faults.fail("create_task", Code.UNAVAILABLE, times=2)
    queue.create_task("https://w.test/", task_id="second-time-lucky")
    fake.faults.fail("create_task", Code.UNAVAILABLE, times=3)
    with pytest.raises(kit.Unavailable):
        queue.create_task("https://w.test/", task_id="never")
    lucky, never = by_name(spans.get_finished_spans(), "create_task")
    assert lucky.attributes is not None and never.attributes is not None
    assert lucky.attributes["messaging.gcp_cloud_tasks.client.retries"] == 2
    assert lucky.status.status_code is StatusCode.UNSET
    assert never.attributes["messaging.gcp_cloud_tasks.client.retries"] == 2
    assert never.status.status_code is StatusCode.ERROR
    assert never.attributes["error.type"] == "cloudtasks_kit.errors.Unavailable"
    assert never.events[0].name == "exception"


def test_bulk_chunks_are_spans_of_the_callers_trace(spans: InMemorySpanExporter, fake: FakeTransport) -> None:
    queue = fake.client().queue("q")
    queue.create()
    specs: list[Any] = [kit.TaskSpec(url="https://w.test/", task_id=f"t{i}") for i in range(150)]
    specs.append({"url": "not a url"})  # refused before any I/O: no chunk
    with tracer.start_as_current_span("import") as parent:
        results = queue.create_tasks(specs, concurrency=2)
    assert sum(r.ok for r in results) == 150
    chunks = by_name(spans.get_finished_spans(), "batch_create_tasks q")
    assert sorted((c.attributes or {})["messaging.batch.message_count"] for c in chunks) == [50, 100]
    for chunk in chunks:
        assert chunk.parent is not None and chunk.parent.span_id == parent.get_span_context().span_id
        assert (chunk.attributes or {})["messaging.gcp_cloud_tasks.batch.failed_count"] == 0
    chunk_ids = {span_id(c) for c in chunks}
    for task in fake.tasks("q"):
        carried = trace.get_current_span(propagate.extract(task.headers)).get_span_context()
        assert carried.span_id in chunk_ids


async def test_async_creates_and_buffer_task_are_traced(
    spans: InMemorySpanExporter, fake: FakeTransport
) -> None:
    client = fake.async_client()
    queue = client.queue("q")
    await queue.create(http_target=kit.QueueHttpTarget(uri_override=kit.UriOverride(host="worker.test")))
    with tracer.start_as_current_span("request"):
        await queue.create_task("https://w.test/")
        await queue.buffer_task(json={"x": 1}, task_id="buffered")
    finished = spans.get_finished_spans()
    assert len({trace_id(s) for s in finished}) == 1
    (buffered,) = by_name(finished, "buffer_task q")
    assert (buffered.attributes or {})["messaging.message.id"] == "buffered"
    carried = trace.get_current_span(propagate.extract(fake.tasks("q")[1].headers)).get_span_context()
    assert carried.span_id == span_id(buffered)


def test_api_without_sdk_or_span_adds_nothing(fake: FakeTransport) -> None:
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://w.test/")
    queue.create_tasks([{"url": "https://w.test/"}])
    assert all("traceparent" not in task.headers for task in fake.tasks("q"))


def test_a_task_that_cannot_take_the_headers_is_created_without_them(
    spans: InMemorySpanExporter, fake: FakeTransport
) -> None:
    limits = kit.Limits(max_task_bytes=2000)
    queue = fake.client(limits=limits).queue("q")
    queue.create()
    with tracer.start_as_current_span("request"):
        queue.create_task("https://w.test/", body=b"x" * 1960)
    assert "traceparent" not in fake.tasks("q")[0].headers
    (send,) = by_name(spans.get_finished_spans(), "create_task")
    assert (send.attributes or {})["messaging.gcp_cloud_tasks.creation_context.dropped"] is True


def test_the_handler_logs_structured_fields(
    spans: InMemorySpanExporter, app: kit.TaskApp, fake: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    charge = flaky_task(app, failures=1)
    with tracer.start_as_current_span("request") as request:
        task = charge.enqueue(7)
    fake.deliver_to_wsgi(kit.TaskHandler(app, certs=fake.certs()).wsgi)
    with caplog.at_level(logging.INFO, logger="cloudtasks_kit.handler"):
        fake.run_until_idle()
    done = [r for r in caplog.records if r.levelno == logging.INFO]
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(r.queue, r.task, r.attempt, r.status) for r in done] == [  # type: ignore[attr-defined]
        ("default", task.id, 1, 500),
        ("default", task.id, 2, 200),
    ]
    expected = trace.format_trace_id(request.get_span_context().trace_id)
    assert all(r.trace_id == expected and r.latency_ms >= 0 for r in done)  # type: ignore[attr-defined]
    assert failed[0].function == "charge" and failed[0].trace_id == expected  # type: ignore[attr-defined]
    line = json.loads(CloudLoggingFormatter(project="my-project").format(done[-1]))
    assert line["severity"] == "INFO" and line["status"] == 200 and line["attempt"] == 2
    assert line[TRACE_FIELD] == f"projects/my-project/traces/{expected}"


# Over real HTTP: the emulator delivers to a worker served on 127.0.0.1.


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def worker() -> Iterator[tuple[str, Any]]:
    """A WSGI server on an ephemeral port; set ``holder[0]`` to the app it serves."""
    holder: list[Any] = [None]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return holder[0](environ, start_response)

    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", holder
    finally:
        server.shutdown()
        server.server_close()


def test_one_trace_through_the_emulator_over_http(
    spans: InMemorySpanExporter,
    emulator: Emulator,
    project: str,
    worker: tuple[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, holder = worker
    client = emulator.client(project)
    queue = client.queue("traced")
    queue.create(retry=kit.RetryConfig(min_backoff=0.1, max_backoff=0.1))
    app = kit.TaskApp(client, base_url=url, queue="traced", oidc=kit.OidcToken(service_account_email=ACCOUNT))
    charge = flaky_task(app, failures=1)
    holder[0] = kit.TaskHandler(app, certs_url=emulator.certs_url).wsgi
    # DEBUG: on a shared, busy emulator an attempt's INFO line may be folded into a summary line.
    with caplog.at_level(logging.DEBUG, logger="cloudtasks_kit.emulator"):
        with tracer.start_as_current_span("POST /checkout") as request:
            task = charge.enqueue(3)
        deadline = time.monotonic() + 15
        while len(by_name(spans.get_finished_spans(), "process traced")) < 2:
            assert time.monotonic() < deadline, tree(spans.get_finished_spans())
            time.sleep(0.02)

        def sent() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if r.name == "cloudtasks_kit.emulator" and getattr(r, "task", "") == task.id
            ]

        # The emulator logs an attempt once its answer is in, a moment after the worker's span ends; the
        # session's emulator has other tests' attempts, so its attempt count cannot say when.
        wait_until(lambda: len(sent()) >= 2, timeout=15)
    finished = [s for s in spans.get_finished_spans() if trace_id(s) == request.get_span_context().trace_id]
    (send,) = by_name(tuple(finished), "create_task traced")
    processes = by_name(tuple(finished), "process traced")
    assert [(p.attributes or {})["messaging.gcp_cloud_tasks.task.retry_count"] for p in processes] == [0, 1]
    assert all(p.parent is not None and p.parent.span_id == span_id(send) for p in processes)
    assert [p.status.status_code for p in processes] == [StatusCode.ERROR, StatusCode.UNSET]
    # The emulator's delivery log carries the same fields, the trace read from the task's headers.
    expected = trace.format_trace_id(request.get_span_context().trace_id)
    assert [(r.attempt, r.status, r.trace_id) for r in sent()][:2] == [  # type: ignore[attr-defined]
        (1, 500, expected),
        (2, 200, expected),
    ]


# Without OpenTelemetry.

WITHOUT_OTEL = textwrap.dedent(
    """
    import sys
    sys.modules["opentelemetry"] = None  # as if opentelemetry were not installed
    import cloudtasks_kit as kit
    from cloudtasks_kit.transports.fake import FakeTransport

    fake = FakeTransport()
    client = fake.client()
    client.queue("default").create(
        http_target=kit.QueueHttpTarget(uri_override=kit.UriOverride(host="worker.test"))
    )
    app = kit.TaskApp(client, base_url="https://worker.test")
    ran = []

    @app.task
    def job(n: int) -> None:
        ran.append(n)

    job.enqueue(1)
    job.enqueue_many([job.spec(2), job.spec(3)])
    client.queue("default").buffer_task(json={"x": 1})
    fake.deliver_to_wsgi(kit.TaskHandler(app, verify=False).wsgi)
    statuses = [a.status for a in fake.run_until_idle()]
    assert sorted(ran) == [1, 2, 3], ran
    assert all("traceparent" not in t.headers for t in fake.tasks("default"))
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m] is not None))
    """
)


def test_without_opentelemetry_tasks_are_created_and_handled_as_before() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_OTEL], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_the_kit_imports_no_opentelemetry_until_a_create() -> None:
    # google.api_core imports the bare ``opentelemetry`` package to look for instrumentation; the kit's
    # own OpenTelemetry code, and the API's trace module, wait for a create.
    code = textwrap.dedent(
        """
        import sys
        import cloudtasks_kit as kit
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        from cloudtasks_kit import CloudTasks, TaskApp, TaskHandler
        from cloudtasks_kit.transports.fake import FakeTransport
        queue = FakeTransport().client().queue("q")
        queue.create()
        print("cloudtasks_kit._otel" in sys.modules, "opentelemetry.trace" in sys.modules)
        queue.create_task("https://w.test/")
        print("cloudtasks_kit._otel" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["[]", "False False", "True"]
