"""The receiving side: verify the request, route it to the task function, decode its arguments, run it,
and answer so Cloud Tasks does the right thing.

    handler = TaskHandler(app)                # verifies OIDC tokens with Google's certificates
    wsgi_app = handler.wsgi                   # Flask, Django, gunicorn...
    asgi_app = handler.asgi                   # FastAPI/Starlette (app.mount), uvicorn, Cloud Run

What each request gets:

======================================  ======  ============================================
situation                               status  Cloud Tasks then
======================================  ======  ============================================
the function returned                   200     deletes the task
the function raised ``GiveUp``          200     deletes the task (the reason is logged)
the function raised ``RetryLater``      503     retries, not before its Retry-After
the function raised anything else       500     retries per the queue's retry config
no token, or a token that fails         401     retries (the function never ran)
an unknown route                        404     retries
not a POST                              405     retries
a body that is not a task envelope      400     retries
arguments that fail validation          422     retries
======================================  ======  ============================================

Every non-2xx is retried by Cloud Tasks until the queue's retry config gives up; 4xx answers are logged
with the task id so a bad deploy is visible. ``X-CloudTasks-*`` headers are read only after the request
is authenticated, and an unverified request never reaches a task function.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pydantic

from .app import TaskApp, TaskFunction
from .context import GiveUp, RetryLater, TaskContext, _current
from .errors import UsageError
from .payload import EnvelopeError, decode_envelope
from .verify import GOOGLE_CERTS_URL, AuthError, TokenVerifier, VerifiedToken

__all__ = ["HandlerResponse", "TaskHandler"]

log = logging.getLogger("cloudtasks_kit.handler")


@dataclasses.dataclass(frozen=True)
class HandlerResponse:
    """What the handler answers: a status, headers and a small JSON body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def json(
        cls, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> HandlerResponse:
        return cls(
            status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()
        )


@dataclasses.dataclass(frozen=True)
class _Ready:
    function: TaskFunction[Any, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    context: TaskContext


class TaskHandler:
    """Runs a :class:`TaskApp`'s task functions for Cloud Tasks requests.

    Args:
        app: the task app whose functions this worker runs.
        verifier: how to check each request's OIDC token; by default ``app.verifier(...)`` with Google's
            certificates (or ``certs_url``/``certs``: the emulator's, the fake's).
        verify: ``False`` switches verification off, for local use only; the handler then trusts any
            request, and logs a warning once.
    """

    def __init__(
        self,
        app: TaskApp,
        *,
        verifier: TokenVerifier | None = None,
        verify: bool = True,
        certs_url: str = GOOGLE_CERTS_URL,
        certs: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        if not verify:
            if verifier is not None:
                raise UsageError("TaskHandler got a verifier and verify=False; choose one")
            log.warning("TaskHandler is not verifying tokens: anyone who can reach it can run tasks")
            self.verifier: TokenVerifier | None = None
        else:
            self.verifier = verifier or app.verifier(certs_url=certs_url, certs=certs)

    # The steps, shared by the sync and async ways in.

    def _admit(
        self,
        token: VerifiedToken | HandlerResponse | None,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Ready | HandlerResponse:
        """What authentication said, then everything up to calling the function."""
        if isinstance(token, HandlerResponse):
            return token
        return self._prepare(path, headers, body, token)

    def _prepare(
        self, path: str, headers: Mapping[str, str], body: bytes, token: VerifiedToken | None
    ) -> _Ready | HandlerResponse:
        context = TaskContext.from_headers(headers, token)
        function = self._route(path)
        if function is None:
            return self._refuse(404, "no task function is served at this path", context, path=path)
        try:
            name, raw = decode_envelope(body)
        except EnvelopeError as exc:
            return self._refuse(400, str(exc), context, task=function.name)
        if name != function.name:
            return self._refuse(400, f"the envelope is for task {name!r}, not {function.name!r}", context)
        try:
            args, kwargs = function.codec.load(raw)
        except pydantic.ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            return self._refuse(422, f"arguments of {function.name} are not valid: {detail}", context)
        return _Ready(function, args, kwargs, context)

    def _route(self, path: str) -> TaskFunction[Any, Any] | None:
        routes = self.app.routes
        trimmed = path.rstrip("/")
        found = routes.get(path) or routes.get(trimmed)
        if found is not None or not trimmed.startswith("/"):
            return found
        # Mounted under a path of its own (app.mount("/tasks", ...)), the framework may pass only the rest.
        return next((function for route, function in routes.items() if route.endswith(trimmed)), None)

    def _refuse(self, status: int, reason: str, context: TaskContext, **details: str) -> HandlerResponse:
        extra = "".join(f" {k}={v!r}" for k, v in details.items())
        log.warning(
            "refused task %r (queue %r) with %d: %s%s", context.task_id, context.queue, status, reason, extra
        )
        return HandlerResponse.json(status, {"error": reason})

    def _authenticate(
        self, method: str, headers: Mapping[str, str]
    ) -> VerifiedToken | HandlerResponse | None:
        if method.upper() != "POST":
            return HandlerResponse.json(405, {"error": "task requests are POSTs"}, {"Allow": "POST"})
        if self.verifier is None:
            return None
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        try:
            return self.verifier.verify(authorization)
        except AuthError as exc:
            log.warning("refused an unauthenticated task request: %s", exc)
            return HandlerResponse.json(
                401, {"error": f"unauthenticated: {type(exc).__name__}"}, {"WWW-Authenticate": "Bearer"}
            )

    def _outcome(self, ready: _Ready, error: BaseException | None) -> HandlerResponse:
        context = ready.context
        if error is None:
            return HandlerResponse.json(200, {"ok": True})
        if isinstance(error, GiveUp):
            log.warning("task %r (%s) gave up: %s", context.task_id, ready.function.name, error.reason)
            return HandlerResponse.json(200, {"gave_up": error.reason})
        if isinstance(error, RetryLater):
            headers = {"Retry-After": str(math.ceil(error.after))} if error.after is not None else {}
            return HandlerResponse.json(503, {"retry": error.reason or "retry later"}, headers)
        log.error(
            "task %r (%s) failed on attempt %d",
            context.task_id,
            ready.function.name,
            context.retry_count + 1,
            exc_info=error,
        )
        return HandlerResponse.json(500, {"error": f"{type(error).__name__} in {ready.function.name}"})

    # Sync.

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HandlerResponse:
        """Handle one request; async task functions run to completion on an event loop of their own."""
        ready = self._admit(self._authenticate(method, headers), path, headers, body)
        if isinstance(ready, HandlerResponse):
            return ready
        reset = _current.set(ready.context)
        try:
            result = ready.function.fn(*ready.args, **ready.kwargs)
            if ready.function.is_async:
                _run_coroutine(result, ready.context)
        except Exception as exc:
            return self._outcome(ready, exc)
        finally:
            _current.reset(reset)
        return self._outcome(ready, None)

    @property
    def wsgi(self) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
        """The handler as a WSGI application."""

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            headers = {
                key[5:].replace("_", "-").title(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            if environ.get("CONTENT_TYPE"):
                headers["Content-Type"] = environ["CONTENT_TYPE"]
            body = _read_wsgi_body(environ)
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            response = self.handle(environ.get("REQUEST_METHOD", "GET"), path, headers, body)
            start_response(
                f"{response.status} {_REASONS.get(response.status, 'Status')}", list(response.headers.items())
            )
            return [response.body]

        return application

    # Async.

    async def ahandle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> HandlerResponse:
        """Handle one request on the running loop; sync task functions run in a worker thread."""
        if self.verifier is not None and self.verifier.needs_fetch():  # fetching certificates blocks
            token = await asyncio.to_thread(self._authenticate, method, headers)
        else:
            token = self._authenticate(method, headers)
        ready = self._admit(token, path, headers, body)
        if isinstance(ready, HandlerResponse):
            return ready
        reset = _current.set(ready.context)
        try:
            if ready.function.is_async:
                await ready.function.fn(*ready.args, **ready.kwargs)
            else:
                await asyncio.to_thread(ready.function.fn, *ready.args, **ready.kwargs)
        except Exception as exc:
            return self._outcome(ready, exc)
        finally:
            _current.reset(reset)
        return self._outcome(ready, None)

    @property
    def asgi(
        self,
    ) -> Callable[
        [
            dict[str, Any],
            Callable[[], Awaitable[dict[str, Any]]],
            Callable[[dict[str, Any]], Awaitable[None]],
        ],
        Awaitable[None],
    ]:
        """The handler as an ASGI application (HTTP; lifespan events are acknowledged)."""

        async def application(
            scope: dict[str, Any],
            receive: Callable[[], Awaitable[dict[str, Any]]],
            send: Callable[[dict[str, Any]], Awaitable[None]],
        ) -> None:
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            if scope["type"] != "http":
                return
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            response = await self.ahandle(scope["method"], scope["path"], headers, b"".join(chunks))
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in response.headers.items()],
                }
            )
            await send({"type": "http.response.body", "body": response.body})

        return application


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _read_wsgi_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _run_coroutine(coroutine: Any, context: TaskContext) -> None:
    """Run an async task function from sync code, even where this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    failure: list[BaseException] = []

    def run() -> None:
        _current.set(context)
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="cloudtasks-kit-task")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
