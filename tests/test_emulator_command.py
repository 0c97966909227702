"""The emulator command as a real process: kill -9 loses no acknowledged create, SIGTERM drains running
deliveries, declared queues are there at start. Ports are ephemeral (read from the start-up line); the
worker is a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

LOCATION = "projects/local-project/locations/us-central1"
QUEUE = f"{LOCATION}/queues/work"
READY = re.compile(r"ready: gRPC (\S+) REST")


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the emulator opens up to a burst's worth of connections at once
    daemon_threads = True


class Worker:
    """A local HTTP server recording each request's body; ``delay`` seconds before it answers 200."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.bodies: list[bytes] = []
        self.received = threading.Event()
        self.answered: list[bytes] = []
        self.lock = threading.Lock()
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with worker.lock:
                    worker.bodies.append(body)
                worker.received.set()
                time.sleep(worker.delay)
                self.send_response(200)
                self.end_headers()
                with worker.lock:
                    worker.answered.append(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/work"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.answered) >= count:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{len(self.answered)} of {count} deliveries after {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker() -> Iterator[Worker]:
    running = Worker()
    yield running
    running.close()


class Process:
    """``python -m cloudtasks_kit.emulator ...`` on ephemeral ports, with the official gRPC client."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudtasks_kit.emulator",
                "--port",
                "0",
                "--rest-port",
                "0",
                "--quiet",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.ready = self.process.stdout.readline()
        match = READY.search(self.ready)
        if match is None:
            self.process.kill()
            _, err = self.process.communicate(timeout=30)
            raise AssertionError(f"no start-up line: {self.ready!r} {err}")
        self.address = match.group(1)
        self.channel = grpc.insecure_channel(self.address)
        self.client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=self.channel))

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=30)
        self.channel.close()

    def terminate(self, timeout: float = 30) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=timeout)
        self.channel.close()
        return self.process.returncode, out, err

    def all_tasks(self) -> list[tasks_v2.Task]:
        request = tasks_v2.ListTasksRequest(
            parent=QUEUE, response_view=tasks_v2.Task.View.FULL, page_size=1000
        )
        return list(self.client.list_tasks(request=request))


def create_until_killed(
    process: Process, url: str, count: int, kill_after: int, threads: int
) -> tuple[list[int], Callable[[], None]]:
    """Create ``count`` tasks (body = their number) from ``threads`` threads; kill -9 the emulator once
    ``kill_after`` were acknowledged. Returns the acknowledged numbers."""
    acknowledged: list[int] = []
    lock = threading.Lock()
    numbers = iter(range(count))
    killed = threading.Event()

    def create() -> None:
        while not killed.is_set():
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            task = {"http_request": {"url": url, "body": str(n).encode()}}
            try:
                process.client.create_task(parent=QUEUE, task=task, timeout=10)
            except core.GoogleAPICallError:
                return  # the emulator is gone: this create was never acknowledged
            with lock:
                acknowledged.append(n)
                if len(acknowledged) == kill_after and not killed.is_set():
                    killed.set()
                    os.kill(process.process.pid, signal.SIGKILL)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for thread in workers:
        thread.start()

    def join() -> None:
        for thread in workers:
            thread.join(timeout=120)

    return acknowledged, join


def kill_and_restart(tmp_path: Path, worker: Worker, count: int, threads: int) -> dict[str, int]:
    data = str(tmp_path / "data")
    first = Process("--data-dir", data, "--queue", "work")
    first.client.pause_queue(name=QUEUE)  # nothing is delivered before the kill: every task must be kept
    acknowledged, join = create_until_killed(first, worker.url, count, kill_after=count // 2, threads=threads)
    join()
    first.process.communicate(timeout=30)
    first.channel.close()
    assert first.process.returncode == -signal.SIGKILL

    second = Process("--data-dir", data, "--queue", "work")
    try:
        assert "tasks restored" in second.ready
        present = Counter(int(t.http_request.body) for t in second.all_tasks())
        duplicates = sum(n - 1 for n in present.values() if n > 1)
        missing = [n for n in acknowledged if present[n] == 0]
        second.client.update_queue(
            queue={"name": QUEUE, "rate_limits": {"max_dispatches_per_second": 500}},
            update_mask={"paths": ["rate_limits.max_dispatches_per_second"]},
        )
        second.client.resume_queue(name=QUEUE)
        worker.wait_for(len(present), timeout=60 + len(present) / 100)
        delivered = Counter(int(body) for body in worker.answered)
        code, _, err = second.terminate()
        assert code == 0, err
    finally:
        if second.process.poll() is None:
            second.kill()
    figures = {
        "acknowledged": len(acknowledged),
        "present after restart": sum(present[n] > 0 for n in acknowledged),
        "extra (committed, answer lost)": len(present) - len(set(acknowledged) & set(present)),
        "duplicates": duplicates,
        "delivered (of the acknowledged)": sum(delivered[n] > 0 for n in acknowledged),
        "delivered twice": sum(1 for n in delivered.values() if n > 1),
    }
    print(f"\nkill -9 after {count // 2} of {count} creates ({threads} threads): {figures}")
    assert missing == []
    assert duplicates == 0
    assert figures["delivered (of the acknowledged)"] == len(acknowledged)
    assert figures["delivered twice"] == 0
    assert figures["extra (committed, answer lost)"] <= threads  # at most one create in flight per thread
    return figures


def test_kill_9_loses_no_acknowledged_create(tmp_path: Path, worker: Worker) -> None:
    # The 10,000-create version: python benchmarks/run.py durability
    kill_and_restart(tmp_path, worker, count=300, threads=3)


def test_sigterm_lets_a_running_delivery_finish(tmp_path: Path) -> None:
    slow = Worker(delay=1.0)
    try:
        data = str(tmp_path / "data")
        process = Process("--data-dir", data, "--queue", "work", "--grace", "5")
        process.client.create_task(parent=QUEUE, task={"http_request": {"url": slow.url, "body": b"drain"}})
        assert slow.received.wait(10)
        code, out, err = process.terminate()
        assert code == 0, err
        assert slow.answered == [b"drain"]  # it finished before the emulator exited
        assert "1 deliveries running" in out and "stopped" in out
        again = Process("--data-dir", data)
        try:
            assert again.all_tasks() == []  # it succeeded, so it is gone for good
        finally:
            again.terminate()
    finally:
        slow.close()


@pytest.mark.slow
def test_sigterm_abandons_a_delivery_past_the_grace_and_it_is_due_again(tmp_path: Path) -> None:
    slow = Worker(delay=3.0)
    try:
        data = str(tmp_path / "data")
        process = Process("--data-dir", data, "--queue", "work", "--grace", "0.2")
        process.client.create_task(parent=QUEUE, task={"http_request": {"url": slow.url, "body": b"cut"}})
        assert slow.received.wait(10)
        started = time.monotonic()
        code, _, err = process.terminate()
        assert code == 0, err
        assert time.monotonic() - started < 2.5
        again = Process("--data-dir", data)
        try:
            deadline = time.monotonic() + 10
            while len(slow.bodies) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.bodies == [b"cut", b"cut"]  # unfinished, so due again at once
            (task,) = again.all_tasks()
            assert task.dispatch_count == 2  # the cut attempt counts: this one is retry 1
        finally:
            again.terminate()
    finally:
        slow.close()


def test_declared_queues_are_ready_and_kept_idempotently(tmp_path: Path) -> None:
    config = tmp_path / "emulator.toml"
    config.write_text(
        'project = "proj"\n'
        "[queues.emails]\n"
        "rate_limits = { max_dispatches_per_second = 5 }\n"
        "retry_config = { max_attempts = 7 }\n"
        "[queues.emails.http_target]\n"
        'uri_override = { host = "127.0.0.1", port = 8000 }\n'
    )
    data = str(tmp_path / "data")
    args = (
        "--data-dir",
        data,
        "--config",
        str(config),
        "--queue",
        "plain",
        "--queue",
        f"{LOCATION}/queues/full",
    )
    first = Process(*args)
    try:
        names = sorted(q.name for q in first.client.list_queues(parent="projects/proj/locations/us-central1"))
        assert names == [
            "projects/proj/locations/us-central1/queues/emails",
            "projects/proj/locations/us-central1/queues/plain",
        ]
        assert first.client.get_queue(name=f"{LOCATION}/queues/full").state == tasks_v2.Queue.State.RUNNING
        emails = first.client.get_queue(name="projects/proj/locations/us-central1/queues/emails")
        assert emails.rate_limits.max_dispatches_per_second == 5
        assert emails.retry_config.max_attempts == 7
        assert emails.http_target.uri_override.port == 8000
        first.client.pause_queue(name="projects/proj/locations/us-central1/queues/plain")
    finally:
        first.terminate()
    config.write_text(config.read_text().replace("max_attempts = 7", "max_attempts = 9"))
    second = Process(*args)
    try:
        emails = second.client.get_queue(name="projects/proj/locations/us-central1/queues/emails")
        assert emails.retry_config.max_attempts == 9  # the declared settings win at each start
        plain = second.client.get_queue(name="projects/proj/locations/us-central1/queues/plain")
        assert plain.state == tasks_v2.Queue.State.PAUSED  # a queue declared by name is left as it was
    finally:
        code, _, err = second.terminate()
    assert code == 0 and "queue projects/proj/locations/us-central1/queues/emails updated" in err


def test_auto_create_queues_on_the_command_line(worker: Worker) -> None:
    process = Process("--auto-create-queues")
    try:
        process.client.create_task(parent=QUEUE, task={"http_request": {"url": worker.url, "body": b"x"}})
        worker.wait_for(1, timeout=10)
    finally:
        process.terminate()
    plain = Process()
    try:
        with pytest.raises(core.NotFound):
            plain.client.create_task(parent=QUEUE, task={"http_request": {"url": worker.url}})
        assert "state: in memory (pass --data-dir to keep it across restarts)" in plain.ready
    finally:
        plain.terminate()
