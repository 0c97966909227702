"""BufferTask: the kit's buffer_task on every backend, and the emulator's endpoint as curl and the official
REST session reach it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

import cloudtasks_kit as kit
from cloudtasks_kit.emulator import Emulator

from .conftest import Harness, wait_until


def routed_queue(backend: Harness, name: str = "buffered", **target: Any) -> kit.QueueHandle:
    url = backend.url("/inbox")
    scheme, rest = url.split("://", 1)
    host_port, path = rest.split("/", 1)
    host, _, port = host_port.partition(":")
    queue = backend.client.queue(name)
    override = kit.UriOverride(scheme=scheme, host=host, port=int(port) if port else None, path="/" + path)
    queue.create(http_target=kit.QueueHttpTarget(uri_override=override, **target))
    return queue


def test_buffer_task_with_a_server_chosen_id(backend: Harness) -> None:
    queue = routed_queue(backend)
    task = queue.buffer_task(json={"event": "signup"})
    assert task.id and task.queue == "buffered"
    assert task.url == backend.url("/inbox")
    assert queue.get_task(task.id, view="FULL").json() == {"event": "signup"}


def test_buffer_task_with_a_chosen_id_deduplicates(backend: Harness) -> None:
    queue = routed_queue(backend)
    assert queue.buffer_task(b"raw", task_id="once").id == "once"
    with pytest.raises(kit.AlreadyExists):
        queue.buffer_task(b"raw", task_id="once")


def test_buffer_task_on_a_queue_without_routing_is_the_services_error(backend: Harness) -> None:
    backend.client.queue("plain").create()
    fresh_handle = backend.client.queue("plain")  # knows nothing of the queue: the backend answers
    with pytest.raises(kit.FailedPrecondition, match="queue-level routing"):
        fresh_handle.buffer_task(b"x")


def test_buffer_task_is_refused_before_io_when_the_handle_knows_the_queue_has_no_routing(
    backend: Harness,
) -> None:
    queue = backend.client.queue("plain")
    queue.create()
    with pytest.raises(kit.ValidationError, match="has no queue-level routing"):
        queue.buffer_task(b"x")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task_id": "bad id"}, "task id"),
        ({"method": "FETCH"}, "method 'FETCH'"),
        ({"headers": {"X-CloudTasks-QueueName": "x"}}, "is set by Cloud Tasks"),
        ({"body": b"x", "text": "y"}, "body and text"),
    ],
)
def test_bad_buffer_input_is_refused_before_io(fake: Any, kwargs: dict[str, Any], fragment: str) -> None:
    queue = fake.client().queue("any")
    fake.faults.fail("buffer_task", kit.StatusCode.INTERNAL)  # would show if the call were sent
    with pytest.raises(kit.ValidationError, match=fragment):
        queue.buffer_task(**kwargs)


def test_method_and_body_are_carried_to_the_delivered_request(backend: Harness) -> None:
    seen: list[tuple[str, str, bytes, str | None]] = []
    backend.handle(
        lambda method, path, headers, body: seen.append((method, path, body, headers.get("X-Event"))) or 200
    )
    queue = routed_queue(backend)
    queue.buffer_task(text="hello", method="PUT", headers={"X-Event": "e1"})
    backend.run_until_idle()
    wait_until(lambda: len(seen) == 1)
    assert seen == [("PUT", "/inbox", b"hello", "e1")]


def test_the_queues_method_override_wins(backend: Harness) -> None:
    seen: list[str] = []
    backend.handle(lambda method, path, headers, body: seen.append(method) or 200)
    queue = routed_queue(backend, "patched", method="PATCH")
    queue.buffer_task(json={"a": 1}, method="POST")
    backend.run_until_idle()
    wait_until(lambda: seen == ["PATCH"])


async def test_async_buffer_task(fake: Any) -> None:
    client = fake.async_client()
    queue = client.queue("abuf")
    await queue.create(http_target=kit.QueueHttpTarget(uri_override=kit.UriOverride(host="worker.test")))
    task = await queue.buffer_task(b"payload", task_id="a1")
    assert (task.id, task.url) == ("a1", "https://worker.test/")


def test_curl_the_official_rest_session_and_the_kit_give_the_same_task(
    emulator: Emulator, project: str
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession

    client = emulator.client(project, transport="rest")
    queue = client.queue("same")
    queue.create(
        http_target=kit.QueueHttpTarget(uri_override=kit.UriOverride(host="worker.test", path="/in"))
    )
    endpoint = f"{emulator.rest_url}/v2/{queue.name}/tasks"
    by_kit = queue.buffer_task(b'{"n":1}', task_id="kit", headers={"Content-Type": "application/json"})
    by_curl = requests.post(
        f"{endpoint}/curl:buffer", data=b'{"n":1}', headers={"Content-Type": "application/json"}
    )
    session = AuthorizedSession(AnonymousCredentials())
    by_session = session.post(
        f"{endpoint}/session:buffer", data=b'{"n":1}', headers={"Content-Type": "application/json"}
    )
    assert by_curl.status_code == by_session.status_code == 200
    tasks = {t.id: t for t in queue.list_tasks(view="FULL")}
    assert set(tasks) == {"kit", "curl", "session"}
    for task in tasks.values():
        assert (task.url, task.method, task.body) == ("https://worker.test/in", "POST", b'{"n":1}')
        assert task.headers["Content-Type"] == "application/json"
    assert by_curl.json()["task"]["name"].endswith("/tasks/curl")
    assert by_kit.url == "https://worker.test/in"
    duplicate = requests.post(f"{endpoint}/curl:buffer", data=b"again")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["status"] == "ALREADY_EXISTS"
    client.close()


def test_an_authorization_header_is_refused_for_buffer_task(fake: Any) -> None:
    queue = fake.client().queue("any")
    with pytest.raises(kit.ValidationError, match="caller's own credentials"):
        queue.buffer_task(b"x", headers={"Authorization": "Bearer secret"})
