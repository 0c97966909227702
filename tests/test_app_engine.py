"""App Engine tasks: the builders' checks, the engine's (the same rules, over gRPC and REST), and what an
attempt sends, on the fake and the emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions as core
from google.cloud import tasks_v2

import cloudtasks_kit as kit
from cloudtasks_kit.transports import calls

from .conftest import EmulatorHarness, FakeHarness, Harness
from .handler_support import AE_HEADERS

AE = kit.AppEngineTask
ROUTING = kit.AppEngineRouting(service="worker", version="v2")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"relative_uri": "work"}, "must start with '/'"),
        ({"relative_uri": "/" + "a" * 2083}, "longer than 2083"),
        ({"relative_uri": "/a b"}, "without spaces"),
        ({"method": "GET", "json": {"a": 1}}, "only POST and PUT"),
        ({"method": "PATCH", "body": b"x"}, "only POST and PUT"),
        ({"method": "DELETE", "text": "x"}, "only POST and PUT"),
        ({"method": "TRACE"}, "method"),
        ({"headers": {"X-AppEngine-QueueName": "q"}}, "X-AppEngine"),
        ({"headers": {"x-google-foo": "1"}}, "X-Google"),
        ({"headers": {"Host": "evil"}}, "Host"),
        ({"deadline": timedelta(seconds=14)}, "24 hours 15 seconds"),
        ({"deadline": timedelta(hours=24, seconds=16)}, "24 hours 15 seconds"),
        ({"routing": {"service": "bad_name"}}, "routing.service"),
        ({"task_id": "a b"}, "task id"),
    ],
)
def test_the_builder_refuses_what_the_service_refuses(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(kit.ValidationError, match=match):
        AE(**fields)


def test_the_builder_accepts_the_edges() -> None:
    AE(relative_uri="/" + "a" * 2082, deadline=timedelta(hours=24, seconds=15))
    AE(relative_uri="/x?y=1", method="PUT", body=b"x", deadline=timedelta(seconds=15))
    AE(method="get", headers={"User-Agent": "mine", "X-CloudTasks-Whatever": "kept"})


def test_create_and_read_an_app_engine_task(ae_backend: Harness) -> None:
    queue = ae_backend.client.queue("ae")
    queue.create()
    task = queue.create_task(
        AE(
            relative_uri="/work?x=1",
            routing=ROUTING,
            json={"a": 1},
            task_id="t1",
            deadline=timedelta(hours=2),
        )
    )
    assert task.id == "t1"
    full = queue.get_task("t1", view="FULL").raw.app_engine_http_request
    assert full.relative_uri == "/work?x=1"
    assert full.app_engine_routing.host == f"v2.worker.{ae_backend.client.project}.appspot.com"
    assert full.body == b'{"a":1}'
    assert full.headers["Content-Type"] == "application/json"
    basic = queue.get_task("t1").raw.app_engine_http_request
    assert basic.body == b"" and basic.relative_uri == "/work?x=1"
    assert queue.get_task("t1").dispatch_deadline == timedelta(hours=2)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: setattr(r, "relative_uri", "work"), "relative_uri"),
        (lambda r: (setattr(r, "http_method", tasks_v2.HttpMethod.GET), setattr(r, "body", b"x")), "body"),
        (lambda r: setattr(r, "http_method", tasks_v2.HttpMethod.PATCH) or setattr(r, "body", b"x"), "body"),
    ],
)
def test_the_engine_refuses_a_bad_app_engine_task_over_every_transport(
    ae_backend: Harness, change: Any, match: str
) -> None:
    queue = ae_backend.client.queue("aebad")
    queue.create()
    request = tasks_v2.AppEngineHttpRequest(relative_uri="/ok")
    change(request)
    create = tasks_v2.CreateTaskRequest(
        parent=queue.name, task=tasks_v2.Task(app_engine_http_request=request)
    )
    with pytest.raises(core.GoogleAPICallError, match=match) as caught:
        ae_backend.client.transport.call(calls.CREATE_TASK, create)
    assert caught.value.code == 400


def test_the_engine_refuses_an_app_engine_deadline_out_of_range(ae_backend: Harness) -> None:
    queue = ae_backend.client.queue("aedl")
    queue.create()
    task = tasks_v2.Task(
        app_engine_http_request=tasks_v2.AppEngineHttpRequest(relative_uri="/ok"),
        dispatch_deadline=timedelta(hours=25),
    )
    with pytest.raises(core.GoogleAPICallError, match="24 hours 15 seconds"):
        ae_backend.client.transport.call(
            calls.CREATE_TASK, tasks_v2.CreateTaskRequest(parent=queue.name, task=task)
        )


def _deliver(
    backend: Harness, answers: list[int]
) -> tuple[str, list[tuple[str, str, dict[str, str], bytes]]]:
    """Where App Engine attempts go on this backend (the prefix of relative URIs), and what they carry."""
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        seen.append((method, path, dict(headers), body))
        return answers[min(len(seen), len(answers)) - 1]

    if isinstance(backend, FakeHarness):

        def target(attempt: Any) -> int:
            return handler(attempt.method, attempt.url, attempt.headers, attempt.body)

        backend.fake.deliver_to(target)
        return "", seen
    assert isinstance(backend, EmulatorHarness)
    backend.emulator.router.app_engine_host = backend.server.url
    backend.handle(handler)
    return f"/{backend.project}", seen


def test_an_app_engine_attempt_carries_the_app_engine_headers(ae_backend: Harness) -> None:
    backend = ae_backend
    queue = backend.client.queue("aedeliver")
    queue.create(retry=kit.RetryConfig(min_backoff=timedelta(seconds=1 * backend.scale)))
    prefix, seen = _deliver(backend, [500, 200])
    queue.create_task(
        AE(
            relative_uri=f"{prefix}/work?x=1",
            routing=ROUTING,
            json={"a": 1},
            task_id="ae1",
            headers={"A": "b"},
        )
    )
    backend.wait_for_deliveries(2)
    assert len(seen) == 2
    (method, where, first, body), (_, _, second, _) = seen
    assert method == "POST" and body == b'{"a":1}'
    if isinstance(backend, FakeHarness):
        assert where == f"http://v2.worker.{backend.client.project}.appspot.com/work?x=1"
    else:
        assert where == "/work?x=1"  # the local server strips the test's prefix
    lowered = [{k.lower(): v for k, v in h.items()} for h in (first, second)]
    one, two = lowered
    assert one["x-appengine-queuename"] == queue.name.rsplit("/", 1)[1]
    assert one["x-appengine-taskname"] == "ae1"
    assert one["x-appengine-taskretrycount"] == "0"
    assert one["x-appengine-taskexecutioncount"] == "0"
    assert float(one["x-appengine-tasketa"]) > 0
    assert "x-appengine-taskpreviousresponse" not in one
    assert one["a"] == "b"
    assert one["user-agent"].endswith("AppEngine-Google; (+http://code.google.com/appengine)")
    assert not any(k.startswith("x-cloudtasks-") for k in one)
    assert "authorization" not in one
    assert two["x-appengine-taskretrycount"] == "1"
    assert two["x-appengine-taskpreviousresponse"] == "500"
    assert two["x-appengine-taskretryreason"] == ""


def _context_app() -> tuple[kit.TaskApp, list[kit.TaskContext]]:
    from .handler_support import job_app

    app, _ = job_app()
    seen: list[kit.TaskContext] = []

    @app.task
    def ctx() -> None:
        seen.append(kit.task_context())

    return app, seen


def test_the_handler_takes_app_engine_deliveries_only_when_told() -> None:
    from .handler_support import CountingStream, call_wsgi

    envelope = b'{"v": 1, "task": "ctx", "args": {}}'
    app, seen = _context_app()
    # By default an App Engine request is like any other: no token, 401.
    refused = call_wsgi(
        kit.TaskHandler(app),
        path="/tasks/ctx",
        headers=AE_HEADERS,
        stream=CountingStream(envelope),
        content_length=str(len(envelope)),
    )
    assert refused.status == 401 and not seen
    handler = kit.TaskHandler(app, trust_app_engine_headers=True)
    answer = call_wsgi(
        handler,
        path="/tasks/ctx",
        headers=AE_HEADERS,
        stream=CountingStream(envelope),
        content_length=str(len(envelope)),
    )
    assert answer.status == 200
    (context,) = seen
    assert (context.queue, context.task_id, context.retry_count, context.execution_count) == (
        "emails",
        "t-7",
        2,
        1,
    )
    assert context.previous_response == 503 and context.app_engine and context.token is None
    # Without X-AppEngine-QueueName the request still needs its token.
    other = call_wsgi(
        handler,
        path="/tasks/ctx",
        headers={},
        stream=CountingStream(envelope),
        content_length=str(len(envelope)),
    )
    assert other.status == 401


def test_a_malformed_app_engine_header_is_a_400() -> None:
    from .handler_support import CountingStream, call_wsgi

    app, seen = _context_app()
    handler = kit.TaskHandler(app, trust_app_engine_headers=True)
    headers = {**AE_HEADERS, "X-AppEngine-TaskRetryCount": "two"}
    answer = call_wsgi(
        handler,
        path="/tasks/ctx",
        headers=headers,
        stream=CountingStream(b'{"v": 1, "task": "ctx", "args": {}}'),
    )
    assert answer.status == 400 and not seen


def test_the_queue_routing_override_wins_over_every_transport(ae_backend: Harness) -> None:
    client = ae_backend.client
    name = client.queue("aeover").name
    queue_pb = tasks_v2.Queue(
        name=name, app_engine_routing_override=tasks_v2.AppEngineRouting(service="other")
    )
    client.transport.call(
        calls.CREATE_QUEUE, tasks_v2.CreateQueueRequest(parent=client.parent, queue=queue_pb)
    )
    prefix, seen = _deliver(ae_backend, [200])
    task = client.queue("aeover").create_task(AE(relative_uri=f"{prefix}/w", routing=ROUTING, task_id="o1"))
    assert task.raw.app_engine_http_request.app_engine_routing.host == f"other.{client.project}.appspot.com"
    ae_backend.wait_for_deliveries(1)
    if isinstance(ae_backend, FakeHarness):
        assert seen[0][1] == f"http://other.{client.project}.appspot.com/w"
    else:
        assert seen[0][1] == "/w"


@pytest.mark.parametrize(("status", "held"), [(429, False), (503, True)])
def test_only_503_holds_an_app_engine_queue(fake: Any, status: int, held: bool) -> None:
    # "Unlike other types of task targets, a 429 (Too Many Requests) response from an app handler does
    # not cause traffic congestion control to throttle the queue" (AppEngineHttpRequest).
    from cloudtasks_kit.drivers.targets import TargetResponse

    queue = fake.client("p").queue("q")
    queue.create(retry=kit.RetryConfig(min_backoff=timedelta(seconds=0.1), max_backoff=timedelta(seconds=1)))
    answers = iter([TargetResponse(status, {"Retry-After": "30"}), TargetResponse(200, {})])
    fake.deliver_to(lambda attempt: next(answers))
    queue.create_task(AE(relative_uri="/w"))
    first, second = fake.run_until_idle()
    gap = second.time - first.time
    assert gap >= 30 if held else gap == pytest.approx(0.1)


def test_the_emulator_sends_app_engine_attempts_to_the_named_host() -> None:
    from cloudtasks_kit.drivers.realtime import DeliveryRefused
    from cloudtasks_kit.emulator.routes import RouteError, Router

    url = "http://v2.worker.p.appspot.com/work?x=1"
    assert Router(app_engine_host="http://127.0.0.1:8080").resolve(url) == "http://127.0.0.1:8080/work?x=1"
    with pytest.raises(DeliveryRefused, match="--app-engine-host"):
        Router().resolve(url)
    with pytest.raises(RouteError, match="app_engine_host"):
        Router(app_engine_host="not a url")


def test_the_command_line_option_and_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloudtasks_kit.cli import main

    assert main(["emulator", "--app-engine-host", "ftp://x"]) != 0
    assert "app_engine_host" in capsys.readouterr().err
    monkeypatch.setenv("CLOUDTASKS_EMULATOR_APP_ENGINE_HOST", "ftp://y")
    assert main(["emulator"]) != 0
    assert "ftp://y" in capsys.readouterr().err


def test_the_typed_task_reads_an_app_engine_task(fake: Any) -> None:
    queue = fake.client("p").queue("q")
    queue.create()
    queue.create_task(AE(relative_uri="/w?k=1", method="PUT", text="hi", task_id="t"))
    task = queue.get_task("t", view="FULL")
    assert task.app_engine and task.relative_uri == "/w?k=1" and task.url == ""
    assert (task.method, task.body, task.headers["Content-Type"]) == (
        "PUT",
        b"hi",
        "text/plain; charset=utf-8",
    )
    assert "relative_uri='/w?k=1'" in repr(task)
    (created,) = queue.create_tasks([AE(relative_uri="/bulk", task_id="b")])
    assert created.task is not None and created.task.relative_uri == "/bulk"


def test_a_queue_sets_its_routing_override_through_the_kit(ae_backend: Harness) -> None:
    queue = ae_backend.client.queue("aeq")
    created = queue.create(app_engine_routing=kit.AppEngineRouting(service="other"))
    assert created.app_engine_routing == kit.AppEngineRouting(service="other")
    assert (
        queue.ensure(app_engine_routing=kit.AppEngineRouting(service="other")).app_engine_routing is not None
    )
    updated = queue.ensure(app_engine_routing=kit.AppEngineRouting(service="third", version="v1"))
    assert updated.app_engine_routing == kit.AppEngineRouting(service="third", version="v1")
    task = queue.create_task(AE(relative_uri="/w", routing=ROUTING))
    host = task.raw.app_engine_http_request.app_engine_routing.host
    assert host == f"v1.third.{ae_backend.client.project}.appspot.com"
    with pytest.raises(kit.ValidationError, match=r"routing\.service"):
        kit.AppEngineRouting(service="no_underscores")
