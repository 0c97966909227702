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
