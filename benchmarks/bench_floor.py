"""The emulator against its floors, measured in the same run:

- API: CreateTask throughput under saturating load (64 calls in flight from the official async client)
  against a trivial grpc.aio server that only answers CreateTask, in the same kind of process;
- delivery: tasks delivered to a local handler with 20 queues (limits not binding) against a plain
  aiohttp client posting the same requests with the same concurrency.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from _support import TRIVIAL_SERVER, CountingHandler, emulator_process, saturate


def _api(calls: int) -> dict[str, Any]:
    parent = "projects/bench/locations/us-central1/queues/q"
    trivial = subprocess.Popen(
        [sys.executable, "-c", TRIVIAL_SERVER, json.dumps({"kind": "aio"})], stdout=subprocess.PIPE, text=True
    )
    try:
        assert trivial.stdout is not None
        port = int(trivial.stdout.readline())
        floor = asyncio.run(saturate(f"127.0.0.1:{port}", parent, calls, warm_up=calls))
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
        ours = asyncio.run(saturate(grpc_address, parent, calls, warm_up=calls))
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
