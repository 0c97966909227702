"""Soak: the emulator (its own process) left running under load with poison mixed in.

    python benchmarks/soak.py                 # 200,000 deliveries across 1,000 queues (several minutes)
    python benchmarks/soak.py --deliveries 20000 --queues 100

About 5% of what it sends is poison: queues with unknown enums, NaN rates, JSON nested too deep,
negative page sizes and non-UTF-8 BufferTask headers over REST; worker answers with junk, huge or
date-shaped Retry-After, 3xx/4xx/5xx, connections reset, and workers that answer slowly. Poison tasks go to
queues of their own (a worker's Retry-After rightly holds its queue). A control queue gets one task due
a second after each round is created, and each must arrive within two seconds of its time.

It prints: API answers with status 500 (target 0), control deliveries late or missing (target 0), and the
emulator's RSS after warm-up and at the end (target: within 50 MiB).

Warm-up is the fifth round: every queue exists and the attempt history (a ring of 10,000) is about full.
What rightly grows after it is state the service keeps too: a tombstone for each finished task's name
(an hour's worth: about 190,000 here, about 40 bytes each, 7 MiB) and the poison tasks whose queues a
worker's Retry-After holds (about 9,000 more, a record and protobuf of about 2 KB each, 18 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import requests
from _support import AiohttpServer, emulator_process


class Worker(AiohttpServer):
    """A server on 127.0.0.1 answering by the path: /ok, /control/<eta>, /poison (a random misbehaviour)."""

    def __init__(self) -> None:
        from aiohttp import web

        self.delivered = 0
        self.ok = 0
        self.control: dict[float, float] = {}  # eta -> arrival (epoch seconds)
        rng = random.Random(7)

        async def answer(request: web.Request) -> web.StreamResponse:
            await request.read()
            self.delivered += 1
            kind = request.match_info["tail"]
            if kind == "ok":
                self.ok += 1
            if kind.startswith("control/"):
                self.control[float(kind.split("/", 1)[1])] = time.time()
                return web.Response(text="ok")
            if kind == "poison":
                choice = rng.randrange(6)
                if choice == 0:
                    return web.Response(
                        status=429, headers={"Retry-After": rng.choice(["1e19", "9" * 400, "x"])}
                    )
                if choice == 1:
                    return web.Response(status=503, headers={"Retry-After": "Wed, 21 Oct 9999 07:28:00 GMT"})
                if choice == 2:
                    return web.Response(status=rng.choice([301, 304, 400, 404, 500]))
                if choice == 3:
                    assert request.transport is not None
                    request.transport.close()  # reset
                    return web.Response()
                if choice == 4:
                    await asyncio.sleep(2)  # slow
                return web.Response(text="ok")
            return web.Response(text="ok")

        super().__init__(answer)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def emulator_pid() -> int:
    import os

    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"cloudtasks_kit.emulator" in cmdline and f"PPid:\t{me}" in status:
            return int(pid)
    raise LookupError("the emulator process")


def poison_rest(rest: str, parent: str, rng: random.Random, statuses: list[int]) -> None:
    """One poison request over REST; its status is recorded."""
    kind = rng.randrange(5)
    url = f"http://{rest}/v2/{parent}"
    name = f"{parent}/queues/poison-{rng.randrange(10**9)}"
    if kind == 0:
        response = requests.post(
            f"{url}/queues", json={"name": name, "httpTarget": {"httpMethod": 99}}, timeout=30
        )
    elif kind == 1:
        body = {"name": name, "rateLimits": {"maxDispatchesPerSecond": "NaN"}}
        response = requests.post(f"{url}/queues", data=json.dumps(body), timeout=30)
    elif kind == 2:
        response = requests.post(f"{url}/queues", data="[" * 50_000 + "]" * 50_000, timeout=30)
    elif kind == 3:
        response = requests.get(f"{url}/queues", params={"pageSize": "-1"}, timeout=30)
    else:
        response = requests.post(
            f"{url}/queues/p-0/tasks:buffer", data=b"x", headers={"X-Bad": b"\xff\xfe"}, timeout=30
        )
    statuses.append(response.status_code)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--queues", type=int, default=1000)
    args = parser.parse_args()

    from cloudtasks_kit import CloudTasks, QueueHttpTarget, RateLimits, RetryConfig, UriOverride
    from cloudtasks_kit.transports.grpc import GrpcTransport

    worker = Worker()
    rng = random.Random(1)
    statuses: list[int] = []
    with emulator_process() as (grpc_address, rest_address):
        pid = emulator_pid()
        client = CloudTasks("soak", "us-central1", transport=GrpcTransport(emulator_host=grpc_address))
        parent = client.parent
        retry = RetryConfig(max_attempts=3, min_backoff=0.1, max_backoff=1)
        # Poison goes to queues of its own (one in twenty): a worker's Retry-After rightly holds its whole
        # queue, up to Limits.max_retry_after, so healthy queues must not share it.
        queues, poisoned = [], []
        for n in range(args.queues):
            is_poison = n % 20 == 0
            queue = client.queue(f"p-{n}" if is_poison else f"q-{n}")
            target = QueueHttpTarget(uri_override=UriOverride(host="127.0.0.1")) if n == 0 else None
            queue.create(
                rate_limits=RateLimits(max_dispatches_per_second=500), retry=retry, http_target=target
            )
            (poisoned if is_poison else queues).append(queue)
        control = client.queue("control")
        control.create()
        per_round = 2000
        rounds = max(1, args.deliveries // per_round)
        started = time.time()
        warm_rss = None
        control_etas: list[float] = []
        ok_total = 0
        for round_number in range(rounds):
            specs: dict[Any, list[dict[str, Any]]] = {}
            ok_tasks = 0
            for _ in range(per_round):
                if rng.random() < 0.05:
                    specs.setdefault(rng.choice(poisoned), []).append({"url": f"{worker.url}/poison"})
                else:
                    ok_tasks += 1
                    specs.setdefault(rng.choice(queues), []).append({"url": f"{worker.url}/ok"})
            for queue, batch in specs.items():
                results = queue.create_tasks(batch)
                statuses.extend(500 for r in results if r.error is not None and "INTERNAL" in str(r.error))
            ok_total += ok_tasks
            for _ in range(per_round // 20 // 20):  # 5% of the calls, spread over the round
                poison_rest(rest_address, parent, rng, statuses)
            eta = time.time() + 1
            control.create_task(f"{worker.url}/control/{eta:.3f}", at=_at(eta))
            control_etas.append(round(eta, 3))
            while worker.ok < ok_total * 0.9:
                time.sleep(0.05)
            if round_number == min(4, rounds - 1):
                warm_rss = rss_mib(pid)
            if round_number % 10 == 0:
                print(
                    f"round {round_number + 1}/{rounds}: {worker.delivered:,} delivered, RSS {rss_mib(pid):.0f} MiB",
                    flush=True,
                )
        deadline = time.time() + 120
        while worker.ok < ok_total and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        end_rss = rss_mib(pid)
        late = [eta for eta in control_etas if eta not in worker.control or worker.control[eta] - eta > 2.0]
        elapsed = time.time() - started
        client.close()
    server_errors = sum(1 for s in statuses if s >= 500)
    print(
        f"deliveries: {worker.delivered:,} in {elapsed:.0f} s across {args.queues} queues "
        f"({worker.ok:,} of {ok_total:,} healthy tasks delivered)"
    )
    print(f"poison API calls: {len(statuses)}, answered 5xx: {server_errors} (target 0)")
    print(f"control deliveries: {len(control_etas)}, late or missing: {len(late)} (target 0)")
    print(
        f"emulator RSS: {warm_rss:.0f} MiB after warm-up, {end_rss:.0f} MiB at the end (target: within 50 MiB)"
    )
    ok = server_errors == 0 and not late and warm_rss is not None and end_rss - warm_rss <= 50
    print("ok" if ok else "MISSED")
    return 0 if ok else 1


def _at(epoch: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


if __name__ == "__main__":
    sys.exit(main())
