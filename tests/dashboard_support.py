"""Shared by the dashboard's tests: a local worker that answers a script of statuses, and plain HTTP
helpers (no redirects followed, so a test sees the 303 an action answers)."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

HOSTILE = "<script>alert('x')</script>"


class Worker:
    """An HTTP worker on 127.0.0.1: answers each request with the next status of ``script`` (then 200);
    a 503 carries ``Retry-After: retry_after``."""

    def __init__(self, script: list[int] | None = None, retry_after: int = 1) -> None:
        self.script = list(script or [])
        self.fail_paths = "/fail"
        """Requests to paths starting with this always get 500."""
        self.requests: list[str] = []
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                worker.requests.append(self.path)
                if self.path.startswith(worker.fail_paths):
                    status = 500
                else:
                    status = worker.script.pop(0) if worker.script else 200
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def worker(script: list[int] | None = None, retry_after: int = 1) -> Iterator[Worker]:
    running = Worker(script, retry_after)
    try:
        yield running
    finally:
        running.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(
    url: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """``(status, headers, body)`` of a GET, or of a form POST when ``data`` is given."""
    body = None if data is None else urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, "the page has no action forms"
    return match.group(1)


def first_event(url: str) -> str:
    """The data of the first ``update`` event of a server-sent event stream."""
    with urllib.request.urlopen(url, timeout=10) as response:
        lines: list[str] = []
        event = ""
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                lines.append(line[6:])
            elif not line and event == "update":
                return "\n".join(lines)
            elif not line:
                lines, event = [], ""
    raise AssertionError("the stream ended without an update")
