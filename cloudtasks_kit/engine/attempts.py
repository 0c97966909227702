"""Attempts: what one attempt sends, what came back, and the record of both; pure functions from task
and queue to an HTTP request.

The queue-level HTTP target (URI override, method, header overrides, auth) applies here, at delivery,
as it does in the service; so do the ``X-CloudTasks-*`` headers, ``User-Agent`` and the token.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from google.cloud import tasks_v2

from .. import rules
from ..errors import StatusCode, code_for_http
from ..names import project_of, queue_of_task, short_id

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "AttemptRequest",
    "AttemptResult",
    "app_engine_host",
    "apply_uri_override",
    "build_headers",
    "effective_auth",
    "effective_body",
    "effective_target",
    "parse_retry_after",
]

_IF_NOT_EXISTS = int(tasks_v2.UriOverride.UriOverrideEnforceMode.IF_NOT_EXISTS)
_SCHEMES = {int(tasks_v2.UriOverride.Scheme.HTTP): "http", int(tasks_v2.UriOverride.Scheme.HTTPS): "https"}


@dataclasses.dataclass
class AttemptRequest:
    """An attempt the engine has started: the HTTP request to send and the attempt's bookkeeping.

    Attributes:
        task_name: the task's full name.
        queue_name: the queue's full name.
        method, url, headers, body: the HTTP request.
        deadline: seconds the target has to answer (the task's dispatch deadline).
        retry_count: attempts made before this one (``X-CloudTasks-TaskRetryCount``).
        schedule_time: when the attempt was due; dispatch_time: when it was sent (engine clock).
        forced: started by RunTask.
        failed: why the attempt failed before it could be sent (the engine could not build it), or None.
    """

    task_name: str
    queue_name: str
    method: str
    url: str
    headers: dict[str, str] = dataclasses.field(repr=False)  # Authorization stays out of logs
    body: bytes = dataclasses.field(repr=False)
    deadline: float
    retry_count: int
    schedule_time: float
    dispatch_time: float
    forced: bool = False
    failed: str | None = None
    record: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def task_id(self) -> str:
        return short_id(self.task_name)

    @property
    def queue_id(self) -> str:
        return short_id(self.queue_name)


@dataclasses.dataclass(frozen=True)
class AttemptResult:
    """What an attempt got: an HTTP status, or none (``error`` says why: timeout, refused...).

    Attributes:
        status: the HTTP status of the answer, or None when there was none.
        retry_after: seconds asked for by a ``Retry-After`` header, already bounded.
        error: why there was no answer (``DEADLINE_EXCEEDED``, ``UNREACHABLE: ...``).
        body: the start of the answer's body (for inspection only).
    """

    status: int | None
    retry_after: float | None = None
    error: str | None = None
    body: bytes = dataclasses.field(default=b"", repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def rpc_status(self) -> tuple[int, str]:
        """The ``google.rpc.Status`` code and message recorded in the task's ``last_attempt``."""
        if self.status is None:
            code = (
                StatusCode.DEADLINE_EXCEEDED if self.error == "DEADLINE_EXCEEDED" else StatusCode.UNAVAILABLE
            )
            return int(code), self.error or "no response"
        return int(code_for_http(self.status)), f"HTTP status {self.status}"

    def retry_reason(self) -> str:
        """The ``X-CloudTasks-TaskRetryReason`` the next attempt carries: empty for an HTTP-target task,
        whatever the previous answer (503, 404, 429, 500, 302 and a deadline cut-off recorded on the
        real service: aertje/cloud-tasks-emulator conformance/golden/dispatch.json)."""
        return ""

    def previous_response(self) -> int | None:
        """The ``X-CloudTasks-TaskPreviousResponse`` the next attempt carries: the HTTP status, 504 after
        an attempt cut off by the dispatch deadline (recorded on the real service, dispatch.json
        ``dispatch/http-timeout``), None (sent as 0; not recorded) when there was no answer at all."""
        if self.status is None and self.error == "DEADLINE_EXCEEDED":
            return 504
        return self.status


@dataclasses.dataclass(frozen=True)
class AttemptOutcome:
    """What an attempt's result did to its task, as the scheduler decided it (for the record and the
    dashboard: "why is my task waiting?").

    Attributes:
        kind: ``succeeded`` (deleted), ``retry`` (scheduled again), ``gave_up`` (out of retries, deleted)
            or ``gone`` (deleted or purged while the attempt ran).
        reason: the rule that decided it, in words (which backoff and why, which limit was reached).
        backoff: the wait chosen before the next attempt, in seconds (``retry`` only).
        next_time: when the next attempt is due (engine clock; ``retry`` only).
    """

    kind: str
    reason: str
    backoff: float | None = None
    next_time: float | None = None


@dataclasses.dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt, as the fake and the emulator keep it for inspection: what was sent, when
    (engine clock), and what came back. The ``Authorization`` header is not kept.

    ``url`` is the task's own (after any queue-level URI override): what Cloud Tasks would call. When an
    emulator route sent the attempt to a local worker instead, ``routed_url`` is where it went.
    """

    time: float
    task_name: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    retry_count: int
    status: int | None
    error: str | None
    response_body: bytes = b""
    retry_after: float | None = None
    """Seconds the answer's ``Retry-After`` asked for (bounded), or None."""
    latency: float | None = None
    """Seconds from sending to the answer (None when the driver does not measure it)."""
    outcome: AttemptOutcome | None = None
    """What the result did to the task (None when not known)."""
    routed_url: str | None = None
    """Where the attempt was really sent when an emulator route rewrote its URL, or None."""

    @classmethod
    def of(
        cls,
        attempt: AttemptRequest,
        result: AttemptResult,
        *,
        outcome: AttemptOutcome | None = None,
        latency: float | None = None,
    ) -> AttemptRecord:
        """The record of ``attempt``, what it got, and (when known) what that did to the task."""
        headers = attempt.headers
        if "Authorization" in headers:  # the engine writes it with this spelling
            headers = {**headers, "Authorization": "Bearer [redacted]"}
        return cls(
            time=attempt.dispatch_time,
            task_name=attempt.task_name,
            method=attempt.method,
            url=attempt.url,
            headers=headers,
            body=attempt.body,
            retry_count=attempt.retry_count,
            status=result.status,
            error=result.error,
            response_body=result.body,
            retry_after=result.retry_after,
            latency=latency,
            outcome=outcome,
        )

    @property
    def task_id(self) -> str:
        return short_id(self.task_name)

    @property
    def queue(self) -> str:
        """The short id of the task's queue."""
        return short_id(self.queue_name)

    @property
    def queue_name(self) -> str:
        return queue_of_task(self.task_name)

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The request body decoded as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def __repr__(self) -> str:
        result = self.status if self.status is not None else self.error
        routed = f" via {self.routed_url}" if self.routed_url else ""
        return (
            f"AttemptRecord({self.method} {self.url}{routed} task={self.task_id!r} retry={self.retry_count}"
            f" -> {result})"
        )


_DELTA_SECONDS = re.compile(r"[0-9]+")


def parse_retry_after(value: str | None, *, now: float, maximum: float) -> float | None:
    """Seconds a ``Retry-After`` value asks for, as RFC 9110 section 10.2.3 defines it: ``delta-seconds``
    (ASCII digits) or an HTTP-date. Junk is ignored (None); the result is clamped to ``[0, maximum]``, so
    no later timestamp can overflow."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        # More digits than a float holds exactly is more than any maximum: no int() of 400 digits.
        return maximum if len(value) > 15 else min(float(value), maximum)
    if len(value) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        seconds = when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, seconds), maximum)


def apply_uri_override(url: str, override: Any) -> str:
    """Rewrite ``url`` with a queue's ``UriOverride`` protobuf (only the parts it sets).

    ``IF_NOT_EXISTS`` fills a task that has no URL; ``ALWAYS`` (the default) rewrites every task.
    """
    if override.uri_override_enforce_mode == _IF_NOT_EXISTS and url:
        return url
    parts = urlsplit(url or "https://placeholder.invalid/")
    scheme = _SCHEMES.get(override.scheme, parts.scheme or "https")
    host = override.host or parts.hostname or ""
    port = override.port or (parts.port if not override.host else None)
    netloc = f"{host}:{port}" if port else host
    path = override.path_override.path if override.HasField("path_override") else parts.path
    query = override.query_override.query_params if override.HasField("query_override") else parts.query
    return str(urlunsplit((scheme, netloc, path or "/", query, "")))


def build_headers(
    task: Any,
    queue: Any,
    *,
    retry_count: int,
    execution_count: int,
    previous_response: int | None,
    retry_reason: str | None,
    eta: float,
    authorization: str | None,
) -> dict[str, str]:
    """The headers of one attempt, in the order a reader expects: the task's, the queue's, the service's."""
    headers: dict[str, str] = {}
    lowered: dict[str, str] = {}

    def put(name: str, value: str) -> None:
        old = lowered.get(name.lower())
        if old is not None:
            del headers[old]
        headers[name] = value
        lowered[name.lower()] = name

    for name, value in task.http_request.headers.items():
        if not rules.reserved_header(name):
            put(name, value)
    for override in queue.http_target.header_overrides:
        if not rules.reserved_header(override.header.key):
            put(override.header.key, override.header.value)
    put("User-Agent", rules.USER_AGENT)
    for name, value in _attempt_headers(
        "X-CloudTasks-",
        task,
        queue,
        retry_count=retry_count,
        execution_count=execution_count,
        previous_response=previous_response,
        retry_reason=retry_reason,
        eta=eta,
    ):
        put(name, value)
    if authorization is not None:
        put("Authorization", authorization)
    return headers


def is_app_engine(task: Any) -> bool:
    """True for a task with an ``app_engine_http_request``."""
    return bool(task.HasField("app_engine_http_request"))


def app_engine_host(task: Any, queue: Any) -> str:
    """The host an App Engine task is sent to: ``[instance.]version.service.<project>.appspot.com``, from
    the queue's ``app_engine_routing_override`` if set, else the task's routing ("If
    app_engine_routing_override is set on the queue, this value is used for all tasks in the queue",
    AppEngineHttpRequest). Each part left empty means the default one and is left out."""
    routing = (
        queue.app_engine_routing_override
        if queue.HasField("app_engine_routing_override")
        else task.app_engine_http_request.app_engine_routing
    )
    project = project_of(queue.name, "app")
    parts = [p for p in (routing.instance, routing.version, routing.service) if p]
    return ".".join([*parts, f"{project}.appspot.com"])


def build_app_engine_headers(
    task: Any,
    queue: Any,
    *,
    retry_count: int,
    execution_count: int,
    previous_response: int | None,
    retry_reason: str | None,
    eta: float,
) -> dict[str, str]:
    """The headers of one attempt of an App Engine task: the task's, then the service's ``X-AppEngine-*``
    (creating-appengine-handlers, "Reading request headers"). ``User-Agent`` gets
    ``AppEngine-Google; (+http://code.google.com/appengine)`` appended; a body without a Content-Type is
    sent as ``application/octet-stream`` (AppEngineHttpRequest.headers)."""
    request = task.app_engine_http_request
    headers: dict[str, str] = {}
    agent = None
    for name, value in request.headers.items():
        if name.lower() == "user-agent":
            agent = value
        elif not rules.app_engine_reserved_header(name):
            headers[name] = value
    if request.body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/octet-stream"
    ua = rules.APP_ENGINE_USER_AGENT
    headers["User-Agent"] = f"{agent} {ua}" if agent and agent != ua else ua
    headers.update(
        _attempt_headers(
            "X-AppEngine-",
            task,
            queue,
            retry_count=retry_count,
            execution_count=execution_count,
            previous_response=previous_response,
            retry_reason=retry_reason,
            eta=eta,
        )
    )
    return headers


def _attempt_headers(
    prefix: str,
    task: Any,
    queue: Any,
    *,
    retry_count: int,
    execution_count: int,
    previous_response: int | None,
    retry_reason: str | None,
    eta: float,
) -> list[tuple[str, str]]:
    """What the service says about the attempt, under ``prefix``: ``X-CloudTasks-`` for HTTP tasks,
    ``X-AppEngine-`` for App Engine tasks, which carry the same facts under the other name."""
    said = [
        (f"{prefix}QueueName", short_id(queue.name)),
        (f"{prefix}TaskName", short_id(task.name)),
        (f"{prefix}TaskRetryCount", str(retry_count)),
        (f"{prefix}TaskExecutionCount", str(execution_count)),
        (f"{prefix}TaskETA", f"{eta:.6f}"),
    ]
    if retry_count > 0:
        said += [
            (f"{prefix}TaskPreviousResponse", str(previous_response or 0)),
            (f"{prefix}TaskRetryReason", retry_reason or ""),
        ]
    return said


def effective_auth(task: Any, queue: Any) -> tuple[str, Any] | None:
    """``("oidc", OidcToken)`` or ``("oauth", OAuthToken)``: the queue's auth overrides the task's.

    App Engine tasks carry no token (they travel inside Google's network)."""
    if is_app_engine(task):
        return None
    target = queue.http_target
    if target.HasField("oidc_token"):
        return "oidc", target.oidc_token
    if target.HasField("oauth_token"):
        return "oauth", target.oauth_token
    request = task.http_request
    if request.HasField("oidc_token"):
        return "oidc", request.oidc_token
    if request.HasField("oauth_token"):
        return "oauth", request.oauth_token
    return None


def effective_body(task: Any, queue: Any) -> bytes:
    """The body an attempt sends: none when the queue-level ``http_method`` overrides the task's with a
    method that carries no body ("If this is set to GET, the body of the task will be ignored at
    execution time", HttpTarget.http_method; HEAD, DELETE and OPTIONS the same, as a task may not carry
    a body with them either)."""
    if is_app_engine(task):
        return bytes(task.app_engine_http_request.body)
    method_number = queue.http_target.http_method
    if method_number and rules.METHOD_NAMES[method_number] not in rules.BODY_METHODS:
        return b""
    return bytes(task.http_request.body)


def effective_target(task: Any, queue: Any) -> tuple[str, str]:
    """The method and URL an attempt uses, after the queue-level overrides.

    An App Engine task goes to ``http://<routing host><relative_uri>`` ("The request to the handler [...]
    will appear to have used the HTTP protocol", AppEngineHttpRequest)."""
    if is_app_engine(task):
        request = task.app_engine_http_request
        url = f"http://{app_engine_host(task, queue)}{request.relative_uri or '/'}"
        return rules.METHOD_NAMES[request.http_method], url
    target = queue.http_target
    url = task.http_request.url
    if target.HasField("uri_override"):
        url = apply_uri_override(url, target.uri_override)
    method_number = target.http_method or task.http_request.http_method
    return rules.METHOD_NAMES[method_number], url
