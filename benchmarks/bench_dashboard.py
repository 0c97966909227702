"""Delivery throughput of the emulator (own process) with no dashboard open, and with pages open.

An open page is what a browser keeps open on the dashboard: a server-sent event stream that the
emulator renders again every second (the queue list, and the task list of a busy queue). The streams
are read here by plain HTTP clients, which costs the emulator exactly what a browser's would. Rounds
alternate closed and open, so drift hits both; the figure is the median.

    python benchmarks/run.py dashboard
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import quote

from _support import CountingHandler, emulator_process

from cloudtasks_kit import CloudTasks, RateLimits
from cloudtasks_kit.transports.grpc import GrpcTransport


class OpenPages:
    """Event streams of the dashboard, read until closed (one thread each)."""

    def __init__(self, urls: list[str]) -> None:
        self.updates = 0
        self._responses: list[Any] = []
        self._threads = [threading.Thread(target=self._read, args=(url,), daemon=True) for url in urls]
        for thread in self._threads:
            thread.start()

    def _read(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                self._responses.append(response)
                for line in response:
                    if line.startswith(b"event: update"):
                        self.updates += 1
        except (OSError, ValueError, AttributeError):  # closed by close() mid-read, or the emulator stopped
            pass

    def close(self) -> None:
        for response in self._responses:
            response.close()
        for thread in self._threads:
            thread.join(5)


def _deliver(client: CloudTasks, handler: CountingHandler, prefix: str, count: int) -> float:
    """Deliver ``count`` tasks over four queues (500/s each) and return tasks per second."""
    queues = [client.queue(f"{prefix}-{n}") for n in range(4)]
    for queue in queues:
        queue.create(rate_limits=RateLimits(max_dispatches_per_second=500))
        queue.pause()
        queue.create_tasks([{"url": f"{handler.url}/t", "json": {"i": i}} for i in range(count // 4)])
    handler.arrivals.clear()
    started = time.perf_counter()
    for queue in queues:
        queue.resume()
    handler.wait_for(count)
    return count / (handler.arrivals[-1] - started)


def run(quick: bool = False) -> list[dict[str, Any]]:
    handler = CountingHandler()
    count = 2000 if quick else 6000
    rounds = 2 if quick else 4
    closed: list[float] = []
    opened: list[float] = []
    updates = 0
    with emulator_process() as (grpc_address, rest_address):
        client = CloudTasks("bench", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        base = f"http://{rest_address}/dashboard/events"
        _deliver(client, handler, "warm-up", count)  # connections, caches: not counted
        for number in range(rounds * 2):
            with_page = number % 2 == (0 if (number // 2) % 2 else 1)  # closed, open, open, closed...
            prefix = f"r{number}"
            pages = None
            if with_page:
                busy = f"projects/bench/locations/us-central1/queues/{prefix}-0"
                pages = OpenPages([f"{base}?view=queues", f"{base}?view=queue&name={quote(busy)}"])
                time.sleep(0.5)
            rate = _deliver(client, handler, prefix, count)
            if pages is not None:
                pages.close()
                updates += pages.updates
                opened.append(rate)
            else:
                closed.append(rate)
        client.close()
    handler.close()
    without, with_open = statistics.median(closed), statistics.median(opened)
    return [
        {
            "benchmark": f"emulator: {count:,} tasks over 4 queues, no dashboard page open",
            "kit": f"{without:,.0f} tasks/s",
            "official": "-",
            "ratio": None,
            "target": "-",
            "ok": True,
        },
        {
            "benchmark": (
                f"emulator: the same with two dashboard pages open (queue list + task list, live;"
                f" {updates} updates sent); rounds closed {[round(r) for r in closed]},"
                f" open {[round(r) for r in opened]}"
            ),
            "kit": f"{with_open:,.0f} tasks/s",
            "official": f"{without:,.0f} tasks/s closed",
            "ratio": with_open / without,
            "target": "within 10% of closed",
            "ok": with_open >= 0.9 * without,
        },
    ]
