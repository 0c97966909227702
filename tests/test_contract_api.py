"""The contract suite, API half: written once against the facade, run on the fake and the emulator.

Every row of the service-rules error table, dedup and tombstones, views, pagination, pause, resume,
purge and RunTask. Where the kit's builder would refuse a request before sending it, the test sends the
raw request through the transport, so the backend's own answer is what is checked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.cloud import tasks_v2

import cloudtasks_kit as kit
from cloudtasks_kit import _runner
from cloudtasks_kit.names import QueueName
from cloudtasks_kit.transports.calls import RPCS

from .conftest import Harness


def send(client: kit.CloudTasks, method: str, request: Any) -> Any:
    """Send a raw request through the facade's driver (error mapping included), skipping the builders."""

    def op() -> _runner.Op[Any]:
        return (yield from _runner.call(RPCS[method], request))

    return _runner.run(client.transport, op())


def raw_task(queue: kit.QueueHandle, **http_request: Any) -> Any:
    return tasks_v2.CreateTaskRequest(parent=queue.name, task=tasks_v2.Task(http_request=http_request))


@pytest.fixture
def queue(backend: Harness) -> kit.QueueHandle:
    handle = backend.client.queue("work")
    handle.create()
    return handle


# The error table, row by row.


def test_create_queue_that_exists_is_already_exists(backend: Harness, queue: kit.QueueHandle) -> None:
    with pytest.raises(kit.AlreadyExists):
        queue.create()


def test_create_queue_deleted_recently_is_failed_precondition(
    backend: Harness, queue: kit.QueueHandle
) -> None:
    queue.delete()
    with pytest.raises(kit.FailedPrecondition):
        queue.create()


@pytest.mark.parametrize("action", ["get", "pause", "resume", "purge", "delete"])
def test_queue_calls_on_a_missing_queue_are_not_found(backend: Harness, action: str) -> None:
    with pytest.raises(kit.NotFound):
        getattr(backend.client.queue("missing"), action)()


def test_create_task_in_a_missing_queue_is_not_found(backend: Harness) -> None:
    with pytest.raises(kit.NotFound):
        backend.client.queue("missing").create_task(backend.url("/x"))


def test_duplicate_task_id_is_already_exists(backend: Harness, queue: kit.QueueHandle) -> None:
    queue.create_task(backend.url("/x"), task_id="once")
    with pytest.raises(kit.AlreadyExists) as caught:
        queue.create_task(backend.url("/x"), task_id="once")
    assert caught.value.code is kit.StatusCode.ALREADY_EXISTS
    assert caught.value.__cause__ is not None


def test_recently_deleted_task_id_is_already_exists(backend: Harness, queue: kit.QueueHandle) -> None:
    queue.create_task(backend.url("/x"), task_id="gone")
    queue.delete_task("gone")
    with pytest.raises(kit.AlreadyExists, match="existed too recently"):
        queue.create_task(backend.url("/x"), task_id="gone")


def test_dedup_key_creates_once(backend: Harness, queue: kit.QueueHandle) -> None:
    first = queue.create_task(backend.url("/x"), json={"n": 1}, dedup_key="order-42")
    assert first.id == kit.task_id_for_key("order-42")
    with pytest.raises(kit.AlreadyExists):
        queue.create_task(backend.url("/x"), json={"n": 2}, dedup_key="order-42")
    assert [t.id for t in queue.list_tasks()] == [first.id]


@pytest.mark.parametrize(
    ("case", "http_request", "deadline"),
    [
        ("bad url", {"url": "ftp://example.com/x"}, None),
        ("body with GET", {"url": "https://example.com/x", "http_method": "GET", "body": b"x"}, None),
        ("body with DELETE", {"url": "https://example.com/x", "http_method": "DELETE", "body": b"x"}, None),
        ("deadline too short", {"url": "https://example.com/x"}, timedelta(seconds=5)),
        ("deadline too long", {"url": "https://example.com/x"}, timedelta(hours=1)),
    ],
)
def test_invalid_task_is_invalid_argument_from_the_backend(
    backend: Harness, queue: kit.QueueHandle, case: str, http_request: dict[str, Any], deadline: Any
) -> None:
    request = raw_task(queue, **http_request)
    if deadline is not None:
        request.task.dispatch_deadline = deadline
    with pytest.raises(kit.InvalidArgument):
        send(backend.client, "create_task", request)


def test_bad_task_id_is_invalid_argument_from_the_backend(backend: Harness, queue: kit.QueueHandle) -> None:
    request = raw_task(queue, url="https://example.com/x")
    request.task.name = queue.name + "/tasks/bad id"
    with pytest.raises(kit.InvalidArgument, match="task id"):
        send(backend.client, "create_task", request)


def test_task_named_in_another_queue_is_invalid_argument(backend: Harness, queue: kit.QueueHandle) -> None:
    request = raw_task(queue, url="https://example.com/x")
    request.task.name = queue.name.replace("/work", "/other") + "/tasks/t1"
    with pytest.raises(kit.InvalidArgument):
        send(backend.client, "create_task", request)


@pytest.mark.parametrize("action", ["get_task", "delete_task", "run_task"])
def test_unknown_task_is_not_found(backend: Harness, queue: kit.QueueHandle, action: str) -> None:
    with pytest.raises(kit.NotFound, match="not found"):
        getattr(queue, action)("never-created")


@pytest.mark.parametrize("action", ["get_task", "delete_task", "run_task"])
def test_finished_task_is_not_found_and_said_to_have_existed(
    backend: Harness, queue: kit.QueueHandle, action: str
) -> None:
    backend.handle(lambda *_: 200)
    queue.create_task(backend.url("/ok"), task_id="done")
    backend.run_until_idle()
    with pytest.raises(kit.NotFound, match="existed recently"):
        getattr(queue, action)("done")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_limits", {"max_dispatches_per_second": 501}),
        ("rate_limits", {"max_concurrent_dispatches": 5001}),
        ("retry_config", {"max_attempts": -2}),
        ("retry_config", {"min_backoff": {"seconds": -1}}),
        ("retry_config", {"max_doublings": -1}),
        ("retry_config", {"min_backoff": {"seconds": 10}, "max_backoff": {"seconds": 5}}),
    ],
)
def test_queue_config_out_of_range_is_invalid_argument(
    backend: Harness, field: str, value: dict[str, Any]
) -> None:
    name = QueueName(backend.client.project, backend.client.location, backend.queue_id("ranged")).path
    queue = tasks_v2.Queue(name=name, **{field: value})
    with pytest.raises(kit.InvalidArgument):
        send(
            backend.client,
            "create_queue",
            tasks_v2.CreateQueueRequest(parent=backend.client.parent, queue=queue),
        )


# Views, pagination, queue state.


def test_basic_view_omits_the_body_and_full_view_has_it(backend: Harness, queue: kit.QueueHandle) -> None:
    created = queue.create_task(backend.url("/x"), json={"hello": "world"}, task_id="viewed")
    assert created.view == "BASIC"
    assert created.body is None
    assert queue.get_task("viewed").body is None
    full = queue.get_task("viewed", view="FULL")
    assert full.json() == {"hello": "world"}
    assert full.headers["Content-Type"] == "application/json"
    assert [t.body for t in queue.list_tasks(view="FULL")] == [b'{"hello":"world"}']


def test_listing_walks_every_page(backend: Harness, queue: kit.QueueHandle) -> None:
    ids = {queue.create_task(backend.url("/x"), task_id=f"t{i:02}").id for i in range(25)}
    listed = [t.id for t in queue.list_tasks(page_size=10)]
    assert len(listed) == 25
    assert set(listed) == ids


def test_list_queues_walks_every_page(backend: Harness) -> None:
    for i in range(5):
        backend.client.queue(f"q{i}").create()
    mine = [q.id for q in backend.client.list_queues(page_size=2) if q.id.startswith(backend.prefix)]
    assert sorted(mine) == [backend.queue_id(f"q{i}") for i in range(5)]


def test_pause_resume_and_purge(backend: Harness, queue: kit.QueueHandle) -> None:
    assert queue.pause().state is kit.QueueState.PAUSED
    queue.create_task(backend.url("/x"), task_id="held")  # a paused queue still takes tasks
    assert queue.get().state is kit.QueueState.PAUSED
    assert queue.resume().state is kit.QueueState.RUNNING
    queue.pause()
    purged = queue.purge()
    assert purged.purge_time is not None
    assert list(queue.list_tasks()) == []


def test_created_task_fields(backend: Harness, queue: kit.QueueHandle) -> None:
    before = backend.now()
    task = queue.create_task(
        backend.url("/fields"),
        method="PUT",
        headers={"X-Trace": "abc"},
        text="hi",
        delay=timedelta(minutes=5),
        deadline=timedelta(minutes=2),
        task_id="fielded",
    )
    assert task.id == "fielded"
    assert task.queue == backend.queue_id("work")
    assert task.name == queue.name + "/tasks/fielded"
    assert task.method == "PUT"
    assert task.url == backend.url("/fields")
    assert task.headers["X-Trace"] == "abc"
    assert task.headers["User-Agent"] == "Google-Cloud-Tasks"
    assert task.dispatch_deadline == timedelta(minutes=2)
    assert task.create_time is not None and task.schedule_time is not None
    assert task.schedule_time.tzinfo is not None
    assert abs(task.schedule_time.timestamp() - (before + 300)) < 5
    assert task.dispatch_count == 0 and task.response_count == 0
    assert task.first_attempt is None and task.last_attempt is None
    assert task.raw.http_request.http_method == tasks_v2.HttpMethod.PUT


def test_run_task_dispatches_a_paused_queue_task_now(backend: Harness, queue: kit.QueueHandle) -> None:
    seen: list[str] = []
    backend.handle(lambda method, path, headers, body: seen.append(path) or 200)
    queue.pause()
    queue.create_task(backend.url("/later"), task_id="forced", delay=timedelta(days=1))
    ran = queue.run_task("forced")
    assert ran.id == "forced"
    backend.run_until_idle()
    _wait_for(lambda: seen == ["/later"])
    with pytest.raises(kit.NotFound):
        queue.get_task("forced")


def test_ensure_creates_then_updates_only_what_changed(backend: Harness) -> None:
    queue = backend.client.queue("ensured")
    created = queue.ensure(rate_limits=kit.RateLimits(max_dispatches_per_second=5))
    assert created.rate_limits.max_dispatches_per_second == 5
    assert created.retry_config.max_attempts == 100  # the service's default
    again = queue.ensure(rate_limits=kit.RateLimits(max_dispatches_per_second=5))
    assert again == created
    updated = queue.ensure(retry=kit.RetryConfig(max_attempts=3))
    assert updated.retry_config.max_attempts == 3
    assert updated.rate_limits.max_dispatches_per_second == 5


def test_update_changes_only_the_masked_fields(backend: Harness, queue: kit.QueueHandle) -> None:
    updated = queue.update(retry=kit.RetryConfig(max_doublings=2))
    assert updated.retry_config.max_doublings == 2
    assert updated.retry_config.max_attempts == 100


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
