"""10,000 tasks through the kit's bulk API against a plain loop of the raw official client's create_task,
both over gRPC to the emulator in its own process."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
from _support import emulator_process
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from cloudtasks_kit import CloudTasks
from cloudtasks_kit.transports.grpc import GrpcTransport

URL = "https://worker.example.com/run"


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 2000 if quick else 10_000
    with emulator_process() as (grpc_address, _):
        kit = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        queue = kit.queue("bulk")
        queue.create()
        queue.pause()
        raw = tasks_v2.CloudTasksClient(
            transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(grpc_address))
        )
        parent = raw.create_queue(
            parent="projects/bench/locations/us-central1",
            queue={"name": "projects/bench/locations/us-central1/queues/loop"},
        ).name
        raw.pause_queue(name=parent)

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
