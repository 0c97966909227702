"""The worker examples run for real: the emulator and the worker as processes, as their READMEs say.

For each of examples/flask_worker, fastapi_worker, django_worker and appengine_worker: start ``python -m
cloudtasks_kit.emulator`` with the example's queue declared (and, for App Engine, ``--app-engine-host``) (free ports, read from its start-up line),
start the worker on a free port with the variables the README gives (no project, no credentials: a
credentials file that does not exist would fail any lookup), enqueue through the app's own endpoint,
and wait for the worker to print that the task ran, once directly and once after a failed first attempt.
Every process is stopped in ``finally``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"CLOUDTASKS_EMULATOR_HOST=(\S+) CLOUDTASKS_EMULATOR_REST_HOST=(\S+)\)")
START_TIMEOUT = 60.0  # generous: a loaded CI machine takes seconds to import Django
RUN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Example:
    name: str
    queue: str
    command: list[str]  # {port} is the worker's port
    path: str  # the app's endpoint that enqueues
    ok: tuple[dict[str, object], str]  # a request body, and what the worker prints once it ran
    flaky: tuple[dict[str, object], str]  # the same for one that fails its first attempt
    app_engine: bool = False  # App Engine tasks: no token, delivered to --app-engine-host


EXAMPLES = [
    Example(
        "flask_worker",
        "emails",
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "examples.flask_worker.worker:create_app",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        "/signup",
        ({"email": "ada@example.com"}, "sent the welcome email to ada@example.com (attempt 1)"),
        ({"email": "bob@flaky.example"}, "sent the welcome email to bob@flaky.example (attempt 2)"),
    ),
    Example(
        "fastapi_worker",
        "thumbnails",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.fastapi_worker.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        "/uploads",
        ({"bucket": "photos", "name": "cat.png"}, "made the thumbnail of photos/cat.png (attempt 1)"),
        ({"bucket": "photos", "name": "flaky.png"}, "made the thumbnail of photos/flaky.png (attempt 2)"),
    ),
    Example(
        "django_worker",
        "reports",
        [
            sys.executable,
            "-m",
            "examples.django_worker.worker",
            "runserver",
            "127.0.0.1:{port}",
            "--noreload",
        ],
        "/reports",
        ({"account_id": 42}, "built the report of account 42 (attempt 1)"),
        ({"account_id": 13}, "built the report of account 13 (attempt 2)"),
    ),
    Example(
        "appengine_worker",
        "thumbnails",
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "examples.appengine_worker.main:create_app",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        "/upload",
        ({"image_id": 7}, "made the 128px thumbnail of image 7 (attempt 1)"),
        ({"image_id": 13}, "made the 128px thumbnail of image 13 (attempt 2)"),
        app_engine=True,
    ),
]


class Process:
    """A child process whose merged output is read line by line in a thread."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float) -> re.Match[str] | str:
        """The first line (from now) matching ``pattern`` (a regex, or a substring)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.lines.empty()):
                raise AssertionError(
                    f"no line with {pattern!r} within {timeout} s; output so far:\n{''.join(self.output)}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if isinstance(pattern, str):
                if pattern in line:
                    return line
            elif found := pattern.search(line):
                return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def free_port() -> int:
    # The worker's URL must be known before it starts (tasks are addressed to it), so the port is picked
    # here; another process could take it in between, which wait_for_port then reports.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, worker: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.proc.returncode}):\n{''.join(worker.output)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the worker did not listen on {port} within {timeout} s:\n{''.join(worker.output)}")


def post(url: str, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=RUN_TIMEOUT) as response:
        assert response.status == 200
        answer: dict[str, object] = json.loads(response.read())
        return answer


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDTASKS_", "GOOGLE_", "CLOUDSDK_", "K_", "GAE_", "FUNCTION_"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # Any credential lookup fails at once: the examples must need none with the emulator.
        GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "no-such-credentials.json"),
        NO_GCE_CHECK="True",
    )
    return env


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_the_example_worker_runs_its_tasks_on_the_emulator(
    example: Example, base_env: dict[str, str]
) -> None:
    processes: list[Process] = []
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}"
    app_engine = ["--app-engine-host", worker_url] if example.app_engine else []
    try:
        emulator = Process(
            [
                sys.executable,
                "-m",
                "cloudtasks_kit.emulator",
                "--port",
                "0",
                "--rest-port",
                "0",
                "--queue",
                example.queue,
                *app_engine,
            ],
            base_env,
        )
        processes.append(emulator)
        ready = emulator.wait_for(READY, START_TIMEOUT)
        assert isinstance(ready, re.Match)
        grpc_host, rest_host = ready.group(1), ready.group(2)

        worker_env = {
            **base_env,
            "CLOUDTASKS_EMULATOR_HOST": grpc_host,
            "CLOUDTASKS_EMULATOR_REST_HOST": rest_host,
            # App Engine tasks carry no token: the worker admits them by their headers, as its README says.
            **(
                {"LOCAL_APP_ENGINE_TASKS": "1"}
                if example.app_engine
                else {"CLOUDTASKS_HANDLER_TRUST_EMULATOR": "1", "WORKER_URL": worker_url}
            ),
        }
        worker = Process([part.replace("{port}", str(port)) for part in example.command], worker_env)
        processes.append(worker)
        wait_for_port(port, worker, START_TIMEOUT)
        app_url = f"http://127.0.0.1:{port}{example.path}"

        for payload, printed in (example.ok, example.flaky):
            assert "task" in post(app_url, payload)
            worker.wait_for(printed, RUN_TIMEOUT)
        # The reader thread keeps lines in order: what came before the last one waited for is there.
        output = "".join(worker.output)
        # The switch said what it trusts, and the flaky task's first attempt failed before its retry ran.
        if not example.app_engine:
            assert f"{rest_host}/certs" in output
        assert "failed on attempt 1" in output
    finally:
        for process in reversed(processes):
            process.stop()
