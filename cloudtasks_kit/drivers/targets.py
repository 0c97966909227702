"""Where the deterministic driver sends an attempt: a WSGI app, an ASGI app, a callable, or real HTTP.

Each target is a callable ``target(attempt) -> TargetResponse``; raising means "no answer" (the
attempt fails without a status, like a reset connection), and an in-process target that takes longer
than the task's dispatch deadline (in real seconds), or raises :class:`TimeoutError`, timed out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..engine.attempts import AttemptRequest, AttemptResult, parse_retry_after

__all__ = [
    "ASGITarget",
    "CallableTarget",
    "HTTPTarget",
    "Target",
    "TargetResponse",
    "WSGITarget",
    "result_of",
]


@dataclasses.dataclass(frozen=True)
class TargetResponse:
    """What a target answered."""

    status: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""


class Target(Protocol):
    def __call__(self, attempt: AttemptRequest) -> TargetResponse: ...


def result_of(
    attempt: AttemptRequest, target: Target, *, now: float, max_retry_after: float
) -> AttemptResult:
    """Send ``attempt`` to ``target`` and say what the engine should record.

    A target that raises :class:`TimeoutError`, or answers after the dispatch deadline (real seconds),
    timed out; one that raises anything else gave no answer, like a reset connection.
    """
    started = time.monotonic()
    try:
        response = target(attempt)
    except TimeoutError:
        return AttemptResult(None, error="DEADLINE_EXCEEDED")
    except Exception as exc:
        return AttemptResult(None, error=f"UNREACHABLE: {type(exc).__name__}: {exc}")
    if time.monotonic() - started > attempt.deadline:
        return AttemptResult(None, error="DEADLINE_EXCEEDED", body=response.body)
    header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
    retry_after = parse_retry_after(header, now=now, maximum=max_retry_after)
    return AttemptResult(response.status, retry_after=retry_after, body=response.body)


class CallableTarget:
    """A plain function: ``fn(attempt)`` returns a status code, a :class:`TargetResponse`, or None (200).

    Example:
        ``fake.deliver_to(CallableTarget(lambda d: 503 if d.retry_count < 2 else 200))``
    """

    def __init__(self, fn: Callable[[AttemptRequest], int | TargetResponse | None]) -> None:
        self.fn = fn

    def __call__(self, attempt: AttemptRequest) -> TargetResponse:
        result = self.fn(attempt)
        if result is None:
            return TargetResponse(200)
        if isinstance(result, int):
            return TargetResponse(result)
        return result


class WSGITarget:
    """A WSGI app (Flask, Django, the kit's own handler), called in process."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, attempt: AttemptRequest) -> TargetResponse:
        parts = urlsplit(attempt.url)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": attempt.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(parts.path or "/"),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": parts.hostname or "localhost",
            "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": parts.netloc,
            "CONTENT_LENGTH": str(len(attempt.body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": io.BytesIO(attempt.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in attempt.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status_line, headers = started
        return TargetResponse(int(status_line.split(" ", 1)[0]), dict(headers), b"".join(chunks))


class ASGITarget:
    """An ASGI app (FastAPI, Starlette, the kit's own handler), called in process on a private event loop
    in a background thread, so it works from sync tests and async ones alike."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="cloudtasks-kit-asgi", daemon=True).start()
                self._loop = loop
            return self._loop

    def __call__(self, attempt: AttemptRequest) -> TargetResponse:
        future = asyncio.run_coroutine_threadsafe(self._call(attempt), self._get_loop())
        try:
            return future.result(timeout=attempt.deadline)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {attempt.deadline} s") from None

    async def _call(self, attempt: AttemptRequest) -> TargetResponse:
        parts = urlsplit(attempt.url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": attempt.method,
            "scheme": parts.scheme or "http",
            "path": unquote(parts.path or "/"),
            "raw_path": (parts.path or "/").encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in attempt.headers.items()
            ]
            + [(b"content-length", str(len(attempt.body)).encode()), (b"host", parts.netloc.encode())],
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "localhost", parts.port or (443 if parts.scheme == "https" else 80)),
        }
        sent_body = False
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": attempt.body, "more_body": False}
            await asyncio.Event().wait()  # nothing more: wait to be cancelled, like an idle client
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.update(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return TargetResponse(status, headers, b"".join(chunks))


class HTTPTarget:
    """Real HTTP to each task's URL, with the dispatch deadline as the timeout; redirects are not followed
    (Cloud Tasks treats a 3xx as a failure)."""

    def __init__(self) -> None:
        import requests

        self._session = requests.Session()

    def __call__(self, attempt: AttemptRequest) -> TargetResponse:
        import requests

        try:
            response = self._session.request(
                attempt.method,
                attempt.url,
                headers=attempt.headers,
                data=attempt.body,
                timeout=attempt.deadline,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise TimeoutError(f"no answer within {attempt.deadline} s") from None
        return TargetResponse(response.status_code, dict(response.headers), response.content)
