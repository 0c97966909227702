"""The receiving side: verify the request, route it to the task function, decode its arguments, run it,
and answer so Cloud Tasks does the right thing.

    handler = TaskHandler(app)                # verifies OIDC tokens with Google's certificates
    wsgi_app = handler.wsgi                   # Flask, Django, gunicorn...
    asgi_app = handler.asgi                   # FastAPI/Starlette (app.mount), uvicorn, Cloud Run

What each request gets, checked in this order (the body is read only after the request is
authenticated, and at most ``max_body_bytes`` of it):

======================================  ======  ============================================
situation                               status  Cloud Tasks then
======================================  ======  ============================================
the function returned                   200     deletes the task
the function raised ``GiveUp``          200     deletes the task (the reason is logged)
the function raised ``RetryLater``      503     retries, not before its Retry-After
the function raised anything else       500     retries per the queue's retry config
not a POST                              405     retries
no token, or a token that fails         401     retries (the function never ran)
the certificates cannot be fetched      503     retries, not before its Retry-After
a malformed ``X-CloudTasks-*`` header   400     retries
an unknown route                        404     retries
a body over the limit                   413     retries
a body that is not a task envelope      400     retries (also: not UTF-8, nested too deep)
arguments that fail validation          422     retries
======================================  ======  ============================================

Every non-2xx is retried by Cloud Tasks until the queue's retry config gives up; 4xx answers are logged
with the task id so a bad deploy is visible. ``X-CloudTasks-*`` headers are read only after the request
is authenticated, and an unverified request never reaches a task function. The kit's own code never
answers 500: only a task function that raises does. See docs/security.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pydantic

from . import logfields, rules, tracing
from ._emulator_env import TRUST_EMULATOR_ENV
from ._redact import shorten
from ._wire import BodyError, read_asgi_body, read_wsgi_body
from .app import TaskApp, TaskFunction
from .certs import WouldBlock
from .context import GiveUp, HeaderError, RetryLater, TaskContext, _current
from .errors import UsageError
from .payload import DEFAULT_MAX_DEPTH, EnvelopeError, decode_envelope
from .verify import (
    GOOGLE_CERTS_URL,
    AuthError,
    CertificatesUnavailable,
    TokenVerifier,
    VerifiedToken,
    emulator_certs_url,
)

__all__ = ["HandlerResponse", "TaskHandler"]

log = logging.getLogger("cloudtasks_kit.handler")

# Bodies larger than this are decoded in a worker thread under ASGI: scanning and validating a megabyte
# of JSON takes long enough to be felt by every other request on the loop.
_DECODE_INLINE = 64 * 1024


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
class _Admitted:
    """A request past authentication, its headers and its route: what remains is its body."""

    function: TaskFunction[Any, Any, Any]
    context: TaskContext
    carrier: dict[str, str] | None = None  # the trace headers, when OpenTelemetry is installed


@dataclasses.dataclass(frozen=True)
class _Ready:
    function: TaskFunction[Any, Any, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    context: TaskContext


class TaskHandler:
    """Runs a :class:`TaskApp`'s task functions for Cloud Tasks requests.

    Args:
        app: the task app whose functions this worker runs.
        verifier: how to check each request's OIDC token; by default ``app.verifier(...)`` with Google's
            certificates (or ``certs_url``/``certs``: the emulator's, the fake's). In development,
            ``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` beside ``CLOUDTASKS_EMULATOR_HOST`` makes the default
            verifier use the emulator's certificates (refused on Google runtimes, logged as a WARNING:
            see :func:`cloudtasks_kit.verify.emulator_certs_url`).
        verify: ``False`` switches verification off, for local use only; the handler then trusts any
            request, and logs a warning once.
        max_body_bytes: the largest body read (413 beyond it); by default the task size limit of the
            app's client (``Limits.max_task_bytes``, 1 MiB), since Cloud Tasks sends nothing larger.
        max_json_depth: how deep the body's JSON may nest (400 beyond it); 64 by default.
        trace_mode: with OpenTelemetry, whether a task function's span is the ``child`` of the span that
            created the task (one trace, the default) or starts a trace with a ``link`` to it.
        trust_app_engine_headers: accept App Engine task deliveries: a request with an
            ``X-AppEngine-QueueName`` header is admitted without a token (App Engine tasks carry none)
            and its ``X-AppEngine-*`` headers fill :func:`~cloudtasks_kit.task_context`. Safe **only on
            App Engine**, which strips ``X-AppEngine-*`` headers from requests that come from outside;
            anywhere else anyone could send them. Off by default: such requests then need a token like
            any other. An App Engine app (``TaskApp(app_engine=...)``) needs it (or ``verify=False``):
            its tasks carry no token, and any request without ``X-AppEngine-QueueName`` is refused
            (401) unless a ``verifier`` is given for it.
    """

    def __init__(
        self,
        app: TaskApp[Any],
        *,
        verifier: TokenVerifier | None = None,
        verify: bool = True,
        certs_url: str = GOOGLE_CERTS_URL,
        certs: Mapping[str, str] | None = None,
        max_body_bytes: int | None = None,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
        trace_mode: tracing.TraceMode = "child",
        trust_app_engine_headers: bool = False,
    ) -> None:
        self.app = app
        self.trust_app_engine_headers = bool(trust_app_engine_headers)
        if trace_mode not in ("child", "link"):
            raise UsageError(f"TaskHandler trace_mode={trace_mode!r} must be 'child' or 'link'")
        self.trace_mode: tracing.TraceMode = trace_mode
        if max_body_bytes is None:
            limits = app.client.limits if app.client is not None else rules.DEFAULT_LIMITS
            max_body_bytes = limits.max_task_bytes
        if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise UsageError(f"TaskHandler max_body_bytes={max_body_bytes!r} must be a positive int")
        if not isinstance(max_json_depth, int) or not 1 <= max_json_depth <= 256:
            raise UsageError(f"TaskHandler max_json_depth={max_json_depth!r} must be an int from 1 to 256")
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self._trust_all = not verify
        if not verify:
            if verifier is not None:
                raise UsageError("TaskHandler got a verifier and verify=False; choose one")
            log.warning("TaskHandler is not verifying tokens: anyone who can reach it can run tasks")
            self.verifier: TokenVerifier | None = None
        elif verifier is None and app.app_engine is not None:
            # App Engine tasks carry no token: the X-AppEngine-* headers are the only proof, and only
            # App Engine makes them one. Saying so is the caller's decision, never a default.
            if not self.trust_app_engine_headers:
                raise UsageError(
                    "the app's tasks go to App Engine, which sends them without a token: on App Engine give "
                    "TaskHandler(app, trust_app_engine_headers=True) (App Engine strips X-AppEngine-* "
                    "headers from outside requests), or verify=False for local use"
                )
            if certs is not None or certs_url != GOOGLE_CERTS_URL:
                raise UsageError(
                    "TaskHandler got certs_url or certs for an App Engine app, whose tasks carry no token to "
                    "check them against; leave them out, or give verifier= to also accept requests with one"
                )
            self.verifier = None
        else:
            self.verifier = verifier or app.verifier(
                certs_url=self._certs_url(
                    explicit=verifier is not None or certs is not None, given=certs_url
                ),
                certs=certs,
            )

    @staticmethod
    def _certs_url(*, explicit: bool, given: str) -> str:
        """Where the default verifier gets its certificates: as given, or the emulator's if told so."""
        if explicit or given != GOOGLE_CERTS_URL:
            if os.environ.get(TRUST_EMULATOR_ENV):
                log.warning("%s is ignored: this TaskHandler was given its certificates", TRUST_EMULATOR_ENV)
            return given
        return emulator_certs_url() or GOOGLE_CERTS_URL

    # The steps, shared by the sync and async ways in. Each answers a HandlerResponse to stop.

    def _admit(
        self, method: str, path: str, headers: Mapping[str, str], *, may_block: bool = True
    ) -> _Admitted | HandlerResponse:
        """Everything that needs no body: the method, the token, the X-CloudTasks-* headers, the route."""
        if method.upper() != "POST":
            return HandlerResponse.json(405, {"error": "task requests are POSTs"}, {"Allow": "POST"})
        app_engine = self.trust_app_engine_headers and _header(headers, "x-appengine-queuename") is not None
        # On App Engine the platform strips X-AppEngine-* from outside requests, so their presence is the
        # proof of origin (trust_app_engine_headers); everything else authenticates with its token.
        token = None if app_engine else self._authenticate(headers, may_block)
        if isinstance(token, HandlerResponse):
            return token
        try:
            context = TaskContext.parse_headers(headers, token, app_engine=app_engine)
        except HeaderError as exc:
            log.warning("refused a task request with 400: %s", exc)
            return HandlerResponse.json(400, {"error": str(exc)})
        function = self._route(path)
        if function is None:
            return self._refuse(404, "no task function is served at this path", context, path=path)
        return _Admitted(function, context, tracing.carrier(headers))

    def _authenticate(
        self, headers: Mapping[str, str], may_block: bool
    ) -> VerifiedToken | HandlerResponse | None:
        if self.verifier is None:
            if self._trust_all:
                return None
            # An App Engine app's worker without a verifier: only App Engine deliveries get in.
            log.warning(
                "refused a task request without X-AppEngine-QueueName: this worker runs App Engine tasks"
            )
            return HandlerResponse.json(401, {"error": "unauthenticated: not an App Engine task request"})
        authorization = _header(headers, "authorization")
        try:
            return self.verifier.verify(authorization, may_block=may_block)
        except CertificatesUnavailable as exc:
            # Not the caller's fault and not a verdict on the token: ask Cloud Tasks to come back.
            log.error("cannot verify task requests: %s", exc)
            return HandlerResponse.json(
                503,
                {"error": "the token cannot be verified now: signing certificates unavailable"},
                {"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
            )
        except AuthError as exc:
            log.warning("refused an unauthenticated task request: %s: %s", type(exc).__name__, exc)
            return HandlerResponse.json(
                401, {"error": f"unauthenticated: {type(exc).__name__}"}, {"WWW-Authenticate": "Bearer"}
            )

    def _decode(self, admitted: _Admitted, body: bytes) -> _Ready | HandlerResponse:
        """The body, at most ``max_body_bytes``, into the function's arguments."""
        function, context = admitted.function, admitted.context
        if len(body) > self.max_body_bytes:
            reason = f"the body is {len(body)} bytes; the limit is {self.max_body_bytes}"
            return self._refuse(413, reason, context, task=function.name)
        try:
            name, raw = decode_envelope(body, max_depth=self.max_json_depth)
        except EnvelopeError as exc:
            return self._refuse(400, str(exc), context, task=function.name)
        if name != function.name:
            reason = f"the envelope is for task {shorten(name, 60)}, not {function.name!r}"
            return self._refuse(400, reason, context)
        try:
            args, kwargs = function.codec.load(raw)
        except pydantic.ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc']))[:60]}: {e['msg'][:120]}" for e in exc.errors()[:5]
            )
            return self._refuse(422, f"arguments of {function.name} are not valid: {detail}", context)
        return _Ready(function, args, kwargs, context)

    def _route(self, path: str) -> TaskFunction[Any, Any, Any] | None:
        routes = self.app.routes
        trimmed = path.rstrip("/")
        found = routes.get(path) or routes.get(trimmed)
        if found is not None or not trimmed.startswith("/"):
            return found
        # Mounted under a path of its own (app.mount("/tasks", ...)), the framework may pass only the rest.
        return next((function for route, function in routes.items() if route.endswith(trimmed)), None)

    def _refuse(self, status: int, reason: str, context: TaskContext, **details: str) -> HandlerResponse:
        extra = "".join(f" {k}={shorten(v, 100)}" for k, v in details.items())
        log.warning(
            "refused task %r (queue %r) with %d: %s%s",
            context.task_id,
            context.queue,
            status,
            reason,
            extra,
            extra=logfields.task_fields(context, status),
        )
        return HandlerResponse.json(status, {"error": reason})

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
        tracing.failed(error)
        log.error(
            "task %r (%s) failed on attempt %d",
            context.task_id,
            ready.function.name,
            context.retry_count + 1,
            exc_info=error,
            extra=logfields.task_fields(context, 500, function=ready.function.name),
        )
        return HandlerResponse.json(500, {"error": f"{type(error).__name__} in {ready.function.name}"})

    # Sync.

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HandlerResponse:
        """Handle one request; async task functions run to completion on an event loop of their own."""
        admitted = self._admit(method, path, headers)
        if isinstance(admitted, HandlerResponse):
            return admitted
        return self._run(admitted, body)

    def _run(self, admitted: _Admitted, body: bytes) -> HandlerResponse:
        """Run the task in its span (with OpenTelemetry), logging the outcome with structured fields."""
        context, name = admitted.context, admitted.function.name
        with tracing.Processing(context, name, admitted.carrier, self.trace_mode) as processing:
            return processing.answered(self._run_task(admitted, body))

    def _run_task(self, admitted: _Admitted, body: bytes) -> HandlerResponse:
        ready = self._decode(admitted, body)
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
        """The handler as a WSGI application; the body is read after authentication, up to the limit."""

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            headers = {
                key[5:].replace("_", "-").title(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            if environ.get("CONTENT_TYPE"):
                headers["Content-Type"] = environ["CONTENT_TYPE"]
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            response = self._admit(environ.get("REQUEST_METHOD", "GET"), path, headers)
            if not isinstance(response, HandlerResponse):
                try:
                    body = read_wsgi_body(environ, self.max_body_bytes)
                except BodyError as exc:
                    response = self._refuse(exc.status, exc.reason, response.context)
                else:
                    response = self._run(response, body)
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
        admitted = await self._aadmit(method, path, headers)
        if isinstance(admitted, HandlerResponse):
            return admitted
        return await self._arun(admitted, body)

    async def _aadmit(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> _Admitted | HandlerResponse:
        try:
            return self._admit(method, path, headers, may_block=False)
        except WouldBlock:
            # Fetching certificates blocks: only this request waits for it, in a thread, not the loop.
            return await asyncio.to_thread(self._admit, method, path, headers)

    async def _arun(self, admitted: _Admitted, body: bytes) -> HandlerResponse:
        context, name = admitted.context, admitted.function.name
        with tracing.Processing(context, name, admitted.carrier, self.trace_mode) as processing:
            return processing.answered(await self._arun_task(admitted, body))

    async def _arun_task(self, admitted: _Admitted, body: bytes) -> HandlerResponse:
        if len(body) > _DECODE_INLINE:
            ready = await asyncio.to_thread(self._decode, admitted, body)
        else:
            ready = self._decode(admitted, body)
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
        """The handler as an ASGI application (HTTP; lifespan events are acknowledged).

        The body is received after authentication, and no more of it than the limit.
        """

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
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            response = await self._aadmit(scope["method"], scope["path"], headers)
            if not isinstance(response, HandlerResponse):
                try:
                    body = await read_asgi_body(receive, headers, self.max_body_bytes)
                except BodyError as exc:
                    response = self._refuse(exc.status, exc.reason, response.context)
                else:
                    if body is None:  # the client went away
                        return
                    response = await self._arun(response, body)
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
    413: "Content Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


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


def _header(headers: Mapping[str, str], lowered_name: str) -> str | None:
    """The value of a header, its name matched case-insensitively (None when absent)."""
    return next((value for key, value in headers.items() if key.lower() == lowered_name), None)
