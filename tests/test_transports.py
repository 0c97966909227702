"""The production transports over real sockets (the emulator on 127.0.0.1), sync and async, gRPC and REST:
every status code comes out as the same kit error whichever transport carried it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from google.api_core import exceptions as core
from google.cloud import tasks_v2

import cloudtasks_kit as kit
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.errors import from_exception
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.grpc import AsyncGrpcTransport, GrpcTransport
from cloudtasks_kit.transports.rest import RestTransport

CODES = [code for code in kit.StatusCode if code is not kit.StatusCode.OK]
EXPECTED = {
    kit.StatusCode.DATA_LOSS: kit.Internal,
    kit.StatusCode.INVALID_ARGUMENT: kit.InvalidArgument,
    kit.StatusCode.NOT_FOUND: kit.NotFound,
    kit.StatusCode.ALREADY_EXISTS: kit.AlreadyExists,
    kit.StatusCode.FAILED_PRECONDITION: kit.FailedPrecondition,
    kit.StatusCode.PERMISSION_DENIED: kit.PermissionDenied,
    kit.StatusCode.UNAUTHENTICATED: kit.Unauthenticated,
    kit.StatusCode.UNAVAILABLE: kit.Unavailable,
    kit.StatusCode.DEADLINE_EXCEEDED: kit.DeadlineExceeded,
    kit.StatusCode.RESOURCE_EXHAUSTED: kit.ResourceExhausted,
    kit.StatusCode.ABORTED: kit.Aborted,
    kit.StatusCode.OUT_OF_RANGE: kit.OutOfRange,
    kit.StatusCode.CANCELLED: kit.Cancelled,
    kit.StatusCode.UNIMPLEMENTED: kit.Unimplemented,
    kit.StatusCode.INTERNAL: kit.Internal,
    kit.StatusCode.UNKNOWN: kit.Unknown,
}


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
def test_each_status_code_maps_to_the_same_kit_error(
    emulator: Emulator, project: str, transport: str, code: kit.StatusCode
) -> None:
    client = emulator.client(project, transport=transport)
    queue = client.queue("errors")
    queue.create()
    emulator.faults.fail("pause_queue", code)  # PauseQueue has no default retry in the official client
    with pytest.raises(kit.ApiError) as caught:
        queue.pause()
    error = caught.value
    assert type(error) is EXPECTED[code]
    assert error.code is code
    if transport == "rest" and code is kit.StatusCode.UNAUTHENTICATED:
        # The official REST session answers a 401 by refreshing credentials, which anonymous ones cannot.
        assert "cannot be refreshed" in error.message
        client.close()
        return
    assert "injected fault" in error.message
    assert isinstance(error.__cause__, core.GoogleAPICallError)
    client.close()


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
async def test_each_status_code_maps_the_same_on_the_async_transport(
    emulator: Emulator, project: str, code: kit.StatusCode
) -> None:
    client = emulator.async_client(project)
    queue = client.queue("errors")
    await queue.create()
    emulator.faults.fail("pause_queue", code)
    with pytest.raises(EXPECTED[code]):
        await queue.pause()
    await client.close()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_official_clients_retry_on_reads_stays_in_force(
    emulator: Emulator, project: str, transport: str
) -> None:
    client = emulator.client(project, transport=transport)
    queue = client.queue("retried")
    queue.create()
    before = emulator.faults.injected["get_queue"]
    emulator.faults.fail("get_queue", kit.StatusCode.UNAVAILABLE, times=2)
    assert queue.get().id == "retried"  # GetQueue retries UNAVAILABLE by default (REST: 503)
    assert emulator.faults.injected["get_queue"] == before + 2
    emulator.faults.fail("create_task", kit.StatusCode.UNAVAILABLE)
    with pytest.raises(kit.Unavailable):  # CreateTask is never retried by the official client
        queue.create_task("https://w.example.com/x")
    client.close()


def test_rest_and_grpc_raise_different_google_classes_but_the_same_kit_class(
    emulator: Emulator, project: str
) -> None:
    causes = []
    for transport in ("grpc", "rest"):
        client = emulator.client(project, transport=transport)
        queue = client.queue(f"dup-{transport}")
        queue.create()
        with pytest.raises(kit.AlreadyExists) as caught:
            queue.create()
        causes.append(type(caught.value.__cause__))
        client.close()
    assert causes == [core.AlreadyExists, core.Conflict]


def test_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for transport in (
        # retry=None: the mapping is the subject here, not the official client's 20 s read retry.
        GrpcTransport(emulator_host=f"127.0.0.1:{port}", timeout=2.0, retry=None),
        RestTransport(emulator_host=f"127.0.0.1:{port}", timeout=2.0, retry=None),
    ):
        client = kit.CloudTasks("p", "us-central1", transport=transport)
        with pytest.raises(kit.TransportError) as caught:
            client.queue("q").get()
        assert isinstance(caught.value, kit.Unavailable)


def test_emulator_host_environment_variable_points_the_default_transport(
    emulator: Emulator, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    with kit.CloudTasks(project, "us-central1") as client:
        assert isinstance(client.transport, GrpcTransport)
        assert client.queue("from-env").create().id == "from-env"
    with kit.CloudTasks(project, "us-central1", transport="rest") as client:
        assert client.queue("from-env").get().id == "from-env"


async def test_async_facade_on_the_emulator(
    emulator: Emulator, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDTASKS_EMULATOR_HOST", emulator.grpc_address)
    client = kit.AsyncCloudTasks(project, "us-central1")
    assert isinstance(client.transport, AsyncGrpcTransport)
    queue = client.queue("async")
    await queue.create()
    task = await queue.create_task("https://w.example.com/x", json={"a": 1}, task_id="a1")
    assert task.id == "a1"
    full = await queue.get_task("a1", view="FULL")
    assert full.json() == {"a": 1}
    assert [t.id async for t in queue.list_tasks()] == ["a1"]
    assert [q.id async for q in client.list_queues()] == ["async"]
    await queue.delete_task("a1")
    with pytest.raises(kit.NotFound):
        await queue.get_task("a1")
    await client.close()


def test_async_client_made_outside_any_loop_works_in_several_loops(emulator: Emulator, project: str) -> None:
    client = emulator.async_client(project)  # made at "import time", with no loop running

    async def use(name: str) -> str:
        return (await client.queue(name).create()).id

    assert asyncio.run(use("first")) == "first"
    assert asyncio.run(use("second")) == "second"


async def test_async_facade_on_the_fake(fake: Any) -> None:
    client = fake.async_client()
    queue = client.queue("q")
    await queue.ensure()
    await queue.create_task("https://w.example.com/x", task_id="t")
    assert [t.id async for t in queue.list_tasks()] == ["t"]
    await queue.pause()
    assert (await queue.get()).state is kit.QueueState.PAUSED


def test_unknown_exceptions_become_unknown_with_the_cause() -> None:
    error = from_exception(RuntimeError("boom"))
    assert isinstance(error, kit.Unknown)
    assert "RuntimeError: boom" in str(error)
    assert from_exception(ConnectionResetError("reset")).__class__ is kit.TransportError


async def test_async_facade_over_the_rest_transport(emulator: Emulator, project: str) -> None:
    # There is no official async REST client: a sync RestTransport runs in worker threads.
    client = kit.AsyncCloudTasks(
        project, "us-central1", transport=RestTransport(emulator_rest_host=emulator.rest_address)
    )
    queue = client.queue("rest-async")
    await queue.create()
    task = await queue.create_task("https://w.example.com/x", task_id="r1")
    assert task.id == "r1"
    with pytest.raises(kit.AlreadyExists):
        await queue.create_task("https://w.example.com/x", task_id="r1", retry_policy=RetryPolicy.none())
    await client.close()


def test_the_seams_fast_wrap_makes_what_proto_plus_wrap_makes() -> None:
    # calls.wrapper skips proto-plus's __setattr__ detour; if a proto-plus release ever puts more on a
    # wrapped message than its raw protobuf, this fails and the shortcut must go.
    from cloudtasks_kit.transports import calls

    checked = 0
    for rpc in calls.RPCS.values():
        if rpc.kind == "operation":
            continue
        response = type(rpc.decode(object()))  # the class a row answers with (any object is wrapped)
        if not hasattr(response, "wrap"):
            continue
        raw = response.pb()()
        ours, theirs = rpc.decode(raw), response.wrap(raw)
        assert type(ours) is type(theirs)
        assert vars(ours) == vars(theirs) and ours._pb is raw
        assert ours == theirs
        checked += 1
    assert checked >= 10
    task = calls.wrapper(tasks_v2.Task)(tasks_v2.Task.pb()(name="projects/p/locations/l/queues/q/tasks/t"))
    assert task.name.endswith("/tasks/t") and isinstance(task, tasks_v2.Task)
