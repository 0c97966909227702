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
from typing import Any

from aiohttp import web
from google.api_core import exceptions as core
from google.protobuf import json_format

from ..errors import StatusCode, ValidationError
from .service import RPCS, Service

__all__ = ["make_rest_app"]

log = logging.getLogger("cloudtasks_kit.emulator")

_LOCATION = r"projects/[^/:]+/locations/[^/:]+"
_QUEUE = _LOCATION + r"/queues/[^/:]+"
_TASK = _QUEUE + r"/tasks/[^/:]+"


@dataclasses.dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    rpc: str
    path_field: str  # the request field the captured name fills ("parent", "queue.name"...)
    body_field: str | None  # "*" for the whole request, a field name, or None for no body


def _route(method: str, path: str, rpc: str, path_field: str, body_field: str | None = None) -> _Route:
    return _Route(method, re.compile(path), rpc, path_field, body_field)


ROUTES = [
    _route("GET", rf"(?P<name>{_LOCATION})/queues", "list_queues", "parent"),
    _route("POST", rf"(?P<name>{_LOCATION})/queues", "create_queue", "parent", "queue"),
    _route("GET", rf"(?P<name>{_QUEUE})", "get_queue", "name"),
    _route("PATCH", rf"(?P<name>{_QUEUE})", "update_queue", "queue.name", "queue"),
    _route("DELETE", rf"(?P<name>{_QUEUE})", "delete_queue", "name"),
    _route("POST", rf"(?P<name>{_QUEUE}):purge", "purge_queue", "name", "*"),
    _route("POST", rf"(?P<name>{_QUEUE}):pause", "pause_queue", "name", "*"),
    _route("POST", rf"(?P<name>{_QUEUE}):resume", "resume_queue", "name", "*"),
    _route("POST", rf"(?P<name>{_QUEUE}):getIamPolicy", "get_iam_policy", "resource", "*"),
    _route("POST", rf"(?P<name>{_QUEUE}):setIamPolicy", "set_iam_policy", "resource", "*"),
    _route("POST", rf"(?P<name>{_QUEUE}):testIamPermissions", "test_iam_permissions", "resource", "*"),
    _route("GET", rf"(?P<name>{_QUEUE})/tasks", "list_tasks", "parent"),
    _route("POST", rf"(?P<name>{_QUEUE})/tasks", "create_task", "parent", "*"),
    _route("POST", rf"(?P<name>{_QUEUE})/tasks:batchCreate", "batch_create_tasks", "parent", "*"),
    _route("POST", rf"(?P<name>{_QUEUE})/tasks:batchDelete", "batch_delete_tasks", "parent", "*"),
    _route("GET", rf"(?P<name>{_TASK})", "get_task", "name"),
    _route("DELETE", rf"(?P<name>{_TASK})", "delete_task", "name"),
    _route("POST", rf"(?P<name>{_TASK}):run", "run_task", "name", "*"),
    _route("GET", rf"(?P<name>{_LOCATION}/cmekConfig)", "get_cmek_config", "name"),
    _route(
        "PATCH", rf"(?P<name>{_LOCATION}/cmekConfig)", "update_cmek_config", "cmek_config.name", "cmek_config"
    ),
    _route("GET", r"(?P<name>projects/[^/:]+)/locations", "list_locations", "name"),
    _route("GET", rf"(?P<name>{_LOCATION})", "get_location", "name"),
    _route("GET", rf"(?P<name>{_LOCATION}/operations/[^/:]+)", "get_operation", "name"),
    _route("DELETE", rf"(?P<name>{_LOCATION}/operations/[^/:]+)", "delete_operation", "name"),
    _route("POST", rf"(?P<name>{_LOCATION}/operations/[^/:]+):cancel", "cancel_operation", "name", "*"),
]
_BUFFER = re.compile(rf"(?P<queue>{_QUEUE})/tasks(?:/(?P<task>[^/:]+))?:buffer")


class _HttpError(Exception):
    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: StatusCode, message: str) -> web.Response:
    body = {"error": {"code": code.http_status, "message": message, "status": code.name}}
    return web.json_response(body, status=code.http_status)


def make_rest_app(service: Service, *, max_body: int) -> web.Application:
    """The aiohttp application serving ``/v2/...`` and ``/certs`` for ``service``."""

    async def certs(_: web.Request) -> web.Response:
        return web.json_response(service.engine.signer.certs())

    async def v2(request: web.Request) -> web.Response:
        try:
            return await _serve(service, request)
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

    async def unknown(request: web.Request) -> web.Response:
        return error_response(StatusCode.NOT_FOUND, f"unknown path {request.path!r}")

    app = web.Application(client_max_size=max_body)
    app.router.add_get("/certs", certs)
    app.router.add_get("/oauth2/v1/certs", certs)
    app.router.add_route("*", "/v2/{tail:.*}", v2)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


async def _serve(service: Service, request: web.Request) -> web.Response:
    path = request.match_info["tail"]
    buffer = _BUFFER.fullmatch(path)
    if buffer is not None:
        return await _buffer(service, request, buffer.group("queue"), buffer.group("task"))
    methods = set()
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        methods.add(route.method)
        if route.method == request.method:
            return await _call(service, request, route, match.group("name"))
    if methods:
        raise _HttpError(
            StatusCode.UNIMPLEMENTED, f"{request.method} is not served on /v2/{path} (try {sorted(methods)})"
        )
    raise _HttpError(StatusCode.NOT_FOUND, f"unknown path '/v2/{path}'")


async def _call(service: Service, request: web.Request, route: _Route, name: str) -> web.Response:
    rpc = RPCS[route.rpc]
    message = rpc.request()
    body = await request.read()
    if route.body_field is not None and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise _HttpError(StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc}") from None
        target = message if route.body_field == "*" else getattr(message, route.body_field)
        _parse_into(parsed, target)
    query = {k: v for k, v in request.query.items() if not k.startswith("$")}
    if query:
        _parse_into(query, message, ignore_unknown=True)
    _set_path(message, route.path_field, name)
    response = service.call(route.rpc, message)
    return _json(response, request)


async def _buffer(service: Service, request: web.Request, queue: str, task_id: str | None) -> web.Response:
    body = await request.read()
    headers = dict(request.headers.items())
    task = service.buffer_task(queue, task_id, request.method, headers, body)
    return web.json_response(text=json.dumps({"task": _to_dict(task, request)}))


def _parse_into(data: Any, message: Any, *, ignore_unknown: bool = False) -> None:
    if not isinstance(data, dict):
        raise _HttpError(
            StatusCode.INVALID_ARGUMENT,
            f"Invalid JSON payload received. Expected an object, got {data!r:.80}",
        )
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=ignore_unknown)
    except json_format.ParseError as exc:
        raise _HttpError(StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc}") from None


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
