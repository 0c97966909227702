"""``cloudtasks-kit demo``: the emulator, a local worker, four tasks, every delivery printed.

No Google account needed. The worker verifies OIDC tokens against the emulator's certificates exactly
as a Cloud Run handler verifies Google's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import OidcToken, RetryConfig
from .verify import AuthError, TokenVerifier

__all__ = ["run_demo"]

SERVICE_ACCOUNT = "demo-tasks@local-project.iam.gserviceaccount.com"
_SHOWN_HEADERS = (
    "X-CloudTasks-TaskRetryCount",
    "X-CloudTasks-TaskExecutionCount",
    "X-CloudTasks-TaskPreviousResponse",
)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class DemoWorker:
    """A small WSGI worker: ``/hello``, ``/later``, ``/flaky`` (fails twice) and ``/secure`` (OIDC)."""

    def __init__(self, verifier_factory: Callable[[str], TokenVerifier], started: float) -> None:
        self._verifier_factory = verifier_factory
        self._started = started
        self._flaky_calls = 0
        self._lock = threading.Lock()
        self.done: dict[str, int] = {}
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, note = self._handle(path, environ, body)
        retry = headers.get("X-Cloudtasks-Taskretrycount", "?")
        shown = ", ".join(f"{h.split('-', 2)[-1]}={headers.get(h.title(), '-')}" for h in _SHOWN_HEADERS)
        print(
            f"[{time.monotonic() - self._started:5.1f}s] {path:<8} attempt {int(retry) + 1}: {status}  ({shown}){note}",
            flush=True,
        )
        if status < 300:
            with self._lock:
                self.done[path] = int(retry) + 1
        start_response(f"{status} {'OK' if status < 300 else 'Error'}", [("Content-Type", "text/plain")])
        return [b"ok" if status < 300 else b"try again"]

    def _handle(self, path: str, environ: dict[str, Any], body: bytes) -> tuple[int, str]:
        if path == "/flaky":
            with self._lock:
                self._flaky_calls += 1
                calls = self._flaky_calls
            return (503, "  <- failing on purpose") if calls <= 2 else (200, "")
        if path == "/secure":
            try:
                claims = self._verifier_factory(self.url + path).verify(environ.get("HTTP_AUTHORIZATION"))
            except AuthError as exc:
                return 401, f"  <- token rejected: {exc}"
            return 200, f"  <- OIDC token verified for {claims.email}"
        if path in ("/hello", "/later"):
            return 200, f"  <- {json.loads(body or b'null')}"
        return 404, "  <- unknown path"


def run_demo(*, timeout: float = 60.0) -> int:
    """Run the demo; 0 when the four tasks were delivered, 1 otherwise."""
    from .emulator import Emulator

    started = time.monotonic()
    with Emulator() as emulator:

        def verifier(audience: str) -> TokenVerifier:
            return TokenVerifier(
                audience=audience, service_accounts=[SERVICE_ACCOUNT], certs_url=emulator.certs_url
            )

        worker = DemoWorker(verifier, started)
        server = make_server(
            "127.0.0.1", 0, worker, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        worker.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"emulator: gRPC {emulator.grpc_address}, REST {emulator.rest_url}; worker: {worker.url}")
        try:
            with emulator.client() as tasks:
                queue = tasks.queue("demo")
                queue.ensure(
                    retry=RetryConfig(min_backoff=timedelta(seconds=0.5), max_backoff=timedelta(seconds=2))
                )
                print("enqueuing 4 tasks on queue 'demo' through the kit; deliveries:")
                queue.create_task(worker.url + "/hello", json={"greeting": "hello"})
                queue.create_task(
                    worker.url + "/later",
                    json={"greeting": "three seconds later"},
                    delay=timedelta(seconds=3),
                )
                queue.create_task(worker.url + "/flaky", json={"job": "flaky"})
                queue.create_task(
                    worker.url + "/secure",
                    json={"job": "secure"},
                    oidc=OidcToken(service_account_email=SERVICE_ACCOUNT),
                )
                deadline = time.monotonic() + timeout
                while len(worker.done) < 4 and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            server.shutdown()
    expected = {"/hello": 1, "/later": 1, "/flaky": 3, "/secure": 1}
    print("summary:")
    for path, attempts in expected.items():
        got = worker.done.get(path)
        state = f"delivered after {got} attempt(s)" if got else "NOT delivered"
        print(f"  {path:<8} {state} (expected {attempts})")
    ok = worker.done == expected
    print(
        "demo finished: all tasks delivered" if ok else "demo FAILED", f"in {time.monotonic() - started:.1f}s"
    )
    return 0 if ok else 1
