"""Shared by the benchmarks: the emulator in its own process, timing helpers, a local handler."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple


@contextmanager
def emulator_process() -> Iterator[tuple[str, str]]:
    """``cloudtasks-kit emulator`` as a subprocess on free ports; yields (gRPC address, REST address)."""
    with emulator_subprocess() as (_, grpc_address, rest_address):
        yield grpc_address, rest_address


@contextmanager
def emulator_subprocess() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """The same, yielding the process too (for its pid): (process, gRPC address, REST address)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudtasks_kit.emulator", "--port", "0", "--rest-port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        grpc_address = line.split("gRPC ", 1)[1].split(" ", 1)[0]
        rest_address = line.split("REST http://", 1)[1].split(" ", 1)[0]
        # Keep reading what it prints: a full pipe would block the emulator on its next log line.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield process, grpc_address, rest_address
    finally:
        process.terminate()
        process.wait(timeout=10)


def paused_queues(grpc_address: str, kit_queue: str, raw_queue: str) -> tuple[Any, Any, Any, str]:
    """A kit client with a paused queue, and the raw official client with another: ``(kit, kit queue
    handle, raw client, raw queue name)``. Paused, so delivery does not compete with creating."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    from cloudtasks_kit import CloudTasks
    from cloudtasks_kit.transports.grpc import GrpcTransport

    kit = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
    handle = kit.queue(kit_queue)
    handle.create()
    handle.pause()
    raw = tasks_v2.CloudTasksClient(
        transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(grpc_address))
    )
    parent = "projects/bench/locations/us-central1"
    name = raw.create_queue(parent=parent, queue={"name": f"{parent}/queues/{raw_queue}"}).name
    raw.pause_queue(name=name)
    return kit, handle, raw, name


def per_call(fn: Callable[[], Any], calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


class Pair(NamedTuple):
    """Medians of two interleaved measurements, and the median of their per-round ratios ``a / b``."""

    a: float
    b: float
    ratio: float
    ratios: list[float]


def interleaved(a: Callable[[], Any], b: Callable[[], Any], *, calls: int, rounds: int) -> Pair:
    """Median seconds per call of ``a`` and ``b``, measured in alternating rounds so drift hits both.

    The ratio is the median of each round's ``a / b``: the two halves of a round run seconds apart, so a
    slow spell of the shared machine that spans a round cancels out instead of landing on one side."""
    times_a: list[float] = []
    times_b: list[float] = []
    for round_number in range(rounds):
        pair = [(a, times_a), (b, times_b)]
        for fn, times in pair if round_number % 2 == 0 else reversed(pair):
            times.append(per_call(fn, calls))
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    return Pair(statistics.median(times_a), statistics.median(times_b), statistics.median(ratios), ratios)


class AiohttpServer:
    """An aiohttp app on 127.0.0.1 (free port) in a thread of its own; ``answer`` handles every request."""

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        from aiohttp import web

        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", answer)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


class CountingHandler(AiohttpServer):
    """A server that answers 200 and records when each request came."""

    def __init__(self) -> None:
        from aiohttp import web

        self.arrivals: list[float] = []

        async def answer(request: web.Request) -> web.Response:
            await request.read()
            self.arrivals.append(time.perf_counter())
            return web.Response(text="ok")

        super().__init__(answer)

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.arrivals)} of {count} deliveries")
            time.sleep(0.01)


# A gRPC server that only answers CreateTask: a floor for the emulator. ``argv[1]`` is a JSON spec:
# {"kind": "aio"} (grpc.aio, as the emulator) or {"kind": "sync", "workers": N} (a thread pool), with
# "options", "no_compression", "uvloop", "loop" ("hop" or "lock") and "port" to vary it. It prints its port.
TRIVIAL_SERVER = """
import asyncio, json, sys
from concurrent import futures
import grpc
from google.cloud import tasks_v2

Task, Request = tasks_v2.Task.pb(), tasks_v2.CreateTaskRequest.pb()
spec = json.loads(sys.argv[1])
options = [tuple(option) for option in spec.get("options", [])]
compression = grpc.Compression.NoCompression if spec.get("no_compression") else None


def answer(request):
    return Task(name=request.parent + "/tasks/1")


def handlers(create_task):
    handler = grpc.unary_unary_rpc_method_handler(
        create_task, request_deserializer=Request.FromString, response_serializer=Task.SerializeToString
    )
    return [grpc.method_handlers_generic_handler("google.cloud.tasks.v2.CloudTasks", {"CreateTask": handler})]


def on_loop(loop):
    # The handler thread hands the call to an asyncio loop in another thread and waits for its answer:
    # what a sync server in front of the emulator's loop (which owns the engine) would have to do.
    def create_task(request, context):
        done = futures.Future()
        loop.call_soon_threadsafe(lambda: done.set_result(answer(request)))
        return done.result()

    return create_task


def locked(loop):
    # The other way: the handler thread runs the engine itself, under a lock the loop's users take too,
    # and wakes the loop's delivery driver (the engine's on_change) across threads.
    import threading
    lock, wake = threading.Lock(), asyncio.Event()

    def create_task(request, context):
        with lock:
            response = answer(request)
        loop.call_soon_threadsafe(wake.set)
        return response

    return create_task


if spec["kind"] == "sync":
    create_task = lambda request, context: answer(request)
    if spec.get("loop"):
        import threading
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        create_task = {"hop": on_loop, "lock": locked}[spec["loop"]](loop)
    server = grpc.server(
        futures.ThreadPoolExecutor(spec["workers"]),
        handlers=handlers(create_task),
        options=options,
        compression=compression,
    )
    port = server.add_insecure_port(f"127.0.0.1:{spec.get('port', 0)}")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
else:
    async def create_task(request, context):
        return answer(request)

    if spec.get("uvloop"):
        import uvloop
        uvloop.install()

    async def main():
        server = grpc.aio.server(options=options, compression=compression)
        server.add_generic_rpc_handlers(handlers(create_task))
        port = server.add_insecure_port(f"127.0.0.1:{spec.get('port', 0)}")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    asyncio.run(main())
"""


async def saturate(
    address: str, parent: str, calls: int, *, channels: int = 1, in_flight: int = 64, warm_up: int = 500
) -> float:
    """Creates per second with ``in_flight`` concurrent calls of the official async client, spread over
    ``channels`` channels (each its own connection: a local subchannel pool), after ``warm_up`` calls."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

    options = [("grpc.use_local_subchannel_pool", 1)] if channels > 1 else []
    opened = [grpc.aio.insecure_channel(address, options=options) for _ in range(channels)]
    clients = [
        tasks_v2.CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
        for channel in opened
    ]
    request = tasks_v2.CreateTaskRequest(
        parent=parent, task={"http_request": {"url": "https://worker.example.com/run"}}
    )
    left = 0

    async def worker(client: Any) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.create_task(request=request)

    async def burst(count: int) -> float:
        nonlocal left
        left = count
        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n % channels]) for n in range(in_flight)))
        return time.perf_counter() - started

    await burst(warm_up)  # connections up, code paths hot
    elapsed = await burst(calls)
    for channel in opened:
        await channel.close()
    return calls / elapsed
