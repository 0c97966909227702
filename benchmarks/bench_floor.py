"""The emulator against its floors, measured in the same run:

- API: CreateTask throughput under saturating load (64 calls in flight from the official async client)
  against a trivial grpc.aio server that only answers CreateTask, in the same kind of process;
- delivery: tasks delivered to a local handler with 20 queues (limits not binding) against a plain
  aiohttp client posting the same requests with the same concurrency.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

from _support import CountingHandler, emulator_process

_TRIVIAL_SERVER = """
import asyncio, sys
import grpc
from google.cloud import tasks_v2

Task, Request = tasks_v2.Task.pb(), tasks_v2.CreateTaskRequest.pb()

async def create_task(request, context):
    return Task(name=request.parent + "/tasks/1")

async def main():
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        create_task, request_deserializer=Request.FromString, response_serializer=Task.SerializeToString
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("google.cloud.tasks.v2.CloudTasks", {"CreateTask": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""

URL = "https://worker.example.com/run"


async def _saturate(address: str, parent: str, calls: int, in_flight: int = 64) -> float:
    """Creates per second with ``in_flight`` concurrent calls of the official async client."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

    channel = grpc.aio.insecure_channel(address)
    client = tasks_v2.CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
    request = tasks_v2.CreateTaskRequest(parent=parent, task={"http_request": {"url": URL}})
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.create_task(request=request)

    await asyncio.gather(*(worker() for _ in range(in_flight)))  # warm-up
    left = calls
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    await channel.close()
    return calls / elapsed


def _api(calls: int) -> dict[str, Any]:
    parent = "projects/bench/locations/us-central1/queues/q"
    trivial = subprocess.Popen([sys.executable, "-c", _TRIVIAL_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert trivial.stdout is not None
        port = int(trivial.stdout.readline())
        floor = asyncio.run(_saturate(f"127.0.0.1:{port}", parent, calls))
    finally:
        trivial.terminate()
        trivial.wait(10)
    with emulator_process() as (grpc_address, _):
        from cloudtasks_kit import CloudTasks
        from cloudtasks_kit.transports.grpc import GrpcTransport

        kit = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        kit.queue("q").create()
        kit.queue("q").pause()
        kit.close()
        ours = asyncio.run(_saturate(grpc_address, parent, calls))
    return {
        "benchmark": "emulator: CreateTask throughput, 64 in flight, vs a trivial grpc.aio server",
        "kit": f"{ours:,.0f} creates/s",
        "official": f"{floor:,.0f} creates/s (trivial server)",
        "ratio": ours / floor,
        "target": ">= 0.95",
        "ok": ours / floor >= 0.95,
    }


def _delivery(count: int, concurrency: int = 20) -> dict[str, Any]:
    import aiohttp

    from cloudtasks_kit import CloudTasks, RateLimits
    from cloudtasks_kit.transports.grpc import GrpcTransport

    handler = CountingHandler()
    try:
        with emulator_process() as (grpc_address, _):
            client = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
            queues = [client.queue(f"d-{n}") for n in range(concurrency)]
            for queue in queues:
                queue.create(
                    rate_limits=RateLimits(max_dispatches_per_second=500, max_concurrent_dispatches=1)
                )
                queue.pause()
                queue.create_tasks(
                    [{"url": f"{handler.url}/d", "json": {"i": i}} for i in range(count // concurrency)]
                )
            started = time.perf_counter()
            for queue in queues:
                queue.resume()
            handler.wait_for(count)
            ours = count / (handler.arrivals[-1] - started)
            client.close()
        handler.arrivals.clear()

        async def plain() -> float:
            body = b'{"i": 0}'
            async with aiohttp.ClientSession() as session:
                left = count

                async def worker() -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        async with session.post(f"{handler.url}/d", data=body) as response:
                            await response.read()

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return count / (time.perf_counter() - started)

        floor = asyncio.run(plain())
    finally:
        handler.close()
    return {
        "benchmark": f"emulator: delivery with {concurrency} queues (limits not binding) vs a plain aiohttp client",
        "kit": f"{ours:,.0f} tasks/s",
        "official": f"{floor:,.0f} requests/s (aiohttp, {concurrency} in flight)",
        "ratio": ours / floor,
        "target": ">= 0.90",
        "ok": ours / floor >= 0.90,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    return [_api(2000 if quick else 10000), _delivery(2000 if quick else 6000)]
