"""HTTP task specs, the builder that turns one into the official message, and the typed :class:`Task`.

A :class:`TaskSpec` holds what a caller says about a task; :func:`build_task` turns it into the official
``Task`` protobuf, checked by :mod:`cloudtasks_kit.rules` before any I/O. ``queue.create_task(url, ...)``
takes the same keywords as :class:`TaskSpec`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import pydantic
import pydantic_core
from google.cloud import tasks_v2
from typing_extensions import TypedDict

from . import rules
from ._convert import set_seconds, set_timedelta, to_datetime, to_timedelta
from ._json import NO_JSON
from ._model import KitModel
from ._redact import redact_headers, redact_url, shorten
from .auth import OAuthToken, OidcToken, check_one_token
from .errors import ValidationError
from .names import queue_of_task, short_id, task_path
from .queues import RetryConfig

__all__ = [
    "Attempt",
    "CreateOutcome",
    "HttpMethod",
    "Task",
    "TaskContent",
    "TaskOptions",
    "TaskSpec",
    "build_task",
    "task_id_for_key",
]

HttpMethod = rules.HttpMethod

_PB_TASK = tasks_v2.Task.pb()
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"

_FULL = int(tasks_v2.Task.View.FULL)


class TaskOptions(TypedDict, total=False):
    """The keywords of ``queue.create_task(url, **options)``; see :class:`TaskSpec` for each."""

    method: HttpMethod
    headers: Mapping[str, str]
    body: bytes
    text: str
    json: Any
    oidc: OidcToken
    oauth: OAuthToken
    delay: timedelta
    at: datetime
    deadline: timedelta
    task_id: str
    dedup_key: str
    retry: RetryConfig


class TaskContent(KitModel):
    """What every task spec has, whatever its target: method, headers, body, schedule, naming, retries.

    :class:`TaskSpec` (HTTP targets) and :class:`~cloudtasks_kit.AppEngineTask` add where it goes.
    """

    method: HttpMethod = "POST"
    headers: dict[str, str] = pydantic.Field(default_factory=dict)
    body: bytes | None = None
    text: str | None = None
    json_: Any = pydantic.Field(default=None, alias="json")
    delay: timedelta | None = None
    at: datetime | None = None
    deadline: timedelta | None = None
    task_id: str | None = None
    dedup_key: str | None = None
    retry: RetryConfig | None = None

    @pydantic.field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: Any) -> Any:
        # A field validator runs only when a method is given: the usual create pays nothing for it.
        return method.upper() if isinstance(method, str) else method

    def _given_bodies(self) -> list[str]:
        return [name.rstrip("_") for name in ("body", "text", "json_") if name in self.model_fields_set]

    def _check_one_body(self) -> None:
        given = self.model_fields_set
        if ("body" in given) + ("text" in given) + ("json_" in given) > 1:  # the usual case: one or none
            _one_body(self._given_bodies())

    def _check_schedule_and_name(self) -> None:
        """``delay`` xor ``at`` (timezone-aware), ``task_id`` xor ``dedup_key``, both well formed."""
        if self.delay is not None:
            if self.at is not None:
                raise ValidationError(
                    "delay and at", (self.delay, self.at), "are exclusive: give one schedule"
                )
            if self.delay < timedelta(0):
                raise ValidationError("delay", self.delay, "must not be negative")
        if self.at is not None:
            rules.check_aware("at", self.at)
        if self.task_id is not None:
            rules.check_task_id(self.task_id)
            if self.dedup_key is not None:
                raise ValidationError(
                    "task_id and dedup_key", (self.task_id, self.dedup_key), "are exclusive"
                )
        if self.dedup_key is not None:
            if not self.dedup_key:
                raise ValidationError("dedup_key", self.dedup_key, "must not be empty")
            rules.check_text("dedup_key", self.dedup_key)

    @property
    def resolved_task_id(self) -> str | None:
        """The id the task will have: ``task_id``, the hash of ``dedup_key``, or None (service picks)."""
        if self.task_id is not None:
            return self.task_id
        if self.dedup_key is not None:
            return task_id_for_key(self.dedup_key)
        return None

    def encoded(self) -> tuple[bytes | None, dict[str, str]]:
        """The body bytes, and the headers with the Content-Type the body implies."""
        json_value = self.json_ if "json_" in self.model_fields_set else NO_JSON
        return encode_body(self.headers, body=self.body, text=self.text, json=json_value)

    def _fill(self, msg: Any, request: Any, *, queue_name: str, now: float) -> int:
        """Fill what every target shares into a raw ``Task`` (``msg``) and its target request; returns
        the total size of the headers put in (names and values)."""
        task_id = self.resolved_task_id
        if task_id is not None:
            msg.name = task_path(queue_name, task_id)
        request.http_method = rules.METHOD_VALUES[self.method]
        body, headers = self.encoded()
        into, total = request.headers, 0
        for name, value in headers.items():  # a loop: a message map's update() is generic Python code
            into[name] = value
            total += len(name) + len(value)
        if body is not None:
            request.body = body
        if self.at is not None:
            set_seconds(msg.schedule_time, self.at.timestamp())
        elif self.delay is not None:
            set_seconds(msg.schedule_time, now + self.delay.total_seconds())
        if self.deadline is not None:
            set_timedelta(msg.dispatch_deadline, self.deadline)
        if self.retry is not None:
            msg.retry_config.CopyFrom(self.retry.to_pb())
        return total


class TaskSpec(TaskContent):
    """Everything a caller says about an HTTP task.

    Give at most one of ``body`` (bytes), ``text`` (sent as UTF-8, ``text/plain`` unless a Content-Type is
    given) and ``json`` (any JSON value, ``application/json`` unless given). Schedule with ``delay`` or a
    timezone-aware ``at``, not both. Name the task with ``task_id``, or give a ``dedup_key`` that becomes
    a stable hashed id (:func:`task_id_for_key`), so creating it twice fails with ``AlreadyExists``.

    Example:
        ``TaskSpec(url="https://worker.example.com/send", json={"to": "a@b.c"}, delay=timedelta(minutes=5),
        dedup_key="welcome-42")``
    """

    url: str
    oidc: OidcToken | None = None
    oauth: OAuthToken | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> TaskSpec:
        rules.check_url(self.url)
        self._check_one_body()
        if self.headers:
            rules.check_headers(self.headers.items(), strict=True)
        self._check_schedule_and_name()
        if self.oidc is not None or self.oauth is not None:
            check_one_token(self.oidc, self.oauth)
            for kind, token in (("oidc", self.oidc), ("oauth", self.oauth)):
                for name, value in token or ():
                    if isinstance(value, str):
                        rules.check_text(f"{kind}.{name}", value)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Specs end up in logs and tracebacks: header values such as API keys must not, nor a megabyte of
        # body. Fields left at their default are left out; the URL, which says what the task is, first.
        for name, value in sorted(super().__repr_args__(), key=lambda arg: arg[0] != "url"):
            if name not in self.model_fields_set and name != "url":
                continue
            if name == "url":
                yield name, _Shown(repr(redact_url(value)))
            elif name == "headers":
                yield name, redact_headers(value)
            elif name == "body" and value is not None:
                yield name, _Shown(f"<{len(value)} bytes>")
            elif name in ("text", "json_", "dedup_key"):
                yield name, _Shown(shorten(value, 60))
            else:
                yield name, value


class _Shown(str):
    """A string that a repr shows as is (no quotes): a summary standing in for a value."""

    def __repr__(self) -> str:
        return str(self)


def _one_body(given: list[str]) -> None:
    if len(given) > 1:
        raise ValidationError(
            " and ".join(given), "both given", "are exclusive: give the body as bytes, text or json"
        )


def encode_body(
    headers: Mapping[str, str], *, body: bytes | None = None, text: str | None = None, json: Any = NO_JSON
) -> tuple[bytes | None, dict[str, str]]:
    """The body as bytes and the headers to send with it.

    At most one of ``body``, ``text`` (UTF-8, ``text/plain``) and ``json`` (``application/json``); the
    implied Content-Type is added unless ``headers`` has one.
    """
    if (body is not None) + (text is not None) + (json is not NO_JSON) > 1:
        given = [name for name, value in (("body", body), ("text", text)) if value is not None]
        _one_body([*given, "json"] if json is not NO_JSON else given)
    out = dict(headers)
    if body is not None:
        return body, out
    if text is not None:
        data, content_type = rules.check_text("text", text).encode(), _TEXT
    elif json is not NO_JSON:
        try:
            data, content_type = pydantic_core.to_json(json), _JSON
        except pydantic_core.PydanticSerializationError as exc:
            raise ValidationError("json", json, f"is not JSON-serialisable ({exc})") from None
    else:
        return None, out
    if not out or not any(key.lower() == "content-type" for key in out):
        out["Content-Type"] = content_type
    return data, out


def task_id_for_key(dedup_key: str) -> str:
    """The stable task id for a deduplication key: its SHA-256 in hex.

    Hashed ids are also what Google advises: sequential ids raise latency and error rates.
    """
    return hashlib.sha256(dedup_key.encode()).hexdigest()


def build_task(
    spec: TaskSpec,
    *,
    queue_name: str,
    now: float,
    limits: rules.Limits = rules.DEFAULT_LIMITS,
    into: Any = None,
) -> Any:
    """The official ``Task`` protobuf for ``spec`` in the queue ``queue_name``, checked by the rules.

    ``now`` (seconds since the epoch, on the transport's clock) anchors ``delay``. ``into`` is an empty
    ``Task`` protobuf to fill (a request's ``task`` field) instead of a new one.
    """
    msg = _PB_TASK() if into is None else into
    request = msg.http_request
    request.url = spec.url
    header_bytes = spec._fill(msg, request, queue_name=queue_name, now=now)
    if spec.oidc is not None:
        spec.oidc.fill(request.oidc_token)
    elif spec.oauth is not None:
        spec.oauth.fill(request.oauth_token)
    # The spec checked its URL and headers.
    rules.check_built_task(msg, now=now, limits=limits, header_bytes=header_bytes)
    return msg


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One dispatch of a task. ``response_code`` is a ``google.rpc.Code`` (0 for a 2xx answer)."""

    schedule_time: datetime | None
    dispatch_time: datetime | None
    response_time: datetime | None
    response_code: int | None
    response_message: str | None

    @classmethod
    def from_pb(cls, msg: Any) -> Attempt:
        has_status = msg.HasField("response_status")
        return cls(
            schedule_time=to_datetime(msg.schedule_time),
            dispatch_time=to_datetime(msg.dispatch_time),
            response_time=to_datetime(msg.response_time),
            response_code=msg.response_status.code if has_status else None,
            response_message=msg.response_status.message if has_status else None,
        )


class CreateOutcome(str, enum.Enum):
    """How a create came by the task it returns (:attr:`Task.create_outcome`).

    A create with an id may be retried after an attempt whose answer was lost (a timeout, a dropped
    connection). The retry then finds the id taken: either that lost attempt created the task, or the id
    was used before this call. The kit tells them apart by reading the task (see docs/reliability.md):

    - ``CREATED``: the attempt that was answered created the task (the usual case).
    - ``LANDED``: an earlier attempt of this call created it and its answer was lost; the kit read the
      task back and its ``create_time`` is not before this call started.
    - ``UNCONFIRMED``: a retry found the id taken after a lost answer, and the task could not be read (no
      ``cloudtasks.tasks.get`` permission, the read failed, or the task already ran or was deleted):
      this call created it or the id was used before; only the name is known.

    An id found taken and read back with an earlier ``create_time``, or taken on the first attempt, is
    never an outcome: the create raises :class:`~cloudtasks_kit.AlreadyExists`.
    """

    CREATED = "created"
    LANDED = "landed"
    UNCONFIRMED = "unconfirmed"


class Task:
    """A task as the service describes it. ``raw`` is the official ``tasks_v2.Task`` message.

    ``body`` is None when the task was read with the BASIC view (the default, and what create returns);
    ask for ``view="FULL"`` to get it. A task returned by a create also says how the create came by it
    (:attr:`create_outcome`, :attr:`created_by_this_call`).
    """

    __slots__ = ("__dict__", "_outcome", "_pb")

    def __init__(self, pb: Any, outcome: CreateOutcome | None = None) -> None:
        self._pb = pb
        self._outcome = outcome

    @classmethod
    def from_message(cls, message: Any, outcome: CreateOutcome | None = None) -> Task:
        """From an official ``tasks_v2.Task`` (proto-plus) or its raw protobuf."""
        return cls(tasks_v2.Task.pb(message) if isinstance(message, tasks_v2.Task) else message, outcome)

    @property
    def create_outcome(self) -> CreateOutcome | None:
        """How the create that returned this task came by it; None for a task that was read (get, list,
        run), not created."""
        return self._outcome

    @property
    def created_by_this_call(self) -> bool | None:
        """True when the create that returned this task made it (``CREATED`` or ``LANDED``); None when the
        kit cannot tell (``UNCONFIRMED``) or the task was read, not created.

        Never False: a create that finds the id used before it raises
        :class:`~cloudtasks_kit.AlreadyExists` instead of returning.
        """
        if self._outcome is None or self._outcome is CreateOutcome.UNCONFIRMED:
            return None
        return True

    @cached_property
    def raw(self) -> tasks_v2.Task:
        """The official message, for fields the kit does not surface."""
        message: tasks_v2.Task = tasks_v2.Task.wrap(self._pb)
        return message

    @property
    def name(self) -> str:
        """The full name, ``projects/P/locations/L/queues/Q/tasks/T``."""
        return str(self._pb.name)

    @property
    def id(self) -> str:
        """The short task id, ``T``."""
        return short_id(self._pb.name)

    @property
    def queue(self) -> str:
        """The short id of the task's queue."""
        return short_id(self.queue_name)

    @property
    def queue_name(self) -> str:
        """The full name of the task's queue."""
        return queue_of_task(self._pb.name)

    @property
    def url(self) -> str:
        """The target URL of an HTTP task ("" for an App Engine task: see :attr:`relative_uri`)."""
        return str(self._pb.http_request.url)

    @property
    def app_engine(self) -> bool:
        """True for an App Engine task (``app_engine_http_request``)."""
        return bool(self._pb.HasField("app_engine_http_request"))

    @property
    def relative_uri(self) -> str | None:
        """An App Engine task's path (and query) on the app; None for an HTTP task."""
        return str(self._pb.app_engine_http_request.relative_uri) if self.app_engine else None

    @property
    def _request(self) -> Any:
        return self._pb.app_engine_http_request if self.app_engine else self._pb.http_request

    @property
    def method(self) -> str:
        return rules.METHOD_NAMES.get(self._request.http_method, "POST")

    @cached_property
    def headers(self) -> dict[str, str]:
        return dict(self._request.headers)

    @property
    def view(self) -> Literal["BASIC", "FULL"]:
        return "FULL" if self._pb.view == _FULL else "BASIC"

    @property
    def body(self) -> bytes | None:
        """The body bytes with the FULL view; None with BASIC, which leaves it out."""
        return bytes(self._request.body) if self._pb.view == _FULL else None

    def json(self) -> Any:
        """The body decoded as JSON (FULL view only)."""
        body = self.body
        if body is None:
            raise ValueError(
                f"task {self.id} was read with the BASIC view, which has no body; use view='FULL'"
            )
        return json.loads(body)

    @property
    def schedule_time(self) -> datetime | None:
        return to_datetime(self._pb.schedule_time)

    @property
    def create_time(self) -> datetime | None:
        return to_datetime(self._pb.create_time)

    @property
    def dispatch_deadline(self) -> timedelta | None:
        return to_timedelta(self._pb.dispatch_deadline) if self._pb.HasField("dispatch_deadline") else None

    @property
    def dispatch_count(self) -> int:
        return int(self._pb.dispatch_count)

    @property
    def response_count(self) -> int:
        return int(self._pb.response_count)

    @property
    def first_attempt(self) -> Attempt | None:
        return Attempt.from_pb(self._pb.first_attempt) if self._pb.HasField("first_attempt") else None

    @property
    def last_attempt(self) -> Attempt | None:
        return Attempt.from_pb(self._pb.last_attempt) if self._pb.HasField("last_attempt") else None

    @property
    def retry_config(self) -> RetryConfig | None:
        return RetryConfig.from_pb(self._pb.retry_config) if self._pb.HasField("retry_config") else None

    @property
    def oidc(self) -> OidcToken | None:
        request = self._pb.http_request
        return OidcToken.from_pb(request.oidc_token) if request.HasField("oidc_token") else None

    @property
    def oauth(self) -> OAuthToken | None:
        request = self._pb.http_request
        return OAuthToken.from_pb(request.oauth_token) if request.HasField("oauth_token") else None

    def __repr__(self) -> str:  # the URL's credential-like query values stay out of logs
        if self.app_engine:
            where = redact_url(self.relative_uri or "/")
            return f"Task(id={self.id!r}, queue={self.queue!r}, method={self.method}, relative_uri={where!r})"
        return (
            f"Task(id={self.id!r}, queue={self.queue!r}, method={self.method}, url={redact_url(self.url)!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self._pb == other._pb

    __hash__ = None  # type: ignore[assignment]
