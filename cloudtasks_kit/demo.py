"""``cloudtasks-kit demo``: the emulator, a worker built with the kit's decorator and handler, four tasks.

No Google account needed. Every task carries an OIDC token signed by the emulator, which the worker's
``TaskHandler`` verifies against the emulator's certificates exactly as a Cloud Run handler verifies
Google's. Each delivery is printed as it happens, then a summary; the exit status is 0 when all four
tasks were delivered as expected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from . import OidcToken, RetryConfig, TaskApp, TaskHandler, task_context

__all__ = ["run_demo"]

SERVICE_ACCOUNT = "demo-tasks@local-project.iam.gserviceaccount.com"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def build_tasks(base_url: str, done: dict[str, int]) -> TaskApp:
    """The demo's task functions."""
    app = TaskApp(base_url=base_url, queue="demo", oidc=OidcToken(service_account_email=SERVICE_ACCOUNT))

    def finished(name: str) -> None:
        done[name] = task_context().retry_count + 1

    @app.task
    def hello(greeting: str) -> None:
        finished("hello")

    @app.task
    def later(greeting: str) -> None:
        finished("later")

    @app.task
    def flaky(job: str) -> None:
        if task_context().retry_count < 2:
            raise RuntimeError("failing on purpose")
        finished("flaky")

    @app.task
    def secure(job: str) -> None:
        token = task_context().token
        assert token is not None
        finished("secure")

    return app


class _Printer:
    """WSGI middleware that prints each request the worker gets and what it answered."""

    def __init__(self, app: Callable[..., Iterable[bytes]], started: float) -> None:
        self.app = app
        self.started = started
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen: list[str] = []

        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, record))
        retry = environ.get("HTTP_X_CLOUDTASKS_TASKRETRYCOUNT")
        attempt = f"attempt {int(retry) + 1}" if retry and retry.isdigit() else "no Cloud Tasks headers"
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = "OIDC token verified" if seen[0] != "401" and auth else ("no token" if not auth else "token")
        previous = environ.get("HTTP_X_CLOUDTASKS_TASKPREVIOUSRESPONSE")
        note = f", previous response {previous}" if previous else ""
        with self.lock:
            print(
                f"[{time.monotonic() - self.started:5.1f}s] {environ['PATH_INFO']:<14} {attempt}: "
                f"{seen[0]}  ({token}{note})",
                flush=True,
            )
        return [body]


def run_demo(*, timeout: float = 60.0) -> int:
    """Run the demo; 0 when the four tasks were delivered as expected, 1 otherwise."""
    from .emulator import Emulator

    started = time.monotonic()
    done: dict[str, int] = {}
    with Emulator() as emulator:
        server = make_server(
            "127.0.0.1", 0, lambda e, s: [], server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        app = build_tasks(base_url, done)
        handler = TaskHandler(app, certs_url=emulator.certs_url)
        server.set_app(_Printer(handler.wsgi, started))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"emulator: gRPC {emulator.grpc_address}, REST {emulator.rest_url}; worker: {base_url}")
        try:
            with emulator.client() as client:
                client.queue("demo").ensure(
                    retry=RetryConfig(min_backoff=timedelta(seconds=0.5), max_backoff=timedelta(seconds=2))
                )
                app.bind(client)
                print("enqueuing 4 tasks with @app.task functions; deliveries:")
                tasks = app.tasks
                tasks["hello"].enqueue("hello")
                tasks["later"].options(delay=timedelta(seconds=3)).enqueue("three seconds later")
                tasks["flaky"].enqueue("flaky")
                tasks["secure"].enqueue("secure")
                forged = requests.post(
                    f"{base_url}/tasks/secure",
                    json={"v": 1, "task": "secure", "args": {"job": "x"}},
                    timeout=10,
                )
                print(
                    f"a forged request without a token got {forged.status_code}: the task function never ran"
                )
                deadline = time.monotonic() + timeout
                while len(done) < 4 and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            server.shutdown()
    expected = {"hello": 1, "later": 1, "flaky": 3, "secure": 1}
    print("summary:")
    for name, attempts in expected.items():
        got = done.get(name)
        state = f"delivered after {got} attempt(s)" if got else "NOT delivered"
        print(f"  {name:<7} {state} (expected {attempts})")
    ok = done == expected and forged.status_code == 401
    print(
        "demo finished: all tasks delivered" if ok else "demo FAILED", f"in {time.monotonic() - started:.1f}s"
    )
    return 0 if ok else 1
