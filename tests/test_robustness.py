"""An emulator you can leave running all day: bad input answers 4xx (never 500), one bad queue, task or
worker answer never stops delivery, and what is kept stays bounded."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from google.cloud import tasks_v2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cloudtasks_kit as kit
from cloudtasks_kit import _runner
from cloudtasks_kit.drivers.targets import TargetResponse
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.attempts import AttemptRequest
from cloudtasks_kit.transports.calls import RPCS
from cloudtasks_kit.transports.fake import FakeTransport

from .conftest import Harness, wait_until


def send(client: kit.CloudTasks, name: str, request: Any) -> Any:
    def op() -> _runner.Op[Any]:
        return (yield from _runner.call(RPCS[name], request))

    return _runner.run(client.transport, op())


def queue_request(backend: Harness, queue_id: str, **http_target: Any) -> tasks_v2.CreateQueueRequest:
    parent = backend.client.parent
    queue = tasks_v2.Queue(name=f"{parent}/queues/{queue_id}", http_target=http_target or None)
    return tasks_v2.CreateQueueRequest(parent=parent, queue=queue)


# Every enum and number is checked on the way in, on every path (the service answers INVALID_ARGUMENT).


@pytest.mark.parametrize(
    ("field", "http_target"),
    [
        ("http_target.http_method", {"http_method": 99}),
        ("http_target.uri_override.scheme", {"uri_override": {"host": "w.test", "scheme": 7}}),
        (
            "http_target.uri_override.uri_override_enforce_mode",
            {"uri_override": {"host": "w.test", "uri_override_enforce_mode": 9}},
        ),
    ],
)
def test_an_unknown_enum_in_a_queue_is_invalid_argument(
    backend: Harness, field: str, http_target: dict[str, Any]
) -> None:
    with pytest.raises(kit.InvalidArgument, match=field):
        send(backend.client, "create_queue", queue_request(backend, "bad-enum", **http_target))
    with pytest.raises(kit.NotFound):
        backend.client.queue("bad-enum").get()


@pytest.mark.parametrize("rate", [math.nan, math.inf, -1.0, 501.0])
def test_a_rate_out_of_range_is_refused_and_the_queue_stays_usable(backend: Harness, rate: float) -> None:
    queue = backend.client.queue("rated")
    queue.create()
    name = queue.name
    bad = tasks_v2.Queue(name=name, rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=rate))
    update = tasks_v2.UpdateQueueRequest(
        queue=bad, update_mask={"paths": ["rate_limits.max_dispatches_per_second"]}
    )
    with pytest.raises(kit.InvalidArgument, match="max_dispatches_per_second"):
        send(backend.client, "update_queue", update)
    assert queue.update(rate_limits=kit.RateLimits(max_dispatches_per_second=5)).rate_limits is not None
    assert queue.get().raw.rate_limits.max_dispatches_per_second == 5


def test_an_update_that_leaves_min_backoff_above_max_backoff_is_refused(backend: Harness) -> None:
    queue = backend.client.queue("backoffs")
    queue.create(retry=kit.RetryConfig(max_backoff=timedelta(seconds=10)))
    bad = tasks_v2.Queue(name=queue.name, retry_config=tasks_v2.RetryConfig(min_backoff={"seconds": 60}))
    update = tasks_v2.UpdateQueueRequest(queue=bad, update_mask={"paths": ["retry_config.min_backoff"]})
    with pytest.raises(kit.InvalidArgument, match="min_backoff"):
        send(backend.client, "update_queue", update)
    assert queue.get().raw.retry_config.max_backoff.total_seconds() == 10  # unchanged


def test_a_negative_page_size_is_invalid_argument(backend: Harness) -> None:
    # "page_size ... must be >= 0" (ListQueues/ListTasks in the v2 reference; 0 means the default).
    queue = backend.client.queue("paged")
    queue.create()
    with pytest.raises(kit.InvalidArgument, match="page_size"):
        send(backend.client, "list_tasks", tasks_v2.ListTasksRequest(parent=queue.name, page_size=-1))
    with pytest.raises(kit.InvalidArgument, match="page_size"):
        send(
            backend.client,
            "list_queues",
            tasks_v2.ListQueuesRequest(parent=backend.client.parent, page_size=-1),
        )


def test_the_kit_refuses_a_page_size_out_of_range_before_any_io(fake: FakeTransport) -> None:
    with pytest.raises(kit.ValidationError, match="page_size"):
        list(fake.client().list_queues(page_size=-1))


def test_an_unknown_view_is_invalid_argument(backend: Harness) -> None:
    queue = backend.client.queue("views")
    queue.create()
    task = queue.create_task("https://w.test/x")
    with pytest.raises(kit.InvalidArgument, match="response_view"):
        send(backend.client, "get_task", tasks_v2.GetTaskRequest(name=task.name, response_view=5))


# The REST face: bad bodies are 400, never 500.


def rest(emulator: Emulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{emulator.rest_url}{path}", timeout=10, **kwargs)


def test_rest_answers_400_for_json_nested_too_deep(emulator: Emulator, project: str) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = rest(emulator, "POST", f"/v2/projects/{project}/locations/us-central1/queues", data=body)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_rest_answers_400_for_a_negative_page_size(emulator: Emulator, project: str) -> None:
    parent = f"projects/{project}/locations/us-central1"
    assert (
        rest(emulator, "POST", f"/v2/{parent}/queues", json={"name": f"{parent}/queues/q"}).status_code == 200
    )
    response = rest(emulator, "GET", f"/v2/{parent}/queues/q/tasks", params={"pageSize": "-1"})
    assert response.status_code == 400, response.text


def test_rest_answers_400_for_an_unknown_http_method_enum(emulator: Emulator, project: str) -> None:
    parent = f"projects/{project}/locations/us-central1"
    queue = {"name": f"{parent}/queues/q", "httpTarget": {"httpMethod": 99}}
    response = rest(emulator, "POST", f"/v2/{parent}/queues", json=queue)
    assert response.status_code == 400, response.text
    assert "http_method" in response.json()["error"]["message"]


def test_a_buffer_task_with_a_non_utf8_header_is_400(emulator: Emulator, project: str) -> None:
    parent = f"projects/{project}/locations/us-central1"
    queue = {"name": f"{parent}/queues/q", "httpTarget": {"uriOverride": {"host": "worker.test"}}}
    assert rest(emulator, "POST", f"/v2/{parent}/queues", json=queue).status_code == 200
    response = rest(
        emulator, "POST", f"/v2/{parent}/queues/q/tasks:buffer", data=b"x", headers={"X-Bad": b"\xff\xfe"}
    )
    assert response.status_code == 400, response.text


# One bad worker answer, task or code path never stops delivery.


@pytest.mark.parametrize("retry_after", ["1e19", "9" * 400, "1000000000000", "soon", "-5"])
def test_junk_retry_after_from_a_worker_keeps_the_task_listed_and_dispatchable(
    delivery_backend: Harness, retry_after: str
) -> None:
    backend = delivery_backend
    answers = iter([(429, {"Retry-After": retry_after})])
    backend.handle(lambda method, path, headers, body: next(answers, 200))
    queue = backend.client.queue("junk")
    queue.create(retry=kit.RetryConfig(min_backoff=timedelta(seconds=0.1), max_backoff=timedelta(seconds=1)))
    queue.create_task(backend.url("/job"))
    (first,) = backend.wait_for_deliveries(1)
    assert first.status == 429
    (task,) = list(queue.list_tasks())  # still listed, its schedule time a valid timestamp
    assert task.schedule_time is not None and task.schedule_time.year < 9999


def test_a_task_whose_request_cannot_be_built_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudtasks_kit.engine import attempts

    original = attempts.build_headers

    def broken_for_one(task: Any, queue: Any, **kwargs: Any) -> dict[str, str]:
        if task.name.endswith("/tasks/poison"):
            raise KeyError(99)
        return original(task, queue, **kwargs)

    monkeypatch.setattr(attempts, "build_headers", broken_for_one)
    fake = FakeTransport()
    client = fake.client()
    poisoned, control = client.queue("poisoned"), client.queue("control")
    poisoned.create(retry=kit.RetryConfig(max_attempts=3))
    control.create()
    poisoned.create_task("https://w.test/p", task_id="poison")
    control.create_task("https://w.test/c", task_id="fine")
    fake.deliver_to(lambda attempt: 200)
    delivered = fake.run_until_idle()
    assert [a.task_id for a in delivered if a.succeeded] == ["fine"]
    poison = [a for a in delivered if a.task_id == "poison"]
    assert len(poison) == 3 and all(a.error == "INTERNAL: KeyError" for a in poison)  # retried by its rules
    assert list(poisoned.list_tasks()) == []  # then given up, like any failing task


def test_the_emulator_survives_an_attempt_that_fails_inside_it(
    emulator: Emulator, project: str, monkeypatch: pytest.MonkeyPatch, local_server: Any
) -> None:
    from cloudtasks_kit.drivers import realtime

    seen: list[str] = []
    local_server.handlers[project] = lambda method, path, headers, body: seen.append(path) or 200
    original = realtime.RealtimeDriver._request
    failures = iter([RuntimeError("boom")])

    async def flaky(self: Any, attempt: AttemptRequest) -> Any:
        error = next(failures, None) if attempt.url.endswith("/flaky") else None
        if error is not None:
            raise error
        return await original(self, attempt)

    monkeypatch.setattr(realtime.RealtimeDriver, "_request", flaky)
    client = emulator.client(project)
    queue = client.queue("supervised")
    queue.create(
        retry=kit.RetryConfig(min_backoff=timedelta(seconds=0.1), max_backoff=timedelta(seconds=0.2))
    )
    queue.create_task(f"{local_server.url}/{project}/flaky")
    queue.create_task(f"{local_server.url}/{project}/steady")
    wait_until(lambda: sorted(seen) == ["/flaky", "/steady"], timeout=10)
    client.close()
    local_server.handlers.pop(project, None)


# A property test: random queues, tasks and worker behaviours never stop a control queue.

_CODES = st.sampled_from([200, 204, 301, 304, 400, 404, 429, 500, 503])
_RETRY_AFTER = st.one_of(
    st.none(),
    st.sampled_from(["1e19", "9" * 400, "1000000000000", "-1", "Wed, 21 Oct 9999 07:28:00 GMT", "junk", "²"]),
    st.integers(min_value=0, max_value=10**6).map(str),
)
_BEHAVIOUR = st.one_of(
    st.tuples(st.just("answer"), _CODES, _RETRY_AFTER),
    st.tuples(st.just("reset"), st.just(0), st.none()),
    st.tuples(st.just("hang"), st.just(0), st.none()),
)
_RETRY = st.builds(
    kit.RetryConfig,
    max_attempts=st.sampled_from([-1, 1, 2, 5, 100]),
    min_backoff=st.sampled_from([timedelta(0), timedelta(seconds=0.1), timedelta(hours=1)]),
    max_backoff=st.sampled_from([timedelta(hours=1), timedelta(days=365 * 100)]),
    max_doublings=st.sampled_from([0, 16, 1023, 5000]),
)
_RATES = st.builds(
    kit.RateLimits,
    max_dispatches_per_second=st.sampled_from([0.001, 1.0, 500.0]),
    max_concurrent_dispatches=st.sampled_from([1, 1000, 5000]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    configs=st.lists(st.tuples(_RETRY, _RATES), min_size=1, max_size=4),
    behaviours=st.lists(_BEHAVIOUR, min_size=1, max_size=20),
    delays=st.lists(st.sampled_from([0, 1, 3600, 86400 * 29]), min_size=1, max_size=6),
)
def test_random_queues_and_worker_behaviours_never_stop_a_control_queue(
    configs: list[tuple[kit.RetryConfig, kit.RateLimits]],
    behaviours: list[tuple[str, int, str | None]],
    delays: list[int],
) -> None:
    fake = FakeTransport()
    client = fake.client()
    control = client.queue("control")
    control.create()
    for index, (retry, rates) in enumerate(configs):
        queue = client.queue(f"chaos-{index}")
        queue.create(retry=retry, rate_limits=rates)
        for n, delay in enumerate(delays):
            queue.create_task(f"https://chaos.test/{index}/{n}", delay=timedelta(seconds=delay))
    answers = iter(behaviours * 1000)

    def worker(attempt: AttemptRequest) -> TargetResponse:
        if attempt.url.startswith("https://control.test/"):
            return TargetResponse(200)
        kind, code, retry_after = next(answers, ("answer", 200, None))
        if kind == "reset":
            raise ConnectionResetError("reset by peer")
        if kind == "hang":
            raise TimeoutError("no answer within the deadline")
        return TargetResponse(code, {"Retry-After": retry_after} if retry_after is not None else {})

    fake.deliver_to(worker)
    start = fake.now()
    for n in range(5):
        control.create_task(f"https://control.test/{n}", delay=timedelta(seconds=10 * n))
    fake.advance(timedelta(seconds=60))
    on_time = [a for a in fake.attempts if a.url.startswith("https://control.test/")]
    assert sorted(a.url for a in on_time) == [f"https://control.test/{n}" for n in range(5)]
    for attempt in on_time:
        n = int(attempt.url.rsplit("/", 1)[1])
        assert attempt.time - start == pytest.approx(10 * n, abs=1.0)
    for queue in client.list_queues():  # every task still listable, every time representable
        for task in client.queue(queue.id).list_tasks():
            assert task.schedule_time is not None


# Bounded: tombstones expire, pages resume, history is a ring.


def test_tombstones_are_forgotten_after_their_window() -> None:
    limits = kit.Limits(task_tombstone=timedelta(seconds=10))
    fake = FakeTransport(limits=limits)
    queue = fake.client().queue("q")
    queue.create()
    for n in range(100):
        queue.delete_task(queue.create_task("https://w.test/", task_id=f"t{n}"))
    assert len(fake.engine.state.task_tombstones) == 100
    fake.clock.advance(11)
    queue.delete_task(queue.create_task("https://w.test/", task_id="late"))
    assert len(fake.engine.state.task_tombstones) == 1
    assert fake.engine.state.recently(fake.engine.state.task_tombstones, f"{queue.name}/tasks/late")


def test_list_tasks_pages_resume_correctly_across_deletions() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.pause()
    names = [queue.create_task("https://w.test/", task_id=f"t{n:05d}").id for n in range(5000)]
    for name in names[::3]:
        queue.delete_task(name)  # enough deletions to compact the creation-order index
    kept = [n for i, n in enumerate(names) if i % 3]
    assert [t.id for t in queue.list_tasks(page_size=7)] == kept


def test_a_removed_tasks_record_is_let_go() -> None:
    """The creation-order index and the due-time heap keep no more removed tasks than live ones: a
    record holds the task's whole protobuf, and a long-running emulator finishes millions of them."""
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.pause()
    record = fake.engine.state.queues[queue.name]
    later = datetime.now(timezone.utc) + timedelta(days=20)  # due long after they are deleted
    ids = [queue.create_task("https://w.test/", task_id=f"t{n}", at=later).id for n in range(500)]
    for n, task_id in enumerate(ids[:-1]):
        queue.delete_task(task_id)
        live = len(ids) - n - 1
        assert len(record.order) <= 2 * live
        assert len(record.heap) <= 2 * live + 64
    assert [t.id for t in queue.list_tasks(page_size=1)] == [ids[-1]]
    queue.delete_task(ids[-1])
    assert record.order == [] and len(record.heap) <= 64
    queue.resume()
    fake.deliver_to(lambda attempt: 200)
    for n in range(300):  # one at a time: each finishes before the next is made
        queue.create_task("https://w.test/", task_id=f"run{n}")
        fake.run_until_idle()
    assert record.tasks == {} and record.order == [] and len(record.heap) <= 64


def test_emulator_attempts_are_a_bounded_ring(local_server: Any, project: str) -> None:
    local_server.handlers[project] = lambda method, path, headers, body: 200
    with Emulator(history=3) as emulator:
        client = emulator.client(project)
        queue = client.queue("ring")
        queue.create()
        for n in range(5):
            queue.create_task(f"{local_server.url}/{project}/{n}")
        emulator.wait_for_attempts(5)
        assert len(emulator.attempts) == 3 and emulator.attempts.total == 5
        assert all(
            "Bearer" not in repr(a.headers) or "[redacted]" in repr(a.headers) for a in emulator.attempts
        )
        client.close()
    local_server.handlers.pop(project, None)


def test_a_broken_task_is_logged_once_and_the_memory_of_it_is_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cloudtasks_kit.engine import attempts, scheduler

    def broken(task: Any, queue: Any, **kwargs: Any) -> dict[str, str]:
        raise KeyError(99)

    monkeypatch.setattr(attempts, "build_headers", broken)

    def run(tasks: int) -> tuple[FakeTransport, int, list[str]]:
        fake = FakeTransport()
        queue = fake.client().queue("poisoned")
        queue.create(retry=kit.RetryConfig(max_attempts=2))
        for n in range(tasks):
            queue.create_task("https://w.test/p", task_id=f"poison{n}")
        fake.deliver_to(lambda attempt: 200)
        caplog.clear()
        with caplog.at_level("ERROR", logger="cloudtasks_kit.engine"):
            attempted = len(fake.run_until_idle())
        return (
            fake,
            attempted,
            [r.getMessage() for r in caplog.records if "could not start" in r.getMessage()],
        )

    fake, attempted, logged = run(5)
    assert attempted == 10  # two failed attempts each, as the retry config says
    assert len(logged) == 5  # once per task, not once per attempt
    monkeypatch.setattr(scheduler, "_MAX_FAILED_NAMES", 3)
    fake, _, _ = run(5)
    assert len(fake.engine.scheduler._failed_names) == 3  # an emulator left running forgets the oldest
