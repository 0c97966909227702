"""The task decorator and the receiving side, end to end on the fake and piece by piece."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import cloudtasks_kit as kit
from cloudtasks_kit.engine.tokens import TokenSigner
from cloudtasks_kit.handler import HandlerResponse
from cloudtasks_kit.transports.fake import FakeTransport

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
BASE = "https://worker.test"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Order(BaseModel):
    sku: str
    quantity: int
    placed: datetime.datetime


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(fake: FakeTransport) -> kit.TaskApp:
    client = fake.client()
    client.queue("default").create()
    client.queue("other").create()
    return kit.TaskApp(client, base_url=BASE, oidc=kit.OidcToken(service_account_email=ACCOUNT))


def handler_for(app: kit.TaskApp, fake: FakeTransport) -> kit.TaskHandler:
    return kit.TaskHandler(app, certs=fake.certs())


# Round trips.

VALUES = [
    ("when", datetime.datetime(2026, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)),
    ("day", datetime.date(2026, 5, 1)),
    ("amount", decimal.Decimal("12.3400")),
    ("ident", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("color", Color.BLUE),
    ("point", Point(1, 2.5)),
    (
        "order",
        Order(sku="a-1", quantity=3, placed=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)),
    ),
    ("items", [1, 2, 3]),
    ("mapping", {"a": [Point(0, 0)]}),
    ("maybe", None),
    ("period", datetime.timedelta(minutes=90)),
]


@pytest.mark.parametrize(("name", "value"), VALUES, ids=[n for n, _ in VALUES])
def test_each_supported_argument_type_round_trips(
    app: kit.TaskApp, fake: FakeTransport, name: str, value: Any
) -> None:
    received: list[Any] = []
    annotation = type(value) if value is not None else type(None)
    if name == "items":
        annotation = list[int]
    if name == "mapping":
        annotation = dict[str, list[Point]]

    def capture(arg: Any) -> None:
        received.append(arg)

    capture.__annotations__ = {"arg": annotation, "return": None}
    task = app.task(name=f"capture_{name}")(capture)
    task.enqueue(value)
    fake.deliver_to_wsgi(handler_for(app, fake).wsgi)
    assert [d.status for d in fake.run_until_idle()] == [200]
    assert received == [value]
    assert type(received[0]) is type(value)


def test_the_decorated_function_is_still_a_function(app: kit.TaskApp) -> None:
    @app.task
    def add(a: int, b: int = 2) -> int:
        """Adds."""
        return a + b

    assert add(1) == 3
    assert add.__doc__ == "Adds."
    assert add.route == "/tasks/add"
    assert app.tasks["add"] is add


def test_enqueue_builds_the_task(app: kit.TaskApp, fake: FakeTransport) -> None:
    @app.task(queue="other", deadline=datetime.timedelta(minutes=2), retry=kit.RetryConfig(max_attempts=4))
    def ship(order_id: int, express: bool = False) -> None: ...

    task = ship.enqueue(7)
    assert task.queue == "other" and task.url == BASE + "/tasks/ship"
    (stored,) = fake.tasks("other")
    assert json.loads(stored.body or b"") == {"v": 1, "task": "ship", "args": {"order_id": 7}}
    assert stored.headers["Content-Type"] == "application/json"
    assert stored.oidc == kit.OidcToken(service_account_email=ACCOUNT, audience=BASE)
    assert stored.dispatch_deadline == datetime.timedelta(minutes=2)
    assert stored.retry_config is not None and stored.retry_config.max_attempts == 4


def test_per_call_options(app: kit.TaskApp, fake: FakeTransport) -> None:
    @app.task
    def remind(user: int) -> None: ...

    task = remind.options(delay=datetime.timedelta(hours=1), task_id="r-1", queue="other").enqueue(5)
    assert (task.id, task.queue) == ("r-1", "other")
    assert task.schedule_time is not None
    assert task.schedule_time.timestamp() == pytest.approx(fake.now() + 3600)
    keyed = remind.options(dedup_key="k").enqueue(6)
    assert keyed.id == kit.task_id_for_key("k")


def test_dedup_key_function_makes_enqueue_idempotent(app: kit.TaskApp, fake: FakeTransport) -> None:
    @app.task(dedup_key=lambda order_id, **_: f"charge-{order_id}")
    def charge(order_id: int, cents: int) -> None: ...

    first = charge.enqueue(1, cents=100)
    assert first.id == kit.task_id_for_key("charge-1")
    with pytest.raises(kit.AlreadyExists):
        charge.enqueue(1, cents=100)
    charge.enqueue(2, cents=100)
    assert len(fake.tasks("default")) == 2


def test_enqueue_many(app: kit.TaskApp, fake: FakeTransport) -> None:
    @app.task
    def welcome(to: str) -> None: ...

    results = welcome.enqueue_many(welcome.spec(f"user{i}@example.com") for i in range(150))
    assert len(results) == 150 and all(r.ok for r in results)
    assert len(fake.tasks("default")) == 150


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("x",), {}, "add argument 'a' 'x' is not valid"),
        ((), {}, "missing a required argument: 'a'"),
        ((1, 2, 3), {}, "do not fit its signature"),
        ((1,), {"c": 3}, "do not fit its signature"),
    ],
)
def test_wrong_arguments_fail_in_the_caller(
    app: kit.TaskApp, fake: FakeTransport, args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    @app.task
    def add(a: int, b: int = 2) -> int:
        return a + b

    with pytest.raises(kit.ValidationError) as caught:
        add.enqueue(*args, **kwargs)
    assert fragment in str(caught.value)
    assert fake.tasks("default") == []


def test_oversized_arguments_fail_in_the_caller(app: kit.TaskApp) -> None:
    @app.task
    def store(blob: str) -> None: ...

    with pytest.raises(kit.ValidationError, match="exceed the task size limit"):
        store.enqueue("x" * (1024 * 1024 + 10))


class Opaque:
    pass


def test_unserialisable_argument_types_are_refused_at_decoration(app: kit.TaskApp) -> None:
    def takes(thing: Opaque) -> None: ...

    with pytest.raises(kit.UsageError, match="cannot turn into JSON"):
        app.task(takes)


def test_unresolvable_annotations_are_refused_at_decoration(app: kit.TaskApp) -> None:
    class Local:
        pass

    def takes(thing: Local) -> None: ...

    with pytest.raises(kit.UsageError, match="cannot be resolved"):
        app.task(takes)


def test_duplicate_names_and_bad_names_are_refused(app: kit.TaskApp) -> None:
    @app.task
    def job() -> None: ...

    with pytest.raises(kit.UsageError, match="already registered"):
        app.task(name="job")(lambda: None)
    with pytest.raises(kit.ValidationError, match="task name"):
        app.task(name="bad name")(lambda: None)


def test_enqueue_without_a_client_says_how_to_bind_one() -> None:
    unbound = kit.TaskApp(base_url=BASE)

    @unbound.task
    def job() -> None: ...

    with pytest.raises(kit.UsageError, match="bind"):
        job.enqueue()


# Handling.


def test_end_to_end_with_retries_context_and_give_up(app: kit.TaskApp, fake: FakeTransport) -> None:
    attempts: list[kit.TaskContext] = []

    @app.task
    def flaky(n: int) -> None:
        context = kit.task_context()
        attempts.append(context)
        if context.retry_count < 2:
            raise RuntimeError("not yet")

    @app.task
    def hopeless() -> None:
        raise kit.GiveUp("never going to work")

    @app.task
    def later() -> None:
        if kit.task_context().retry_count == 0:
            raise kit.RetryLater(after=datetime.timedelta(seconds=120))

    flaky.enqueue(1)
    hopeless.enqueue()
    later.enqueue()
    fake.deliver_to_wsgi(handler_for(app, fake).wsgi)
    deliveries = fake.run_until_idle()
    by_url: dict[str, list[Any]] = {}
    for delivery in deliveries:
        by_url.setdefault(delivery.url.rsplit("/", 1)[1], []).append(delivery)
    assert [d.status for d in by_url["flaky"]] == [500, 500, 200]
    assert [d.status for d in by_url["hopeless"]] == [200]
    assert json.loads(by_url["hopeless"][0].response_body) == {"gave_up": "never going to work"}
    assert [d.status for d in by_url["later"]] == [503, 200]
    assert by_url["later"][1].time - by_url["later"][0].time >= 120
    assert [c.retry_count for c in attempts] == [0, 1, 2]
    assert attempts[2].previous_response == 500
    assert attempts[0].queue == "default" and attempts[0].token is not None
    assert attempts[0].token.email == ACCOUNT
    assert fake.tasks("default") == []


def test_async_functions_run_under_wsgi_and_asgi(app: kit.TaskApp, fake: FakeTransport) -> None:
    done: list[str] = []

    @app.task
    async def fetch(url: str) -> None:
        await asyncio.sleep(0)
        done.append(url)

    @app.task
    def plain(x: int) -> None:
        done.append(str(x))

    handler = handler_for(app, fake)
    fetch.enqueue("a")
    plain.enqueue(1)
    fake.deliver_to_wsgi(handler.wsgi)
    fake.run_until_idle()
    fetch.enqueue("b")
    plain.enqueue(2)
    fake.deliver_to_asgi(handler.asgi)
    fake.run_until_idle()
    assert sorted(done) == ["1", "2", "a", "b"]


def request(
    handler: kit.TaskHandler, body: bytes, path: str = "/tasks/job", **headers: str
) -> HandlerResponse:
    return handler.handle("POST", path, headers, body)


def signed(signer: TokenSigner, audience: str = BASE) -> str:
    return "Bearer " + signer.oidc_token(service_account_email=ACCOUNT, audience=audience)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def job_app(app: kit.TaskApp) -> tuple[kit.TaskApp, list[int]]:
    calls: list[int] = []

    @app.task
    def job(n: int) -> None:
        calls.append(n)

    return app, calls


ENVELOPE = b'{"v": 1, "task": "job", "args": {"n": 1}}'


@pytest.mark.parametrize(
    ("body", "path", "method", "auth", "status"),
    [
        (ENVELOPE, "/tasks/job", "POST", "good", 200),
        (ENVELOPE, "/tasks/job", "POST", None, 401),
        (ENVELOPE, "/tasks/job", "POST", "wrong-audience", 401),
        (ENVELOPE, "/tasks/job", "POST", "Basic abc", 401),
        (ENVELOPE, "/tasks/nope", "POST", "good", 404),
        (ENVELOPE, "/tasks/job", "GET", "good", 405),
        (b"not json", "/tasks/job", "POST", "good", 400),
        (b'{"v": 2, "task": "job", "args": {}}', "/tasks/job", "POST", "good", 400),
        (b'{"v": 1, "task": "other", "args": {"n": 1}}', "/tasks/job", "POST", "good", 400),
        (b'{"v": 1, "task": "job", "args": {"n": "x"}}', "/tasks/job", "POST", "good", 422),
        (b'{"v": 1, "task": "job", "args": {"n": 1, "extra": 2}}', "/tasks/job", "POST", "good", 422),
        (b'{"v": 1, "task": "job", "args": {}}', "/tasks/job", "POST", "good", 422),
    ],
)
def test_every_outcome(
    job_app: tuple[kit.TaskApp, list[int]],
    signer: TokenSigner,
    body: bytes,
    path: str,
    method: str,
    auth: str | None,
    status: int,
) -> None:
    app, calls = job_app
    handler = kit.TaskHandler(app, certs=signer.certs())
    headers = {"X-CloudTasks-TaskName": "t1", "X-CloudTasks-QueueName": "default"}
    if auth == "good":
        headers["Authorization"] = signed(signer)
    elif auth == "wrong-audience":
        headers["Authorization"] = signed(signer, "https://elsewhere.test")
    elif auth is not None:
        headers["Authorization"] = auth
    response = handler.handle(method, path, headers, body)
    assert response.status == status, response.body
    assert calls == ([1] if status == 200 else [])


def test_handler_refuses_to_start_without_a_way_to_verify() -> None:
    app = kit.TaskApp(base_url=BASE)
    with pytest.raises(kit.UsageError, match="nothing to verify"):
        kit.TaskHandler(app)
    assert kit.TaskHandler(app, verify=False).verifier is None


def test_unverified_mode_trusts_headers_for_local_use(job_app: tuple[kit.TaskApp, list[int]]) -> None:
    app, calls = job_app
    handler = kit.TaskHandler(app, verify=False)
    assert request(handler, ENVELOPE, **{"X-CloudTasks-TaskRetryCount": "3"}).status == 200
    assert calls == [1]


def test_task_context_outside_a_task_is_a_usage_error() -> None:
    with pytest.raises(kit.UsageError):
        kit.task_context()


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda v, t, a: json.dumps({"v": v, "task": t, "args": a}).encode(),
            st.one_of(st.just(1), st.integers(), st.none()),
            st.one_of(st.just("job"), st.text(max_size=10)),
            st.one_of(
                st.dictionaries(
                    st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3
                ),
                st.integers(),
            ),
        ),
    ),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-CloudTasks-TaskRetryCount",
                "X-CloudTasks-TaskETA",
                "X-CloudTasks-TaskPreviousResponse",
                "Authorization",
                "X-Other",
            ]
        ),
        HEADER_TEXT,
    ),
    path=st.one_of(st.just("/tasks/job"), st.text(max_size=20)),
)
def test_no_input_makes_the_kit_answer_5xx_or_run_unverified_code(
    job_app: tuple[kit.TaskApp, list[int]],
    signer: TokenSigner,
    body: bytes,
    headers: dict[str, str],
    path: str,
) -> None:
    app, calls = job_app
    calls.clear()
    handler = kit.TaskHandler(app, certs=signer.certs())
    response = handler.handle("POST", path, headers, body)
    assert response.status < 500
    assert calls == []  # no valid token, so the function never runs
    headers = {**headers, "Authorization": signed(signer)}
    response = handler.handle("POST", path, headers, body)
    assert response.status < 500
    assert (response.status == 200) == (calls != [])
    if calls:
        assert all(isinstance(n, int) for n in calls)


def test_async_handle_matches_sync(job_app: tuple[kit.TaskApp, list[int]], signer: TokenSigner) -> None:
    app, calls = job_app
    handler = kit.TaskHandler(app, certs=signer.certs())
    headers = {"Authorization": signed(signer)}
    sync = handler.handle("POST", "/tasks/job", headers, ENVELOPE)
    async_ = asyncio.run(handler.ahandle("POST", "/tasks/job", headers, ENVELOPE))
    assert (sync.status, async_.status) == (200, 200)
    assert calls == [1, 1]


async def test_aenqueue_with_an_async_client(fake: FakeTransport) -> None:
    client = fake.async_client()
    await client.queue("default").create()
    app = kit.TaskApp(client, base_url=BASE)

    @app.task
    def job(n: int) -> None: ...

    task = await job.aenqueue(3)
    assert task.url == BASE + "/tasks/job"
    with pytest.raises(kit.UsageError, match="needs a CloudTasks client"):
        job.enqueue(4)


def test_a_custom_route_is_served_and_used_in_the_url(app: kit.TaskApp, fake: FakeTransport) -> None:
    done: list[int] = []

    @app.task(route="/hooks/v2/charge")
    def charge(order: int) -> None:
        done.append(order)

    assert charge.enqueue(9).url == BASE + "/hooks/v2/charge"
    with pytest.raises(kit.UsageError, match="already served"):
        app.task(name="other", route="/hooks/v2/charge")(lambda: None)
    with pytest.raises(kit.ValidationError, match="route"):
        app.task(name="bad", route="hooks?x=1")(lambda: None)
    fake.deliver_to_wsgi(handler_for(app, fake).wsgi)
    assert [d.status for d in fake.run_until_idle()] == [200]
    assert done == [9]


@pytest.mark.parametrize("face", ["wsgi", "asgi"])
def test_a_task_that_enqueues_its_follow_up_runs_to_the_end(
    app: kit.TaskApp, fake: FakeTransport, face: str
) -> None:
    steps: list[int] = []

    @app.task
    async def step(n: int) -> None:
        steps.append(n)
        if n < 5:
            await step.aenqueue(n + 1)  # a sync client: runs in a thread, from the ASGI loop's thread

    step.enqueue(1)
    handler = handler_for(app, fake)
    if face == "wsgi":
        fake.deliver_to_wsgi(handler.wsgi)
    else:
        fake.deliver_to_asgi(handler.asgi)
    assert [d.status for d in fake.run_until_idle()] == [200] * 5
    assert steps == [1, 2, 3, 4, 5]
