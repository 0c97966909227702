"""10,000 tasks through the kit's bulk API against a plain loop of the raw official client's create_task,
both over gRPC to the emulator in its own process."""

from __future__ import annotations

import json
import time
from typing import Any

from _support import emulator_process, paused_queues

URL = "https://worker.example.com/run"


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 2000 if quick else 10_000
    with emulator_process() as (grpc_address, _):
        kit, queue, raw, parent = paused_queues(grpc_address, "bulk", "loop")

        started = time.perf_counter()
        results = queue.create_tasks(
            [{"url": URL, "json": {"i": i}, "dedup_key": f"bulk-{i}"} for i in range(count)]
        )
        bulk_time = time.perf_counter() - started
        assert all(r.ok for r in results)

        started = time.perf_counter()
        for i in range(count):
            body = json.dumps({"i": i}).encode()
            raw.create_task(
                parent=parent,
                task={
                    "http_request": {
                        "url": URL,
                        "body": body,
                        "headers": {"Content-Type": "application/json"},
                    }
                },
            )
        loop_time = time.perf_counter() - started
        kit.close()
    speedup = loop_time / bulk_time
    return [
        {
            "benchmark": f"{count:,} tasks: kit create_tasks (BatchCreateTasks x4) vs a loop of raw create_task",
            "kit": f"{bulk_time:.2f} s ({count / bulk_time:,.0f} tasks/s)",
            "official": f"{loop_time:.2f} s ({count / loop_time:,.0f} tasks/s)",
            "ratio": bulk_time / loop_time,
            "target": "<= 0.10 (at least 10x faster)",
            "ok": speedup >= 10,
        }
    ]
