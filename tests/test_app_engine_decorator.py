"""The task decorator aimed at an App Engine service: ``TaskApp(app_engine=AppEngineRouting(...))`` makes
App Engine tasks whose relative URI is the function's route, and its handler runs them from App Engine
deliveries (``X-AppEngine-*`` headers, no token), on the fake and on the emulator.

Sources: ``AppEngineHttpRequest`` and ``AppEngineRouting`` in the v2 reference (the task goes to
``host + relative_uri``, App Engine tasks carry no token), and "Reading App Engine task request headers"
in https://cloud.google.com/tasks/docs/creating-appengine-handlers (the ``X-AppEngine-*`` headers, set
internally and replaced when an outside request carries them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.transports.fake import FakeTransport

from .conftest import EmulatorHarness, FakeHarness, Harness
from .handler_support import ACCOUNT, AE_HEADERS, CountingStream, call_wsgi

ROUTING = kit.AppEngineRouting(service="worker", version="v2")


def ae_app(client: Any = None, **options: Any) -> tuple[kit.TaskApp[kit.AppEngineTask], list[Any]]:
    """An App Engine app with ``resize(image: int, size: str = "small")``, which records its calls."""
    app = kit.TaskApp(client, app_engine=ROUTING, **options)
    seen: list[Any] = []

    @app.task
    def resize(image: int, size: str = "small") -> None:
        context = kit.task_context()
        if size == "flaky" and context.retry_count == 0:
            raise ConnectionError("the first attempt fails")
        seen.append((image, size, context))

    return app, seen


# What the decorator builds.


def test_the_spec_is_an_app_engine_task_at_the_functions_route() -> None:
    app, _ = ae_app(deadline=timedelta(hours=2), retry=kit.RetryConfig(max_attempts=3))
    resize = app.tasks["resize"]
    spec = resize.options(delay=timedelta(minutes=5), dedup_key="resize-42", headers={"X-Trace": "1"}).spec(
        42, size="large"
    )
    assert isinstance(spec, kit.AppEngineTask)
    assert (spec.relative_uri, spec.routing) == ("/tasks/resize", ROUTING)
    assert spec.headers == {"Content-Type": "application/json", "X-Trace": "1"}
    assert spec.body == b'{"v":1,"task":"resize","args":{"image":42,"size":"large"}}'
    assert spec.delay == timedelta(minutes=5) and spec.deadline == timedelta(hours=2)
    assert spec.resolved_task_id == kit.task_id_for_key("resize-42")
    assert spec.retry == kit.RetryConfig(max_attempts=3)
    # The same call on an HTTP app makes the same content, addressed to a URL instead.
    http = kit.TaskApp(base_url="https://worker.example.com")
    twin = http.task(name="resize")(lambda image, size="small": None)
    http_spec = twin.options(delay=timedelta(minutes=5), dedup_key="resize-42").spec(42, size="large")
    assert isinstance(http_spec, kit.TaskSpec) and http_spec.url == "https://worker.example.com/tasks/resize"
    assert http_spec.body == spec.body


def test_a_default_routing_and_a_custom_route() -> None:
    app = kit.TaskApp(app_engine=kit.AppEngineRouting(), route_prefix="/_tasks")

    @app.task(route="/jobs/cleanup")
    def cleanup() -> None: ...

    @app.task
    def other() -> None: ...

    assert cleanup.spec().relative_uri == "/jobs/cleanup"
    assert other.spec().relative_uri == "/_tasks/other"
    assert other.spec().routing == kit.AppEngineRouting()
    assert (app.base_url, app.oidc) == (None, None)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"base_url": "https://w.example.com", "app_engine": ROUTING},
            "base_url and app_engine .* exclusive",
        ),
        ({}, "base_url None is missing: give base_url=.* or app_engine="),
        (
            {"app_engine": ROUTING, "oidc": kit.OidcToken(service_account_email=ACCOUNT)},
            "oidc .* cannot be given with app_engine: App Engine tasks carry no token",
        ),
        (
            {"app_engine": ROUTING, "oauth": kit.OAuthToken(service_account_email=ACCOUNT)},
            "oauth .* cannot be given with app_engine",
        ),
        ({"app_engine": "worker"}, "app_engine 'worker' must be an AppEngineRouting"),
        ({"app_engine": ROUTING, "queue": "bad queue"}, "queue"),
        ({"app_engine": ROUTING, "route_prefix": "tasks"}, "route_prefix"),
    ],
)
def test_the_app_refuses_a_bad_target(options: dict[str, Any], match: str) -> None:
    with pytest.raises(kit.ValidationError, match=match):
        kit.TaskApp(**options)


def test_bad_routing_and_bad_task_options_are_refused_before_any_io() -> None:
    with pytest.raises(kit.ValidationError, match=r"routing\.service 'bad_name'"):
        kit.AppEngineRouting(service="bad_name")
    app, _ = ae_app()
    resize = app.tasks["resize"]
    with pytest.raises(kit.ValidationError, match="X-AppEngine"):
        resize.options(headers={"X-AppEngine-QueueName": "forged"}).spec(1)
    # The App Engine deadline range (15 s to 24 h 15 s), not the HTTP one (at most 30 min).
    with pytest.raises(kit.ValidationError, match="24 hours 15 seconds"):
        resize.options(deadline=timedelta(hours=25)).spec(1)
    assert resize.options(deadline=timedelta(hours=24)).spec(1).deadline == timedelta(hours=24)
    with pytest.raises(kit.ValidationError):
        resize.spec("not an int")


def test_the_handler_needs_the_explicit_app_engine_trust() -> None:
    app, _ = ae_app()
    with pytest.raises(kit.UsageError, match="trust_app_engine_headers=True"):
        kit.TaskHandler(app)
    with pytest.raises(kit.UsageError, match="App Engine"):
        app.verifier()
    kit.TaskHandler(app, verify=False)  # local use, as for HTTP apps
    # Certificates check OIDC tokens, which App Engine tasks never carry: given alone, they are a mistake.
    with pytest.raises(kit.UsageError, match="carry no token"):
        kit.TaskHandler(app, trust_app_engine_headers=True, certs_url="http://127.0.0.1:9/certs")
    with pytest.raises(kit.UsageError, match="carry no token"):
        kit.TaskHandler(app, trust_app_engine_headers=True, certs={"kid": "pem"})


def test_the_handler_admits_only_app_engine_deliveries() -> None:
    app, seen = ae_app()
    handler = kit.TaskHandler(app, trust_app_engine_headers=True)
    envelope = b'{"v": 1, "task": "resize", "args": {"image": 7}}'

    def post(headers: dict[str, str]) -> int:
        stream, length = CountingStream(envelope), str(len(envelope))
        return call_wsgi(
            handler, path="/tasks/resize", headers=headers, stream=stream, content_length=length
        ).status

    # No X-AppEngine-QueueName and no verifier: nothing else proves where the request came from.
    assert post({}) == 401
    assert post({"Authorization": "Bearer anything"}) == 401
    assert not seen
    assert post(AE_HEADERS) == 200
    ((image, size, context),) = seen
    assert (image, size, context.queue, context.task_id, context.retry_count) == (
        7,
        "small",
        "emails",
        "t-7",
        2,
    )
    assert context.app_engine and context.token is None


# End to end: enqueue through the decorator, the backend delivers to the app's handler.


def test_enqueue_and_run_through_the_decorator(ae_backend: Harness) -> None:
    backend = ae_backend
    client = backend.client
    client.queue("ae-app").create(retry=kit.RetryConfig(min_backoff=timedelta(seconds=1 * backend.scale)))
    on_emulator = isinstance(backend, EmulatorHarness)
    # The emulator's test server hands /<project>/... to this test's handler, without the prefix; the
    # handler finds the function by the rest of the path.
    prefix = f"/{backend.project}/tasks" if isinstance(backend, EmulatorHarness) else "/tasks"
    app, seen = ae_app(client, queue="ae-app", route_prefix=prefix)
    resize = app.tasks["resize"]
    handler = kit.TaskHandler(app, trust_app_engine_headers=True)
    if isinstance(backend, EmulatorHarness):
        backend.emulator.router.app_engine_host = backend.server.url

        def serve(method: str, path: str, headers: dict[str, str], body: bytes) -> int:
            return handler.handle(method, path, headers, body).status

        backend.handle(serve)
    else:
        assert isinstance(backend, FakeHarness)
        backend.fake.deliver_to_wsgi(handler.wsgi)

    task = resize.options(task_id="r1").enqueue(42, size="flaky")
    assert task.app_engine and task.relative_uri == f"{prefix}/resize"
    assert (
        task.raw.app_engine_http_request.app_engine_routing.host == f"v2.worker.{client.project}.appspot.com"
    )
    (made,) = resize.enqueue_many([resize.options(task_id="r2").spec(43)])
    assert made.task is not None and made.task.relative_uri == f"{prefix}/resize"

    records = backend.wait_for_deliveries(3)
    assert sorted((image, size) for image, size, _ in seen) == [(42, "flaky"), (43, "small")]
    flaky = [r for r in records if r.task_id == "r1"]
    assert [r.status for r in flaky] == [500, 200]  # the function raised once, then ran
    first, second = flaky
    if on_emulator:
        assert second.routed_url == f"{backend.server.url}{prefix}/resize"
    assert first.url == f"http://v2.worker.{client.project}.appspot.com{prefix}/resize"
    headers = {k.lower(): v for k, v in second.headers.items()}
    assert headers["x-appengine-queuename"] == "ae-app" and headers["x-appengine-taskname"] == "r1"
    assert (
        headers["x-appengine-taskretrycount"] == "1" and headers["x-appengine-taskpreviousresponse"] == "500"
    )
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers and not any(k.startswith("x-cloudtasks-") for k in headers)
    # X-AppEngine-FailFast: the creating-appengine-handlers page lists it among the headers a request
    # "might" carry, but no Cloud Tasks v2 field asks for it and a task may not set X-AppEngine-* headers
    # (AppEngineHttpRequest.headers), so the engine never sends it (docs/fidelity.md).
    assert "x-appengine-failfast" not in headers
    context = next(c for image, _, c in seen if image == 42)
    assert (context.queue, context.task_id, context.retry_count, context.previous_response) == (
        "ae-app",
        "r1",
        1,
        500,
    )
    assert context.app_engine and context.token is None


async def test_aenqueue_with_an_async_client() -> None:
    fake = FakeTransport()
    fake.client().queue("default").create()
    app, seen = ae_app(fake.async_client())
    fake.deliver_to_asgi(kit.TaskHandler(app, trust_app_engine_headers=True).asgi)
    task = await app.tasks["resize"].aenqueue(5)
    assert task.relative_uri == "/tasks/resize"
    (record,) = fake.run_until_idle()
    assert record.status == 200 and record.url.endswith(".appspot.com/tasks/resize")
    assert [image for image, _, _ in seen] == [5]
