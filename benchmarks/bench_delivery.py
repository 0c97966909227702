"""The emulator (own process) delivering to a local handler: tasks per second, and how closely a queue
limited to 50 dispatches a second keeps to it."""

from __future__ import annotations

import time
from typing import Any

from _support import CountingHandler, emulator_process

from cloudtasks_kit import CloudTasks, RateLimits
from cloudtasks_kit.transports.grpc import GrpcTransport


def run(quick: bool = False) -> list[dict[str, Any]]:
    handler = CountingHandler()
    results = []
    with emulator_process() as (grpc_address, _):
        client = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        count = 2000 if quick else 6000
        # One queue dispatches at most 500/s (the service's limit); four queues show what the emulator carries.
        queues = [client.queue(f"fast-{n}") for n in range(4)]
        for queue in queues:
            queue.create(rate_limits=RateLimits(max_dispatches_per_second=500))
            queue.pause()
            queue.create_tasks([{"url": f"{handler.url}/fast", "json": {"i": i}} for i in range(count // 4)])
        started = time.perf_counter()
        for queue in queues:
            queue.resume()
        handler.wait_for(count)
        elapsed = handler.arrivals[-1] - started
        results.append(
            {
                "benchmark": f"emulator: {count:,} tasks over 4 queues (500/s each) delivered to a local handler",
                "kit": f"{count / elapsed:,.0f} tasks/s",
                "official": "-",
                "ratio": None,
                "target": "-",
                "ok": True,
            }
        )
        handler.arrivals.clear()
        limited = client.queue("limited")
        created = limited.create(rate_limits=RateLimits(max_dispatches_per_second=50))
        burst = created.rate_limits.max_burst_size or 0
        total = burst + (150 if quick else 450)
        limited.pause()
        limited.create_tasks([{"url": f"{handler.url}/limited", "json": {"i": i}} for i in range(total)])
        limited.resume()
        handler.wait_for(total)
        arrivals = sorted(handler.arrivals)
        steady = (total - burst - 1) / (arrivals[-1] - arrivals[burst])
        error = abs(steady - 50) / 50
        results.append(
            {
                "benchmark": f"emulator: a queue limited to 50/s, {total} tasks after a burst of {burst}",
                "kit": f"{steady:.2f} dispatches/s",
                "official": "50/s configured",
                "ratio": steady / 50,
                "target": "within 5% of 50/s",
                "ok": error <= 0.05,
            }
        )
        client.close()
    handler.close()
    return results
