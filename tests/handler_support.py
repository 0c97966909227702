"""Helpers for the handler's hardening and fuzz tests: calling the WSGI and ASGI faces directly, with
streams that count what is read, and a local certificates server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import cloudtasks_kit as kit
from cloudtasks_kit.engine.tokens import TokenSigner

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
BASE = "https://worker.test"
ENVELOPE = b'{"v": 1, "task": "job", "args": {"n": 1}}'
# What an App Engine delivery carries instead of a token (creating-appengine-handlers, "Reading App
# Engine task request headers").
AE_HEADERS = {
    "X-AppEngine-QueueName": "emails",
    "X-AppEngine-TaskName": "t-7",
    "X-AppEngine-TaskRetryCount": "2",
    "X-AppEngine-TaskExecutionCount": "1",
    "X-AppEngine-TaskETA": "1700000000.5",
    "X-AppEngine-TaskPreviousResponse": "503",
    "X-AppEngine-TaskRetryReason": "",
}


def job_app() -> tuple[kit.TaskApp, list[int]]:
    """An app with one task function, ``job(n: int)``, that records its calls."""
    app = kit.TaskApp(base_url=BASE, oidc=kit.OidcToken(service_account_email=ACCOUNT))
    calls: list[int] = []

    @app.task
    def job(n: int) -> None:
        calls.append(n)

    return app, calls


def bearer(signer: TokenSigner, audience: str = BASE) -> str:
    return "Bearer " + signer.oidc_token(service_account_email=ACCOUNT, audience=audience)


class CountingStream(io.RawIOBase):
    """A wsgi.input of ``size`` bytes of ``fill`` that counts the bytes read from it."""

    def __init__(self, data: bytes = b"", size: int | None = None, fill: bytes = b"x") -> None:
        self.data = data
        self.size = len(data) if size is None else size
        self.fill = fill
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        start = self.read_bytes
        self.read_bytes += n
        if start < len(self.data):
            chunk = self.data[start : start + n]
            return chunk + self.fill * (n - len(chunk))
        return self.fill * n


class Answer:
    """What a face answered."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def call_wsgi(
    handler: kit.TaskHandler,
    *,
    method: str = "POST",
    path: str = "/tasks/job",
    headers: dict[str, str] | None = None,
    stream: CountingStream | None = None,
    content_length: str | None = None,
    terminated: bool = False,
) -> Answer:
    stream = stream or CountingStream()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "wsgi.input": stream,
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    if terminated:
        environ["wsgi.input_terminated"] = True
    for name, value in (headers or {}).items():
        # PEP 3333: header bytes reach the application decoded as latin-1.
        environ["HTTP_" + name.upper().replace("-", "_")] = value.encode("utf-8").decode("latin-1")
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split(maxsplit=1)[0])
        seen["headers"] = dict(response_headers)

    body = b"".join(handler.wsgi(environ, start_response))
    return Answer(seen["status"], seen["headers"], body)


class AsgiBody:
    """An ASGI receive() handing out ``chunks``, counting the messages taken."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        if self.taken >= len(self.chunks):
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.taken]
        self.taken += 1
        return {"type": "http.request", "body": chunk, "more_body": self.taken < len(self.chunks)}


async def call_asgi(
    handler: kit.TaskHandler,
    *,
    method: str = "POST",
    path: str = "/tasks/job",
    headers: dict[str, str] | None = None,
    receive: AsgiBody | None = None,
) -> Answer | None:
    receive = receive or AsgiBody([b""])
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in (headers or {}).items()],
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await handler.asgi(scope, receive, send)
    if not sent:
        return None
    start = sent[0]
    return Answer(
        start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, sent[1].get("body", b"")
    )


def run_asgi(handler: kit.TaskHandler, **kwargs: Any) -> Answer | None:
    return asyncio.run(call_asgi(handler, **kwargs))


class CertsServer:
    """A certificates server on 127.0.0.1 (ephemeral port): answers ``body`` with ``status`` after
    ``delay`` seconds, or waits on ``gate``; counts the requests it served."""

    def __init__(self, body: bytes = b"{}", status: int = 200, delay: float = 0.0) -> None:
        self.body = body
        self.status = status
        self.delay = delay
        self.gate: threading.Event | None = None
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if outer.gate is not None:
                    outer.gate.wait(30)
                if outer.delay:
                    time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left is what some tests are about

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CertsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def certs_server(body: bytes = b"{}", status: int = 200, delay: float = 0.0) -> Iterator[CertsServer]:
    with CertsServer(body, status, delay) as server:
        yield server


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/certs"
