"""The Firebase task-queue dialect, served on the emulator's REST port: a kit extension.

firebase-admin (Python 7.x and Node) enqueues to task-queue functions with
``functions.task_queue("fn").enqueue(data)``. When ``CLOUD_TASKS_EMULATOR_HOST=host:port`` is set it talks
to an emulator in a REST dialect of its own (``firebase_admin/functions.py``):

- enqueue: ``POST http://HOST/projects/P/locations/L/queues/Q/tasks`` with ``{"task": Task}`` (camelCase;
  ``name``, ``scheduleTime`` and ``dispatchDeadline`` may be JSON null; ``httpRequest.url`` is empty
  unless the caller gave ``TaskOptions(uri=...)``; an ``oidcToken`` with a placeholder service account);
  it expects ``{"task": {"name": "/projects/..."}}``, with a leading slash the production API lacks;
- delete: ``DELETE http://HOST/projects/P/locations/L/queues/Q/tasks/ID``, answered with JSON.

These are the CreateTask and DeleteTask rows of the call table with the ``/v2`` prefix dropped: the
routes are derived from those rows, parsed as the ``/v2`` routes are, and answered by the same engine
calls (``engine.call("create_task", ...)``), so a Firebase task is an ordinary task in every other way.

What the dialect adds: a task with no URL (and a queue with no queue-level URI override) gets its
function's production URL, ``https://{location}-{project}.cloudfunctions.net/{queue}``, as firebase-admin
itself uses in production; pair it with a route (``--route
https://us-central1-P.cloudfunctions.net=http://127.0.0.1:5001/P/us-central1``) to reach a local worker.
The kit itself never reads ``CLOUD_TASKS_EMULATOR_HOST``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from aiohttp import web
from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.protobuf import json_format

from ..engine.engine import Engine
from ..errors import StatusCode
from ..names import parse_queue_name
from ..transports.calls import CREATE_TASK, DELETE_TASK, HttpRule, Rpc
from .rest_server import _HttpError, parse_request

__all__ = ["FIREBASE_CALLS", "ROUTES", "function_url", "serve"]

FIREBASE_CALLS: tuple[Rpc[Any, Any], ...] = (CREATE_TASK, DELETE_TASK)
"""The calls firebase-admin's task queues make."""

_V2 = "/v2"


@dataclasses.dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    rpc: Rpc[Any, Any]
    rule: HttpRule


def _dialect(rule: HttpRule) -> HttpRule:
    """A ``/v2`` binding as firebase-admin spells it: the same path without the version prefix."""
    assert rule.path.startswith(_V2 + "/"), rule.path
    return dataclasses.replace(rule, path=rule.path[len(_V2) :])


ROUTES = [_Route(_dialect(rule).regex(), rpc, _dialect(rule)) for rpc in FIREBASE_CALLS for rule in rpc.http]
"""One route per HTTP binding of :data:`FIREBASE_CALLS`, derived from the call table."""

_SERVED = ", ".join(f"{route.rule.verb} {route.rule.path}" for route in ROUTES)
_FUNCTION_URL = "https://{location}-{project}.cloudfunctions.net/{queue}"


def function_url(queue_name: str) -> str:
    """The production URL of the task-queue function behind ``queue_name`` (firebase-admin's format)."""
    parsed = parse_queue_name(queue_name)
    return _FUNCTION_URL.format(project=parsed.project, location=parsed.location, queue=parsed.queue)


async def serve(engine: Engine, request: web.Request) -> web.Response:
    """Answer one request of the dialect (errors are raised; the REST app turns them into JSON)."""
    verbs = set()
    for route in ROUTES:
        match = route.pattern.fullmatch(request.path)
        if match is None:
            continue
        verbs.add(route.rule.verb)
        if route.rule.verb != request.method:
            continue
        message = await parse_request(request, route.rpc, route.rule, match)
        if route.rpc is CREATE_TASK:
            return _created(engine, message)
        engine.call(route.rpc.name, message)
        return web.json_response({})
    if verbs:
        raise _HttpError(
            StatusCode.UNIMPLEMENTED,
            f"{request.method} is not served on {request.path} (try {sorted(verbs)}); the Firebase dialect"
            f" serves {_SERVED}, the full API is under /v2",
        )
    raise _HttpError(
        StatusCode.NOT_FOUND,
        f"unknown path {request.path!r}: the Firebase dialect serves {_SERVED}; the full API is under /v2",
    )


def _created(engine: Engine, message: Any) -> web.Response:
    http = message.task.http_request
    if not http.url and not _queue_routes(engine, message.parent):
        http.url = function_url(message.parent)
    task = engine.call(CREATE_TASK.name, message)
    body = dict(json_format.MessageToDict(task))
    body["name"] = "/" + task.name  # firebase-admin strips the first character of the emulator's name
    return web.json_response(text=json.dumps({"task": body}))


def _queue_routes(engine: Engine, queue: str) -> bool:
    """Whether the queue sets a host for its tasks (then an empty task URL is the queue's to fill)."""
    try:
        found = engine.call("get_queue", tasks_v2.GetQueueRequest.pb()(name=queue))
    except core.NotFound:
        return False  # CreateTask answers for the missing queue (or creates it, with auto-create)
    return bool(found.http_target.uri_override.host)
