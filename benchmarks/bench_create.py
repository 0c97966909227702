"""create_task through the kit against the raw official client, both over gRPC to the emulator running
in its own process, measured in alternating rounds."""

from __future__ import annotations

import json
from typing import Any

from _support import emulator_process, interleaved, paused_queues

URL = "https://worker.example.com/run"


def run(quick: bool = False) -> list[dict[str, Any]]:
    with emulator_process() as (grpc_address, _):
        kit, kit_queue, raw, parent = paused_queues(grpc_address, "kit", "raw")
        counter = iter(range(10**9))

        def through_the_kit() -> None:
            kit_queue.create_task(URL, json={"i": next(counter)})

        def raw_client() -> None:
            body = json.dumps({"i": next(counter)}).encode()
            raw.create_task(
                parent=parent,
                task={
                    "http_request": {
                        "url": URL,
                        "http_method": 1,
                        "headers": {"Content-Type": "application/json"},
                        "body": body,
                    }
                },
            )

        def named() -> None:
            kit_queue.create_task(URL, json={"i": 0}, task_id=f"n{next(counter)}")

        for _ in range(200):  # warm both channels
            through_the_kit()
            raw_client()
        calls, rounds = (300, 3) if quick else (1000, 7)
        kit_time, raw_time, ratio, _ = interleaved(through_the_kit, raw_client, calls=calls, rounds=rounds)
        named_time, unnamed_time, named_ratio, _ = interleaved(
            named, through_the_kit, calls=calls, rounds=rounds
        )
        async_named, async_unnamed, async_ratio = _async_named_vs_unnamed(
            grpc_address, calls, rounds, counter
        )
        kit.close()
    return [
        _named("sync", named_time, unnamed_time, named_ratio),
        _named("async", async_named, async_unnamed, async_ratio),
        {
            "benchmark": "create_task latency over gRPC to the emulator (own process): kit vs raw official client",
            "kit": f"{kit_time * 1e3:.3f} ms/call",
            "official": f"{raw_time * 1e3:.3f} ms/call",
            "ratio": ratio,
            "target": "<= 1.10",
            "ok": ratio <= 1.10,
        },
    ]


def _named(face: str, named: float, unnamed: float, ratio: float) -> dict[str, Any]:
    return {
        "benchmark": f"named create (task_id) vs unnamed over gRPC to the emulator, {face}",
        "kit": f"{named * 1e3:.3f} ms/call",
        "official": f"{unnamed * 1e3:.3f} ms/call (the kit's unnamed create)",
        "ratio": ratio,
        "target": "<= 1.03",
        "ok": ratio <= 1.03,
    }


def _async_named_vs_unnamed(
    grpc_address: str, calls: int, rounds: int, counter: Any
) -> tuple[float, float, float]:
    """Median seconds per named and unnamed create with AsyncCloudTasks, in alternating rounds, and the
    median of the rounds' ratios."""
    import asyncio
    import statistics
    import time

    from cloudtasks_kit import AsyncCloudTasks
    from cloudtasks_kit.transports.grpc import AsyncGrpcTransport

    async def measure() -> tuple[float, float, float]:
        client = AsyncCloudTasks(
            "bench", "us-central1", transport=AsyncGrpcTransport(emulator_host=grpc_address)
        )
        queue = client.queue("kit-async")
        await queue.create()
        await queue.pause()

        async def named() -> None:
            await queue.create_task(URL, json={"i": 0}, task_id=f"a{next(counter)}")

        async def unnamed() -> None:
            await queue.create_task(URL, json={"i": 0})

        async def per_call(fn: Any) -> float:
            started = time.perf_counter()
            for _ in range(calls):
                await fn()
            return (time.perf_counter() - started) / calls

        for _ in range(200):
            await named()
            await unnamed()
        times: dict[str, list[float]] = {"named": [], "unnamed": []}
        for round_number in range(rounds):
            order = [("named", named), ("unnamed", unnamed)]
            for name, fn in order if round_number % 2 == 0 else reversed(order):
                times[name].append(await per_call(fn))
        await client.close()
        ratios = [a / b for a, b in zip(times["named"], times["unnamed"], strict=True)]
        return (
            statistics.median(times["named"]),
            statistics.median(times["unnamed"]),
            statistics.median(ratios),
        )

    return asyncio.run(measure())
