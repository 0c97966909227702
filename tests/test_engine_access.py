"""The gRPC server's threads and the engine's loop: direct while the loop idles, a hop while it is busy
or when the loop is not the emulator's own (cloudtasks_kit/emulator/engine_access.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.engine_access import EngineAccess, new_loop

from .conftest import LocalServer, wait_until


def _running(loop: asyncio.AbstractEventLoop) -> Iterator[int]:
    started = threading.Event()
    thread_id: list[int] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        thread_id.append(threading.get_ident())
        loop.call_soon(started.set)
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield thread_id[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def own_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, int]]:
    loop = new_loop()
    for thread_id in _running(loop):
        yield loop, thread_id


@pytest.fixture
def foreign_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, int]]:
    loop = asyncio.new_event_loop()
    for thread_id in _running(loop):
        yield loop, thread_id


def _in_thread(fn: Any) -> Any:
    """Run ``fn`` on a new thread (as a gRPC handler would be) and return what it returned."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(10)
    return out[0]


def test_an_idle_own_loop_lets_a_handler_thread_call_directly(own_loop: Any) -> None:
    loop, loop_thread = own_loop
    access = EngineAccess(loop)
    assert access.direct
    caller, ran_on = _in_thread(lambda: (threading.get_ident(), access.call(threading.get_ident)))
    assert ran_on == caller != loop_thread


def test_a_busy_loop_is_not_interleaved_the_call_waits_for_its_turn_on_the_loop(own_loop: Any) -> None:
    loop, loop_thread = own_loop
    access = EngineAccess(loop)
    state = {"value": 0}
    seen: list[int] = []
    inside = threading.Event()

    def busy() -> None:  # one stretch of the loop's work, as the delivery loop's between two awaits
        state["value"] = 1
        inside.set()
        time.sleep(0.3)
        seen.append(state["value"])  # nobody changed it meanwhile
        state["value"] = 2

    def handler_call() -> tuple[int, int]:
        def engine_call() -> int:
            state["value"] += 10
            return threading.get_ident()

        inside.wait(5)
        return access.call(engine_call), threading.get_ident()

    loop.call_soon_threadsafe(busy)
    ran_on, caller = _in_thread(handler_call)
    assert seen == [1] and state["value"] == 12
    assert ran_on == loop_thread != caller  # handed to the loop, not run beside it


def test_a_loop_the_emulator_did_not_make_always_gets_the_call_handed_over(foreign_loop: Any) -> None:
    loop, loop_thread = foreign_loop
    access = EngineAccess(loop)
    assert not access.direct
    assert _in_thread(lambda: access.call(threading.get_ident)) == loop_thread


@pytest.mark.parametrize("kind", ["own", "foreign"])
def test_errors_reach_the_handler_thread_on_both_paths(kind: str, request: pytest.FixtureRequest) -> None:
    loop, _ = request.getfixturevalue(f"{kind}_loop")
    access = EngineAccess(loop)

    def fail() -> None:
        raise LookupError("no such queue")

    def call() -> Exception:
        try:
            access.call(fail)
        except LookupError as exc:
            return exc
        raise AssertionError("no error")

    assert str(_in_thread(call)) == "no such queue"


def test_a_loop_not_running_owns_the_engine_until_it_is_closed() -> None:
    loop = new_loop()
    access = EngineAccess(loop)
    # Made but not running: the call is queued for the loop rather than run beside it.
    answer: list[int] = []
    thread = threading.Thread(target=lambda: answer.append(access.call(lambda: 7)))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and not answer
    loop.run_until_complete(asyncio.sleep(0))  # the loop runs: the queued call is answered
    thread.join(5)
    assert answer == [7]
    loop.close()
    caller, ran_on = _in_thread(lambda: (threading.get_ident(), access.call(threading.get_ident)))
    assert ran_on == caller  # closed: nobody else touches the engine, so a late call has it


# The emulator end to end, on both kinds of loop.


def _official(address: str) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(address))
    )


def _recording() -> tuple[Emulator, list[str]]:
    """An emulator whose engine notes the name of the thread each call runs on (set before the gRPC
    server binds the engine's ``call``)."""
    emulator = Emulator(dashboard=False)
    threads: list[str] = []
    call = emulator.engine.call

    def recorded(name: str, request: Any) -> Any:
        threads.append(threading.current_thread().name)
        return call(name, request)

    emulator.engine.call = recorded  # type: ignore[method-assign]
    return emulator, threads


@pytest.fixture
def on_foreign_loop() -> Iterator[tuple[Emulator, list[str]]]:
    """An emulator started with ``start_async`` on a plain asyncio loop, as an app embedding it would."""
    emulator, threads = _recording()
    loop = asyncio.new_event_loop()
    for _ in _running(loop):
        asyncio.run_coroutine_threadsafe(emulator.start_async(), loop).result(10)
        try:
            yield emulator, threads
        finally:
            asyncio.run_coroutine_threadsafe(emulator.stop_async(), loop).result(10)


@pytest.fixture
def on_own_loop() -> Iterator[tuple[Emulator, list[str]]]:
    emulator, threads = _recording()
    with emulator:
        yield emulator, threads


@pytest.mark.parametrize("fixture", ["on_own_loop", "on_foreign_loop"])
def test_a_create_over_grpc_wakes_the_sleeping_delivery_loop(
    fixture: str, request: pytest.FixtureRequest, local_server: LocalServer
) -> None:
    emulator, threads = request.getfixturevalue(fixture)
    arrived: list[float] = []
    local_server.handlers["wake"] = lambda *_: (arrived.append(time.monotonic()), 200)[1]
    client = _official(emulator.grpc_address)
    parent = "projects/p/locations/us-central1"
    queue = client.create_queue(
        parent=parent, queue={"name": f"{parent}/queues/wake-{fixture.replace('_', '-')}"}
    )
    time.sleep(0.2)  # nothing is due: the delivery loop sleeps without a timeout
    created = time.monotonic()
    client.create_task(parent=queue.name, task={"http_request": {"url": f"{local_server.url}/wake/run"}})
    wait_until(lambda: bool(arrived), timeout=5)
    assert arrived[0] - created < 1.0
    # Own loop: handler threads call the engine themselves (a call may still be handed over if it came
    # while the loop was busy); another loop: every call is handed over.
    if fixture == "on_own_loop":
        assert any(name.startswith("cloudtasks-kit-grpc") for name in threads), threads
    else:
        assert threads and not any(name.startswith("cloudtasks-kit-grpc") for name in threads), threads


def test_the_command_runs_the_emulator_on_its_own_kind_of_loop() -> None:
    from cloudtasks_kit.emulator_cli import _run

    seen: list[bool] = []

    async def main() -> None:
        seen.append(EngineAccess(asyncio.get_running_loop()).direct)

    _run(main())
    assert seen == [True]
