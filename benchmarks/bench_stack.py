"""Which Python gRPC server set-up comes closest to the Go emulator (issue 15)?

The same CreateTask call, measured in the same run against several servers, in interleaved rounds (each
round visits every server, starting one further along each time) and reported as medians:

- sequential latency: the official sync client (``tasks_v2.CloudTasksClient`` over an insecure channel),
  one call at a time, with the client's and the server's CPU per call beside it;
- throughput: the official async client with 64 calls in flight over one channel (and, for the
  SO_REUSEPORT pair and its single-process baseline, over 4 channels, i.e. 4 connections).

The servers: a trivial grpc.aio server that only answers CreateTask (as in bench_floor) with its default
options, with each option worth trying, and on uvloop when uvloop is importable (it is not a dependency);
the same handler on the sync ``grpc.server`` with a thread pool of 1, 4 and 16 workers, and with 4 workers
doing what the emulator would need from a sync server (its engine belongs to an asyncio loop): handing
each call to a loop thread and waiting, or answering under a lock and waking the loop; two trivial
grpc.aio processes bound to one port with SO_REUSEPORT; the emulator itself (``cloudtasks-kit emulator``:
the sync grpc.server on 4 threads, calling its loop's engine directly while the loop is idle; queue
paused so delivery does not compete); and, when ``CLOUDTASKS_BENCH_GO_EMULATOR`` names a binary of
aertje/cloud-tasks-emulator, that emulator too (started as ``BINARY -host 127.0.0.1 -port PORT`` in the
binary's directory, where it expects the ``oidc.key`` and ``oidc.cert`` of its repository, as its
Dockerfile puts them; skipped with a line saying so otherwise).

Every server runs in its own process; all of them stay up for the whole run, idle when not measured.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _support import TRIVIAL_SERVER, emulator_subprocess, saturate

URL = "https://worker.example.com/run"
PARENT = "projects/bench/locations/us-central1"
GO_ENV = "CLOUDTASKS_BENCH_GO_EMULATOR"


# (label, spec) of the trivial single-process servers.
_TRIVIAL_SETUPS: list[tuple[str, dict[str, Any]]] = [
    ("grpc.aio, default options", {"kind": "aio"}),
    (
        "grpc.aio, so_reuseport=0 (the emulator's options)",
        {"kind": "aio", "options": [["grpc.so_reuseport", 0]]},
    ),
    ("grpc.aio, grpc.minimal_stack=1", {"kind": "aio", "options": [["grpc.minimal_stack", 1]]}),
    (
        "grpc.aio, grpc.optimization_target=latency",
        {"kind": "aio", "options": [["grpc.optimization_target", "latency"]]},
    ),
    (
        "grpc.aio, http2: bdp_probe=0, max_concurrent_streams=100",
        {"kind": "aio", "options": [["grpc.http2.bdp_probe", 0], ["grpc.max_concurrent_streams", 100]]},
    ),
    ("grpc.aio, compression=NoCompression", {"kind": "aio", "no_compression": True}),
    ("sync grpc.server, 1 thread", {"kind": "sync", "workers": 1}),
    ("sync grpc.server, 4 threads", {"kind": "sync", "workers": 4}),
    ("sync grpc.server, 16 threads", {"kind": "sync", "workers": 16}),
    (
        "sync grpc.server, 4 threads, answered on an asyncio loop thread",
        {"kind": "sync", "workers": 4, "loop": "hop"},
    ),
    (
        "sync grpc.server, 4 threads, answered under a lock, waking an asyncio loop",
        {"kind": "sync", "workers": 4, "loop": "lock"},
    ),
]
if importlib.util.find_spec("uvloop") is not None:  # not a dependency: measured when it is installed
    _TRIVIAL_SETUPS.insert(6, ("grpc.aio on uvloop", {"kind": "aio", "uvloop": True}))
BASELINE = "grpc.aio, default options"
PAIR = "2 grpc.aio processes, one port (SO_REUSEPORT)"
EMULATOR = "the emulator (sync grpc.server + engine)"
GO = "Go emulator (aertje/cloud-tasks-emulator)"


@dataclass
class Server:
    label: str
    address: str
    pids: list[int]
    parent: str = f"{PARENT}/queues/q"
    stateful: bool = False  # holds the tasks it is given: purged between rounds
    latency: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)
    throughput_4: list[float] = field(default_factory=list)
    split_4: list[float] = field(default_factory=list)
    sync_client: Any = None


def _cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` (nanosecond counters from /proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that just ended
    return total / 1e9


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout} s")


@contextmanager
def _process(args: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(args, text=True, **popen)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _trivial(stack: ExitStack, spec: dict[str, Any]) -> tuple[int, int]:
    """Start a trivial server; returns (port, pid)."""
    process = stack.enter_context(
        _process([sys.executable, "-c", TRIVIAL_SERVER, json.dumps(spec)], stdout=subprocess.PIPE)
    )
    assert process.stdout is not None
    port = int(process.stdout.readline() or 0)
    if not port:
        raise RuntimeError(f"the trivial server {spec} did not start")
    return port, process.pid


def _go_emulator(stack: ExitStack, binary: str) -> Server:
    path = Path(binary).resolve()
    port = _free_port()
    process = stack.enter_context(
        _process(
            [str(path), "-host", "127.0.0.1", "-port", str(port)],
            cwd=path.parent,  # it reads oidc.key and oidc.cert from its working directory
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    try:
        _wait_listening(port, process)
    except RuntimeError as exc:
        raise RuntimeError(
            f"the Go emulator {path} did not start ({exc}): are oidc.key and oidc.cert beside it?"
        ) from exc
    return Server(GO, f"127.0.0.1:{port}", [process.pid], stateful=True)


def _start_all(stack: ExitStack, go_binary: str | None) -> list[Server]:
    servers = []
    for label, spec in _TRIVIAL_SETUPS:
        port, pid = _trivial(stack, spec)
        servers.append(Server(label, f"127.0.0.1:{port}", [pid]))
    port = _free_port()
    pids = [
        _trivial(stack, {"kind": "aio", "port": port, "options": [["grpc.so_reuseport", 1]]})[1] for _ in "ab"
    ]
    servers.append(Server(PAIR, f"127.0.0.1:{port}", pids))
    process, grpc_address, _ = stack.enter_context(emulator_subprocess())
    servers.append(Server(EMULATOR, grpc_address, [process.pid], stateful=True))
    if go_binary:
        servers.append(_go_emulator(stack, go_binary))
    return servers


def _sync_client(server: Server) -> Any:
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(server.address)
    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    if server.stateful:  # a real emulator: a paused queue, so delivery does not compete with creating
        client.create_queue(parent=PARENT, queue={"name": server.parent})
        client.pause_queue(name=server.parent)
    return client


def _request(parent: str) -> Any:
    from google.cloud import tasks_v2

    return tasks_v2.CreateTaskRequest(parent=parent, task={"http_request": {"url": URL}})


def _sequential(server: Server, calls: int) -> None:
    client, request = server.sync_client, _request(server.parent)
    cpu_before = sum(_cpu_seconds(pid) for pid in server.pids)
    client_before = time.process_time()
    started = time.perf_counter()
    for _ in range(calls):
        client.create_task(request=request)
    elapsed = time.perf_counter() - started
    server.client_cpu.append((time.process_time() - client_before) / calls)
    server.server_cpu.append((sum(_cpu_seconds(pid) for pid in server.pids) - cpu_before) / calls)
    server.latency.append(elapsed / calls)


def _throughput(server: Server, calls: int) -> None:
    server.throughput.append(
        asyncio.run(saturate(server.address, server.parent, calls, warm_up=min(calls, 500)))
    )


def _throughput_4(server: Server, calls: int) -> None:
    before = [_cpu_seconds(pid) for pid in server.pids]
    server.throughput_4.append(
        asyncio.run(saturate(server.address, server.parent, calls, channels=4, warm_up=min(calls, 500)))
    )
    used = [_cpu_seconds(pid) - was for pid, was in zip(server.pids, before, strict=True)]
    server.split_4.append(min(used) / sum(used) if len(used) > 1 and sum(used) else 0.0)


def _purge(server: Server) -> None:
    if server.stateful:
        server.sync_client.purge_queue(name=server.parent)


def _rounds(servers: list[Server], rounds: int, step: Callable[[Server], None]) -> None:
    """``step`` on every server, ``rounds`` times; each round starts one server further along."""
    for number in range(rounds):
        start = number % len(servers)
        for server in servers[start:] + servers[:start]:
            step(server)
            _purge(server)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def run(quick: bool = False) -> list[dict[str, Any]]:
    go_binary = os.environ.get(GO_ENV) or None
    if go_binary and not os.access(go_binary, os.X_OK):
        print(f"  {GO_ENV}={go_binary} is not an executable file: the Go emulator is left out")
        go_binary = None
    if not go_binary:
        print(
            f"  Go emulator skipped: set {GO_ENV} to a binary of aertje/cloud-tasks-emulator (oidc.key and"
            " oidc.cert beside it) to measure it as a peer"
        )
    calls, tput_calls, rounds = (300, 1500, 3) if quick else (1000, 4000, 5)
    with ExitStack() as stack:
        servers = _start_all(stack, go_binary)
        for server in servers:
            server.sync_client = _sync_client(server)
            request = _request(server.parent)
            for _ in range(300):  # warm the channel and both sides' code paths
                server.sync_client.create_task(request=request)
            _purge(server)
        _rounds(servers, rounds, lambda server: _sequential(server, calls))
        _rounds(servers, rounds, lambda server: _throughput(server, tput_calls))
        four = [server for server in servers if server.label in (BASELINE, PAIR)]
        _rounds(four, rounds, lambda server: _throughput_4(server, tput_calls))
        for server in servers:
            server.sync_client.transport.close()
    return _report(servers)


def _paired(values: list[float], baseline: list[float]) -> float:
    """The median over rounds of ``value / baseline`` within each round: slow drift cancels out."""
    return statistics.median(value / base for value, base in zip(values, baseline, strict=True))


def _report(servers: list[Server]) -> list[dict[str, Any]]:
    med = statistics.median
    by_label = {server.label: server for server in servers}
    base = by_label[BASELINE]
    rows = []
    for server in servers:
        latency = med(server.latency)
        rows.append(
            {
                "benchmark": f"stack: sequential CreateTask, official sync client: {server.label}",
                "kit": f"{_ms(latency)}/call (client CPU {_ms(med(server.client_cpu))}, "
                f"server CPU {_ms(med(server.server_cpu))})",
                "official": f"{_ms(med(base.latency))}/call ({BASELINE})",
                "ratio": _paired(server.latency, base.latency),
                "target": "survey (lower is faster)",
                "ok": True,
            }
        )
    for server in servers:
        rate = med(server.throughput)
        rows.append(
            {
                "benchmark": f"stack: CreateTask throughput, 64 in flight, official async client: {server.label}",
                "kit": f"{rate:,.0f} creates/s",
                "official": f"{med(base.throughput):,.0f} creates/s ({BASELINE})",
                "ratio": _paired(server.throughput, base.throughput),
                "target": "survey (higher is faster)",
                "ok": True,
            }
        )
    pair = by_label[PAIR]
    rows.append(
        {
            "benchmark": f"stack: CreateTask throughput, 64 in flight over 4 connections: {PAIR}",
            "kit": f"{med(pair.throughput_4):,.0f} creates/s (the less busy process did "
            f"{med(pair.split_4):.0%} of the server work)",
            "official": f"{med(base.throughput_4):,.0f} creates/s ({BASELINE}, 4 connections)",
            "ratio": _paired(pair.throughput_4, base.throughput_4),
            "target": "survey (higher is faster)",
            "ok": True,
        }
    )
    go = by_label.get(GO)
    if go is not None:
        emulator = by_label[EMULATOR]
        fastest = min(servers, key=lambda server: med(server.latency) if server is not go else float("inf"))
        for label, server in ((EMULATOR, emulator), (f"fastest Python set-up: {fastest.label}", fastest)):
            ratio = _paired(server.latency, go.latency)
            rows.append(
                {
                    "benchmark": f"stack: sequential CreateTask, {label} vs the Go emulator",
                    "kit": f"{_ms(med(server.latency))}/call",
                    "official": f"{_ms(med(go.latency))}/call (Go emulator)",
                    "ratio": ratio,
                    "target": "<= 1.00 (the gap closed)",
                    "ok": ratio <= 1.0,
                }
            )
    return rows
