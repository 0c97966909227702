"""create_task through the kit against the raw official client, both over gRPC to the emulator running
in its own process, measured in alternating rounds."""

from __future__ import annotations

import json
from typing import Any

import grpc
from _support import emulator_process, interleaved
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from cloudtasks_kit import CloudTasks
from cloudtasks_kit.transports.grpc import GrpcTransport

URL = "https://worker.example.com/run"


def run(quick: bool = False) -> list[dict[str, Any]]:
    with emulator_process() as (grpc_address, _):
        kit = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        kit_queue = kit.queue("kit")
        kit_queue.create()
        kit_queue.pause()
        raw = tasks_v2.CloudTasksClient(
            transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(grpc_address))
        )
        parent = raw.create_queue(
            parent="projects/bench/locations/us-central1",
            queue={"name": "projects/bench/locations/us-central1/queues/raw"},
        ).name
        raw.pause_queue(name=parent)
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

        for _ in range(200):  # warm both channels
            through_the_kit()
            raw_client()
        calls, rounds = (300, 3) if quick else (1000, 7)
        kit_time, raw_time = interleaved(through_the_kit, raw_client, calls=calls, rounds=rounds)
        kit.close()
    ratio = kit_time / raw_time
    return [
        {
            "benchmark": "create_task latency over gRPC to the emulator (own process): kit vs raw official client",
            "kit": f"{kit_time * 1e3:.3f} ms/call",
            "official": f"{raw_time * 1e3:.3f} ms/call",
            "ratio": ratio,
            "target": "<= 1.10",
            "ok": ratio <= 1.10,
        }
    ]
