"""Queue configuration (rate limits, retry config, queue-level HTTP target) and the typed :class:`Queue`.

Durations are ``timedelta``, never raw protobuf Durations. Every config type converts to the official
message with ``to_pb()`` and is checked by the same rules the engine applies.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from google.cloud import tasks_v2

from . import rules
from ._convert import set_timedelta, to_datetime, to_timedelta
from ._model import KitModel
from .auth import OAuthToken, OidcToken, check_one_token
from .names import short_id

if TYPE_CHECKING:
    from .appengine import AppEngineRouting

__all__ = ["Queue", "QueueHttpTarget", "QueueState", "RateLimits", "RetryConfig", "UriOverride"]

_PB_QUEUE = tasks_v2.Queue.pb()


class QueueState(str, enum.Enum):
    """A queue's state. Tasks are added in every state; only RUNNING queues dispatch them."""

    UNSPECIFIED = "STATE_UNSPECIFIED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


_State = tasks_v2.Queue.State
_STATE_BY_NUMBER = {
    _State.STATE_UNSPECIFIED: QueueState.UNSPECIFIED,
    _State.RUNNING: QueueState.RUNNING,
    _State.PAUSED: QueueState.PAUSED,
    _State.DISABLED: QueueState.DISABLED,
}


class RetryConfig(KitModel):
    """How failed attempts are retried, for a queue or (overriding it) for one task.

    Retrying stops when both ``max_attempts`` and ``max_retry_duration`` are used up.

    Example:
        ``RetryConfig(max_attempts=5, min_backoff=timedelta(seconds=10), max_backoff=timedelta(minutes=5))``
    """

    max_attempts: int | None = None
    """Attempts in all, counting the first; -1 means unlimited."""
    max_retry_duration: timedelta | None = None
    """Time limit for retrying, from the first attempt; zero means unlimited."""
    min_backoff: timedelta | None = None
    max_backoff: timedelta | None = None
    max_doublings: int | None = None
    """How many times the backoff doubles before it grows linearly."""

    @pydantic.model_validator(mode="after")
    def _check(self) -> RetryConfig:
        rules.check_retry_config(self.to_pb())
        return self

    def to_pb(self) -> Any:
        """The official ``RetryConfig`` protobuf."""
        msg = tasks_v2.RetryConfig.pb()()
        if self.max_attempts is not None:
            msg.max_attempts = self.max_attempts
        if self.max_doublings is not None:
            msg.max_doublings = self.max_doublings
        for name in ("max_retry_duration", "min_backoff", "max_backoff"):
            value = getattr(self, name)
            if value is not None:
                set_timedelta(getattr(msg, name), value)
        return msg

    @classmethod
    def from_pb(cls, msg: Any) -> RetryConfig:
        return cls.model_construct(
            max_attempts=msg.max_attempts,
            max_retry_duration=to_timedelta(msg.max_retry_duration),
            min_backoff=to_timedelta(msg.min_backoff),
            max_backoff=to_timedelta(msg.max_backoff),
            max_doublings=msg.max_doublings,
        )

    def mask_paths(self, prefix: str) -> list[str]:
        return [f"{prefix}.{name}" for name in sorted(self.model_fields_set)]


class RateLimits(KitModel):
    """How fast a queue dispatches: a token bucket refilled at ``max_dispatches_per_second``.

    ``max_burst_size`` is chosen by the service and only ever read back.
    """

    max_dispatches_per_second: float | None = None
    max_concurrent_dispatches: int | None = None
    max_burst_size: int | None = pydantic.Field(default=None, description="output only")

    @pydantic.model_validator(mode="after")
    def _check(self) -> RateLimits:
        rules.check_rate_limits(self.to_pb())
        return self

    def to_pb(self) -> Any:
        msg = tasks_v2.RateLimits.pb()()
        if self.max_dispatches_per_second is not None:
            msg.max_dispatches_per_second = self.max_dispatches_per_second
        if self.max_concurrent_dispatches is not None:
            msg.max_concurrent_dispatches = self.max_concurrent_dispatches
        return msg

    @classmethod
    def from_pb(cls, msg: Any) -> RateLimits:
        return cls.model_construct(
            max_dispatches_per_second=msg.max_dispatches_per_second,
            max_concurrent_dispatches=msg.max_concurrent_dispatches,
            max_burst_size=msg.max_burst_size,
        )

    def mask_paths(self, prefix: str) -> list[str]:
        return [f"{prefix}.{name}" for name in sorted(self.model_fields_set - {"max_burst_size"})]


_Scheme = tasks_v2.UriOverride.Scheme
_SCHEMES: dict[int, Literal["http", "https"]] = {_Scheme.HTTP: "http", _Scheme.HTTPS: "https"}
_IF_NOT_EXISTS = tasks_v2.UriOverride.UriOverrideEnforceMode.IF_NOT_EXISTS
_ALWAYS = tasks_v2.UriOverride.UriOverrideEnforceMode.ALWAYS


class UriOverride(KitModel):
    """Queue-level rewrite of each task's URL. ``host`` is required (the service refuses an empty one);
    the other unset parts keep the task's own.

    ``enforce="always"`` (the default) applies it to every task; ``"if_not_exists"`` only fills what a
    task leaves out. BufferTask needs a queue with at least ``host`` set.
    """

    scheme: Literal["http", "https"] | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    query: str | None = None
    enforce: Literal["always", "if_not_exists"] = "always"

    @pydantic.model_validator(mode="after")
    def _check(self) -> UriOverride:
        # The service refuses an empty host, and proto3 cannot tell an unset host from an empty one, so a
        # UriOverride without a host is refused here, before any I/O (see rules.check_uri_override).
        rules.check_uri_override(self.to_pb())
        return self

    def to_pb(self) -> Any:
        msg = tasks_v2.UriOverride.pb()()
        if self.scheme is not None:
            msg.scheme = _Scheme.HTTP if self.scheme == "http" else _Scheme.HTTPS
        if self.host is not None:
            msg.host = self.host
        if self.port is not None:
            msg.port = self.port
        if self.path is not None:
            msg.path_override.path = self.path
        if self.query is not None:
            msg.query_override.query_params = self.query
        msg.uri_override_enforce_mode = _IF_NOT_EXISTS if self.enforce == "if_not_exists" else _ALWAYS
        return msg

    @classmethod
    def from_pb(cls, msg: Any) -> UriOverride:
        return cls.model_construct(
            scheme=_SCHEMES.get(msg.scheme),
            host=msg.host or None,
            port=msg.port or None,
            path=msg.path_override.path if msg.HasField("path_override") else None,
            query=msg.query_override.query_params if msg.HasField("query_override") else None,
            enforce="if_not_exists" if msg.uri_override_enforce_mode == _IF_NOT_EXISTS else "always",
        )


class QueueHttpTarget(KitModel):
    """Queue-level routing and auth for HTTP tasks: it overrides what each task says.

    At queue level a token needs both parts: the service account and the audience (OIDC) or the
    scope (OAuth).

    Example:
        ``QueueHttpTarget(uri_override=UriOverride(host="worker.example.com"), method="POST",
        oidc=OidcToken(service_account_email="tasks@p.iam.gserviceaccount.com",
        audience="https://worker.example.com"))``
    """

    uri_override: UriOverride | None = None
    method: rules.HttpMethod | None = None
    headers: dict[str, str] = pydantic.Field(default_factory=dict)
    oidc: OidcToken | None = None
    oauth: OAuthToken | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return data

    @pydantic.model_validator(mode="after")
    def _check(self) -> QueueHttpTarget:
        check_one_token(self.oidc, self.oauth, field="http_target")
        rules.check_http_target(self.to_pb())
        return self

    def to_pb(self) -> Any:
        msg = tasks_v2.HttpTarget.pb()()
        if self.uri_override is not None:
            msg.uri_override.CopyFrom(self.uri_override.to_pb())
        if self.method is not None:
            msg.http_method = rules.METHOD_VALUES[self.method]
        for key, value in self.headers.items():
            override = msg.header_overrides.add()
            override.header.key = key
            override.header.value = value
        if self.oidc is not None:
            self.oidc.fill(msg.oidc_token)
        if self.oauth is not None:
            self.oauth.fill(msg.oauth_token)
        return msg

    @classmethod
    def from_pb(cls, msg: Any) -> QueueHttpTarget:
        return cls.model_construct(
            uri_override=UriOverride.from_pb(msg.uri_override) if msg.HasField("uri_override") else None,
            method=rules.METHOD_NAMES[msg.http_method] if msg.http_method else None,
            headers={o.header.key: o.header.value for o in msg.header_overrides},
            oidc=OidcToken.from_pb(msg.oidc_token) if msg.HasField("oidc_token") else None,
            oauth=OAuthToken.from_pb(msg.oauth_token) if msg.HasField("oauth_token") else None,
        )


def build_queue_pb(
    name: str,
    rate_limits: RateLimits | None,
    retry: RetryConfig | None,
    http_target: QueueHttpTarget | None,
    app_engine_routing: AppEngineRouting | None = None,
) -> tuple[Any, list[str]]:
    """The ``Queue`` protobuf for a create or update, and the update mask of what was given.

    ``app_engine_routing`` becomes the queue's ``app_engine_routing_override``: it wins over the routing of
    every App Engine task in the queue."""
    msg = _PB_QUEUE(name=name)
    paths: list[str] = []
    if rate_limits is not None:
        msg.rate_limits.CopyFrom(rate_limits.to_pb())
        paths += rate_limits.mask_paths("rate_limits")
    if retry is not None:
        msg.retry_config.CopyFrom(retry.to_pb())
        paths += retry.mask_paths("retry_config")
    if http_target is not None:
        msg.http_target.CopyFrom(http_target.to_pb())
        paths.append("http_target")
    if app_engine_routing is not None:
        app_engine_routing.fill(msg.app_engine_routing_override)
        paths += [f"app_engine_routing_override.{part}" for part in ("service", "version", "instance")]
    rules.check_queue_config(msg)
    return msg, paths


class Queue:
    """A queue as the service describes it. ``raw`` is the official ``tasks_v2.Queue`` message."""

    __slots__ = ("__dict__", "_pb")

    def __init__(self, pb: Any) -> None:
        self._pb = pb

    @classmethod
    def from_message(cls, message: Any) -> Queue:
        """From an official ``tasks_v2.Queue`` (proto-plus) or its raw protobuf."""
        return cls(tasks_v2.Queue.pb(message) if isinstance(message, tasks_v2.Queue) else message)

    @cached_property
    def raw(self) -> tasks_v2.Queue:
        """The official message, for fields the kit does not surface."""
        message: tasks_v2.Queue = tasks_v2.Queue.wrap(self._pb)
        return message

    @property
    def raw_pb(self) -> Any:
        """The raw protobuf under :attr:`raw` (read it, do not change it)."""
        return self._pb

    @property
    def name(self) -> str:
        """The full name, ``projects/P/locations/L/queues/Q``."""
        return str(self._pb.name)

    @property
    def id(self) -> str:
        """The short queue id, ``Q``."""
        return short_id(self._pb.name)

    @property
    def state(self) -> QueueState:
        return _STATE_BY_NUMBER.get(self._pb.state, QueueState.UNSPECIFIED)

    @cached_property
    def rate_limits(self) -> RateLimits:
        return RateLimits.from_pb(self._pb.rate_limits)

    @cached_property
    def retry_config(self) -> RetryConfig:
        return RetryConfig.from_pb(self._pb.retry_config)

    @cached_property
    def http_target(self) -> QueueHttpTarget | None:
        return QueueHttpTarget.from_pb(self._pb.http_target) if self._pb.HasField("http_target") else None

    @property
    def app_engine_routing(self) -> AppEngineRouting | None:
        """The queue's ``app_engine_routing_override`` (it wins over every App Engine task's routing)."""
        from .appengine import AppEngineRouting

        if not self._pb.HasField("app_engine_routing_override"):
            return None
        routing = self._pb.app_engine_routing_override
        return AppEngineRouting(service=routing.service, version=routing.version, instance=routing.instance)

    @property
    def purge_time(self) -> datetime | None:
        return to_datetime(self._pb.purge_time)

    def __repr__(self) -> str:
        return f"Queue(name={self.name!r}, state={self.state.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and self._pb == other._pb

    __hash__ = None  # type: ignore[assignment]
