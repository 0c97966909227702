"""The emulator's REST server: the ``/v2/...`` paths of the official REST transport, BufferTask, and the
certificates of the emulator's OIDC tokens.

JSON is camelCase; enums are accepted as names or numbers and answered as numbers when the caller asks
with ``$alt=json;enum-encoding=int`` (as the official client does), else as names; bytes are base64.
Errors are Google's JSON error bodies: ``{"error": {"code": 404, "message": ..., "status": "NOT_FOUND"}}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.api_core import exceptions as core
from google.protobuf import empty_pb2, json_format

from ..engine.engine import Engine
from ..errors import StatusCode, ValidationError
from ..transports.calls import RPCS, BufferTaskRequest, HttpRule, Rpc

__all__ = ["answering_errors", "error_response", "make_rest_app", "parse_request"]

log = logging.getLogger("cloudtasks_kit.emulator")


@dataclasses.dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    rpc: Rpc[Any, Any]
    rule: HttpRule


# One route per HTTP binding of the call table.
ROUTES = [_Route(rule.regex(), rpc, rule) for rpc in RPCS.values() for rule in rpc.http]


_EMPTY = empty_pb2.Empty()


class _HttpError(Exception):
    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: StatusCode, message: str) -> web.Response:
    body = {"error": {"code": code.http_status, "message": message, "status": code.name}}
    return web.json_response(body, status=code.http_status)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def answering_errors(handler: Handler, *, max_body: int) -> Handler:
    """``handler`` with every failure answered as Google's JSON error body (the engine's errors with
    their own code, a bug as INTERNAL with the details in the log)."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except _HttpError as exc:
            return error_response(exc.code, exc.message)
        except core.GoogleAPICallError as exc:
            code = StatusCode(exc.grpc_status_code.value[0]) if exc.grpc_status_code else StatusCode.UNKNOWN
            return error_response(code, exc.message)
        except ValidationError as exc:
            return error_response(StatusCode.INVALID_ARGUMENT, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                StatusCode.INVALID_ARGUMENT, f"Request payload size exceeds the limit: {max_body} bytes."
            )
        except Exception:
            log.exception("REST %s %s failed", request.method, request.path)
            return error_response(StatusCode.INTERNAL, "the emulator failed on this request; see its log")

    return guarded


def make_rest_app(
    engine: Engine, *, max_body: int, routes: Callable[[web.Application], None] | None = None
) -> web.Application:
    """The aiohttp application serving ``/v2/...``, ``/certs`` and the Firebase task-queue dialect
    (``/projects/...``, see :mod:`.firebase`) for ``engine``; ``routes`` adds more (the dashboard's)
    before the catch-all that answers unknown paths."""
    from . import firebase

    async def certs(_: web.Request) -> web.Response:
        return web.json_response(engine.signer.certs())

    async def v2(request: web.Request) -> web.Response:
        return await _serve(engine, request)

    async def firebase_dialect(request: web.Request) -> web.Response:
        return await firebase.serve(engine, request)

    async def unknown(request: web.Request) -> web.Response:
        return error_response(StatusCode.NOT_FOUND, f"unknown path {request.path!r}")

    app = web.Application(client_max_size=max_body)
    app.router.add_get("/certs", certs)
    app.router.add_get("/oauth2/v1/certs", certs)
    app.router.add_route("*", "/v2/{tail:.*}", answering_errors(v2, max_body=max_body))
    app.router.add_route("*", "/projects/{tail:.*}", answering_errors(firebase_dialect, max_body=max_body))
    if routes is not None:
        routes(app)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


async def _serve(engine: Engine, request: web.Request) -> web.Response:
    path = request.path
    verbs = set()
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        verbs.add(route.rule.verb)
        if route.rule.verb in (request.method, "*"):
            if route.rpc.kind == "buffer":
                return await _buffer(engine, request, match)
            return await _call(engine, request, route, match)
    if verbs:
        raise _HttpError(
            StatusCode.UNIMPLEMENTED, f"{request.method} is not served on {path} (try {sorted(verbs)})"
        )
    raise _HttpError(StatusCode.NOT_FOUND, f"unknown path {path!r}")


async def _call(engine: Engine, request: web.Request, route: _Route, match: re.Match[str]) -> web.Response:
    message = await parse_request(request, route.rpc, route.rule, match)
    response = engine.call(route.rpc.name, message)
    return _json(_EMPTY if response is None else response, request)


async def parse_request(
    request: web.Request, rpc: Rpc[Any, Any], rule: HttpRule, match: re.Match[str]
) -> Any:
    """The raw request message of ``rpc`` from an HTTP request bound by ``rule``: the JSON body, the
    query parameters, then the path's fields (which win)."""
    message = rpc.wire_request()
    body_field = rule.body
    body = await request.read()
    if body_field is not None and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise _HttpError(StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc}") from None
        except RecursionError:
            raise _HttpError(
                StatusCode.INVALID_ARGUMENT, "Invalid JSON payload received. Nested too deeply."
            ) from None
        _parse_into(parsed, message if body_field == "*" else getattr(message, body_field))
    query = {k: v for k, v in request.query.items() if not k.startswith("$")}
    if query:
        _parse_into(query, message, ignore_unknown=True)
    for field in rule.fields():
        _set_path(message, field, match.group(field.replace(".", "__")))
    return message


async def _buffer(engine: Engine, request: web.Request, match: re.Match[str]) -> web.Response:
    body = await request.read()
    headers = dict(request.headers.items())
    groups = match.groupdict()
    buffered = BufferTaskRequest(groups["queue"], groups.get("task_id"), request.method, headers, body)
    task = engine.call("buffer_task", buffered)
    return web.json_response(text=json.dumps({"task": _to_dict(task, request)}))


def _parse_into(data: Any, message: Any, *, ignore_unknown: bool = False) -> None:
    if not isinstance(data, dict):
        raise _HttpError(
            StatusCode.INVALID_ARGUMENT,
            f"Invalid JSON payload received. Expected an object, got {type(data).__name__}",
        )
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=ignore_unknown)
    except json_format.ParseError as exc:
        raise _HttpError(
            StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc!s:.300}"
        ) from None
    except RecursionError:
        raise _HttpError(
            StatusCode.INVALID_ARGUMENT, "Invalid JSON payload received. Nested too deeply."
        ) from None


def _set_path(message: Any, field: str, value: str) -> None:
    *parents, leaf = field.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, leaf, value)


def _to_dict(message: Any, request: web.Request) -> dict[str, Any]:
    as_ints = "enum-encoding=int" in request.query.get("$alt", "")
    return dict(json_format.MessageToDict(message, use_integers_for_enums=as_ints))


def _json(message: Any, request: web.Request) -> web.Response:
    return web.json_response(text=json.dumps(_to_dict(message, request)))
