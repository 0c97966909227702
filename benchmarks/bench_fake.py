"""The fake: tasks created per second through the facade, against building the same requests with the
official types alone; and the memory 100,000 pending tasks take."""

from __future__ import annotations

import gc
import json
import os
from typing import Any

from _support import interleaved
from google.cloud import tasks_v2

from cloudtasks_kit.transports.fake import FakeTransport

URL = "https://worker.example.com/run"
PARENT = "projects/p/locations/us-central1/queues/q"


def run(quick: bool = False) -> list[dict[str, Any]]:
    fake = FakeTransport()
    queue = fake.client("p").queue("q")
    queue.create()
    queue.pause()
    counter = iter(range(10**9))

    def through_the_fake() -> None:
        queue.create_task(URL, json={"i": next(counter)})

    def official_types() -> None:
        body = json.dumps({"i": next(counter)}).encode()
        http = tasks_v2.HttpRequest(
            url=URL,
            http_method=tasks_v2.HttpMethod.POST,
            headers={"Content-Type": "application/json"},
            body=body,
        )
        tasks_v2.CreateTaskRequest(parent=PARENT, task=tasks_v2.Task(http_request=http))

    def official_dicts() -> None:
        body = json.dumps({"i": next(counter)}).encode()
        task = {
            "http_request": {
                "url": URL,
                "http_method": 1,
                "headers": {"Content-Type": "application/json"},
                "body": body,
            }
        }
        tasks_v2.CreateTaskRequest(parent=PARENT, task=task)

    calls, rounds = (2000, 3) if quick else (5000, 9)  # short rounds: a slow spell spoils fewer
    typed = interleaved(through_the_fake, official_types, calls=calls, rounds=rounds)
    dicts = interleaved(through_the_fake, official_dicts, calls=calls, rounds=rounds)
    fake_time, typed_time, dict_time = typed.a, typed.b, dicts.b
    results = [
        {
            "benchmark": "fake: create_task through the facade vs building the request with official types",
            "kit": f"{fake_time * 1e6:.1f} us/task ({1 / fake_time:,.0f} tasks/s; median of the rounds' ratios, "
            f"{min(typed.ratios):.2f} to {max(typed.ratios):.2f})",
            "official": f"{typed_time * 1e6:.1f} us/request",
            "ratio": typed.ratio,
            "target": "<= 1.20",
            "ok": typed.ratio <= 1.2,
        },
        {
            "benchmark": "fake: the same against official dict-built requests (for reference)",
            "kit": f"{fake_time * 1e6:.1f} us/task",
            "official": f"{dict_time * 1e6:.1f} us/request",
            "ratio": dicts.ratio,
            "target": "-",
            "ok": True,
        },
    ]
    results.append(_memory(quick))
    return results


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory(quick: bool) -> dict[str, Any]:
    count = 20_000 if quick else 100_000
    fake = FakeTransport()
    queue = fake.client("p").queue("mem")
    queue.create()
    queue.pause()
    gc.collect()
    before = _rss()
    for i in range(count):
        queue.create_task(URL, json={"user": i, "email": f"user{i}@example.com"})
    gc.collect()
    used = (_rss() - before) / 2**20
    scaled = used * 100_000 / count
    return {
        "benchmark": f"fake: memory for {count:,} pending tasks (RSS growth)",
        "kit": f"{used:.0f} MiB ({scaled:.0f} MiB per 100,000)",
        "official": "-",
        "ratio": None,
        "target": "<= 300 MiB per 100,000",
        "ok": scaled <= 300,
    }
