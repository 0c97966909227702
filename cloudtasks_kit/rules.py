"""The service's limits and formats, written once.

The builders call these before any I/O; the engine behind the fake and the emulator calls the very same
functions and answers ``INVALID_ARGUMENT`` with the message they produce. Each check raises
:class:`~cloudtasks_kit.errors.ValidationError` naming the field, the bad value and the rule.

The checks on whole messages take the raw protobuf (``tasks_v2.Task.pb(task)``), which is what both the
builders and the engine hold; reading it is a C call per field.

Where the sources disagree on a number (see ``shared/service-rules.md``), it lives in :class:`Limits`
with the default named there, so a user can match what their project sees.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from ._convert import to_seconds
from ._redact import REDACTED, is_secret_name, redact_url
from .errors import ValidationError

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "check_app_engine_dispatch_deadline",
    "check_app_engine_headers",
    "check_app_engine_request",
    "check_app_engine_routing",
    "check_aware",
    "check_built_task",
    "check_dispatch_deadline",
    "check_headers",
    "check_location_id",
    "check_project_id",
    "check_queue_config",
    "check_queue_id",
    "check_relative_uri",
    "check_task_id",
    "check_task_message",
    "check_text",
    "check_uri_override",
    "check_url",
    "reserved_header",
]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Numbers that differ between sources, or that a test may want smaller.

    Attributes:
        max_task_bytes: largest task (the serialised message). The API reference says 100 KB, the quotas
            page 1 MB; 1 MiB by default for HTTP tasks.
        max_header_bytes: total size of a task's header names and values (under 80 KB).
        task_tombstone: how long a deleted or finished task's id stays taken (~1 hour documented; the
            client docstring says up to 24 hours).
        queue_tombstone: how long a deleted queue's name stays taken (3 to 7 days).
        min_dispatch_deadline: the shortest dispatch deadline an HTTP task may have (15 seconds; lower it
            only to test timeouts quickly on the fake or the emulator).
        max_retry_after: the longest wait a worker's ``Retry-After`` answer (429 or 503) may impose on a
            task and its queue. The service's bound is not documented; one hour by default (the longest
            default backoff).
        max_request_bytes: the largest request message the transport carries (client side). Bulk creates
            cut their BatchCreateTasks calls to stay a sixteenth under it. 4 MiB by default: gRPC's
            default largest message, which a server such as the emulator's refuses beyond.
        clock_skew: how far the service's clock may lag this machine's (client side). A create retried
            after a lost answer that finds its id taken reads the task: it is this call's if its
            ``create_time`` is not before the second in which the call started, less this much. 0 by
            default (exact on the fake, the emulator and a host kept in sync by NTP); see
            docs/reliability.md.
    """

    max_task_bytes: int = 1024 * 1024
    max_header_bytes: int = 80 * 1024
    task_tombstone: timedelta = timedelta(hours=1)
    queue_tombstone: timedelta = timedelta(days=3)
    min_dispatch_deadline: timedelta = timedelta(seconds=15)
    max_retry_after: timedelta = timedelta(hours=1)
    max_request_bytes: int = 4 * 1024 * 1024
    clock_skew: timedelta = timedelta(0)


DEFAULT_LIMITS = Limits()

# Formats and fixed limits (the service documents one value for each).
TASK_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,500}")
QUEUE_ID_RE = re.compile(r"[A-Za-z0-9-]{1,100}")
PROJECT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,99}")
LOCATION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
MAX_URL_LENGTH = 2083
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_DISPATCH_DEADLINE = timedelta(minutes=30)
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
MAX_DISPATCHES_PER_SECOND = 500.0
MAX_DURATION_SECONDS = 315_576_000_000  # google.protobuf.Duration's documented range
MAX_CONCURRENT_DISPATCHES = 5000
BATCH_CREATE_MAX = 100
BATCH_DELETE_MAX = 1000
LIST_TASKS_MAX_PAGE = 1000
LIST_QUEUES_MAX_PAGE = 9800
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

HttpMethod = Literal["POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]

# HttpMethod enum values (google.cloud.tasks.v2.HttpMethod); unspecified means POST.
METHOD_NAMES: dict[int, HttpMethod] = {
    0: "POST",
    1: "POST",
    2: "GET",
    3: "HEAD",
    4: "PUT",
    5: "DELETE",
    6: "PATCH",
    7: "OPTIONS",
}
METHOD_VALUES = {"POST": 1, "GET": 2, "HEAD": 3, "PUT": 4, "DELETE": 5, "PATCH": 6, "OPTIONS": 7}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Headers Cloud Tasks computes or keeps for itself; a task that sets them loses them silently, so the
# builders refuse them and the engine drops or replaces them at delivery, as the service does.
RESERVED_HEADER_PREFIXES = ("x-google-", "x-appengine-", "x-cloudtasks-")
COMPUTED_HEADERS = frozenset({"host", "content-length", "user-agent"})
USER_AGENT = "Google-Cloud-Tasks"

# App Engine tasks (google.cloud.tasks.v2.AppEngineHttpRequest, v2 reference and the installed
# tasks_v2/types/target.py): "The headers below cannot be set or overridden: Host, X-Google-*,
# X-AppEngine-*"; User-Agent may be set, and the service appends its own to it.
APP_ENGINE_RESERVED_PREFIXES = ("x-google-", "x-appengine-")
APP_ENGINE_COMPUTED_HEADERS = frozenset({"host", "content-length"})
APP_ENGINE_USER_AGENT = "AppEngine-Google; (+http://code.google.com/appengine)"
# "A request body is allowed only if the HTTP method is POST or PUT" (AppEngineHttpRequest.body); HTTP
# tasks also allow PATCH.
APP_ENGINE_BODY_METHODS = frozenset({"POST", "PUT"})
# Task.dispatch_deadline (tasks_v2/types/task.py): "For App Engine tasks, 0 indicates that the request has
# the default deadline [...] 10 minutes for standard apps with automatic scaling, 24 hours for standard
# apps with manual and basic scaling, and 60 minutes for flex apps. If the request deadline is set, it
# must be in the interval [15 seconds, 24 hours 15 seconds]."
MAX_APP_ENGINE_DISPATCH_DEADLINE = timedelta(hours=24, seconds=15)


def _id_check(pattern: re.Pattern[str], field: str, rule: str, value: object) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValidationError(field, value, rule)
    return value


def check_task_id(value: object) -> str:
    """``task id 'a b' may contain only letters, digits, '-' and '_' (1-500 chars)``."""
    return _id_check(
        TASK_ID_RE, "task id", "may contain only letters, digits, '-' and '_' (1-500 chars)", value
    )


def check_queue_id(value: object) -> str:
    """Queue ids: letters, digits and hyphens, at most 100 characters."""
    return _id_check(QUEUE_ID_RE, "queue id", "may contain only letters, digits and '-' (1-100 chars)", value)


def check_project_id(value: object) -> str:
    """Project ids: letters, digits, '-', ':' and '.' (domain-scoped projects have the last two)."""
    rule = "may contain only letters, digits, '-', ':' and '.' (1-100 chars, starting with a letter or digit)"
    return _id_check(PROJECT_ID_RE, "project", rule, value)


def check_location_id(value: object) -> str:
    """Location ids such as ``us-central1``."""
    rule = "may contain only letters, digits and '-' (1-63 chars), like 'us-central1'"
    return _id_check(LOCATION_ID_RE, "location", rule, value)


def check_aware(field: str, value: datetime) -> datetime:
    """Refuse naive datetimes: proto-plus would read them as local time, silently."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            field,
            value,
            "must be timezone-aware (a naive datetime would be read as local time); "
            "use datetime.now(timezone.utc) or attach a tzinfo",
        )
    return value


_HOST_END = re.compile(r"[/?#]")
_WHITESPACE = re.compile(r"\s")


_GOOD_URL = re.compile(r"https?://[^/?#\s]+[^\s]*", re.IGNORECASE)


def check_url(value: str, field: str = "url") -> str:
    """An absolute http(s) URL with a host, at most 2083 characters, that UTF-8 can encode.

    Errors show the URL with its user info and credential-like query values (``?api_key=``...) hidden.
    """
    if len(value) <= MAX_URL_LENGTH and _GOOD_URL.fullmatch(value) and value.isascii():
        return value  # the usual case, in one match; the checks below say what is wrong otherwise
    shown = redact_url(value)
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(field, shown, f"is longer than {MAX_URL_LENGTH} characters")
    lowered = value[:8].lower()
    if lowered.startswith("https://"):
        rest = value[8:]
    elif lowered.startswith("http://"):
        rest = value[7:]
    else:
        raise ValidationError(field, shown, "must start with 'http://' or 'https://'")
    host = _HOST_END.split(rest, 1)[0]
    if not host or _WHITESPACE.search(value):
        raise ValidationError(field, shown, "must be an absolute URL with a host and no spaces")
    check_text(field, value, shown=shown)
    return value


def check_text(field: str, value: str, *, shown: object = None) -> str:
    """Text that UTF-8 can encode: a lone surrogate (``"\\ud800"``, which JSON allows) cannot be sent.

    ``shown`` stands for the value in the error, when the value itself must not be shown.
    """
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ValidationError(
                field,
                value if shown is None else shown,
                f"holds a lone surrogate ({value[exc.start]!r} at {exc.start}), which UTF-8 cannot encode",
            ) from None
    return value


def reserved_header(name: str) -> bool:
    """True for headers Cloud Tasks computes or keeps for itself (case-insensitive)."""
    lowered = name.lower()
    return lowered in COMPUTED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES)


def app_engine_reserved_header(name: str) -> bool:
    """True for headers an App Engine task may not set (Host, Content-Length, X-Google-*,
    X-AppEngine-*), case-insensitively."""
    lowered = name.lower()
    return lowered in APP_ENGINE_COMPUTED_HEADERS or lowered.startswith(APP_ENGINE_RESERVED_PREFIXES)


def check_app_engine_headers(
    headers: Iterable[tuple[str, str]], *, strict: bool, limits: Limits = DEFAULT_LIMITS
) -> None:
    """:func:`check_headers` for an App Engine task: ``strict`` refuses Host, Content-Length,
    X-Google-* and X-AppEngine-* (User-Agent may be set: the service appends its own)."""
    pairs = list(headers)
    if strict:
        for name, _ in pairs:
            if app_engine_reserved_header(name):
                raise ValidationError(
                    "header",
                    name,
                    "is set by Cloud Tasks itself on App Engine tasks (Host, Content-Length, X-Google-*, "
                    "X-AppEngine-*), so a value given here would be dropped",
                )
    check_headers(pairs, strict=False, limits=limits)


def check_relative_uri(value: str, field: str = "relative_uri") -> str:
    """An App Engine task's relative URI: "must begin with "/" and must be a valid HTTP relative URI. It
    can contain a path and query string arguments [...] No spaces are allowed, and the maximum length
    allowed is 2083 characters" (AppEngineHttpRequest.relative_uri). Empty means "/"."""
    if not value:
        return value
    shown = redact_url(value)
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(field, shown, f"is longer than {MAX_URL_LENGTH} characters")
    if not value.startswith("/") or value.startswith("//"):
        raise ValidationError(field, shown, "must start with '/' (a path on the App Engine app)")
    if _WHITESPACE.search(value) or "#" in value:
        raise ValidationError(field, shown, "must be a relative URI without spaces or a fragment")
    check_text(field, value, shown=shown)
    return value


def check_app_engine_dispatch_deadline(seconds: float, field: str = "dispatch_deadline") -> None:
    """App Engine tasks: 0 (the default of the service's scaling type), else 15 seconds to 24 hours
    15 seconds (Task.dispatch_deadline)."""
    if seconds == 0:
        return
    high = MAX_APP_ENGINE_DISPATCH_DEADLINE.total_seconds()
    if not 15 <= seconds <= high:
        raise ValidationError(
            field,
            timedelta(seconds=seconds),
            "must be 0 (the default) or between 15 seconds and 24 hours 15 seconds for an App Engine task",
        )


def check_app_engine_request(task: Any, *, now: float, limits: Limits = DEFAULT_LIMITS, strict: bool) -> None:
    """Everything CreateTask answers INVALID_ARGUMENT for in a raw ``Task`` with an
    ``app_engine_http_request``: relative URI, headers, method and body, schedule, deadline, retry, size."""
    request = task.app_engine_http_request
    check_relative_uri(request.relative_uri)
    check_app_engine_routing(request.app_engine_routing, "app_engine_routing")
    check_app_engine_headers(request.headers.items(), strict=strict, limits=limits)
    method = _method_name(request)
    if request.body and method not in APP_ENGINE_BODY_METHODS:
        raise ValidationError(
            "method",
            method,
            f"cannot carry a body on an App Engine task (it has {len(request.body)} bytes); only POST and"
            " PUT can",
        )
    _check_schedule_retry_size(task, now=now, limits=limits, app_engine=True)


def check_app_engine_routing(routing: Any, field: str) -> None:
    """The ``service``, ``version`` and ``instance`` of an App Engine routing (a protobuf or the kit's
    model): each empty (the default) or letters, digits and '-', 1-63 characters, starting with a letter
    or digit. ``field`` names the routing in errors."""
    for part in ("service", "version", "instance"):
        value = getattr(routing, part)
        if value and not _ROUTING_PART.fullmatch(value):
            raise ValidationError(
                f"{field}.{part}", value, "may contain only letters, digits and '-' (1-63 chars)"
            )


_ROUTING_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")


def _method_name(request: Any) -> str:
    """The HTTP method of a raw target request, by name; an unknown number is refused."""
    method = METHOD_NAMES.get(request.http_method)
    if method is None:
        raise ValidationError("method", request.http_method, "is not a known HTTP method")
    return method


def check_headers(
    headers: Iterable[tuple[str, str]],
    *,
    strict: bool,
    limits: Limits = DEFAULT_LIMITS,
    field: str = "header",
) -> None:
    """Header names must be tokens, values single-line, the total under the limit.

    ``strict`` (the builders) also refuses the reserved and computed headers that the service would drop
    or replace without a word; the engine is not strict, like the service.
    """
    total = 0
    for name, value in headers:
        total += len(name) + len(value)
        if (
            _TOKEN_RE.fullmatch(name)
            and _SAFE_VALUE.fullmatch(value)
            and not (strict and reserved_header(name))
        ):
            continue  # the usual header, in two matches; the checks below say what is wrong otherwise
        if not _TOKEN_RE.fullmatch(name):
            raise ValidationError(field, name, "is not a valid HTTP header name")
        # The value of an Authorization, Cookie or API-key header is a credential: errors never show it.
        shown = REDACTED if is_secret_name(name) else value
        if _LINE_BREAK.search(value):
            raise ValidationError(f"{field} {name!r} value", shown, "must not contain line breaks")
        check_text(f"{field} {name!r} value", value, shown=shown)
        if strict and reserved_header(name):
            raise ValidationError(
                field,
                name,
                "is set by Cloud Tasks itself (Host, Content-Length, User-Agent, X-CloudTasks-*, "
                "X-Google-*, X-AppEngine-*), so a value given here would be dropped",
            )
    _check_header_total(total, limits)


def _check_header_total(total: int, limits: Limits) -> None:
    if total >= limits.max_header_bytes:
        raise ValidationError(
            "headers", f"{total} bytes", f"must total under {limits.max_header_bytes} bytes"
        )


_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LINE_BREAK = re.compile(r"[\r\n]")
# A value with no line break and no lone surrogate (UTF-8 encodable): every character but CR, LF and
# U+D800..U+DFFF.
_SAFE_VALUE = re.compile("[^\r\n\ud800-\udfff]*")


def check_dispatch_deadline(
    seconds: float, limits: Limits = DEFAULT_LIMITS, field: str = "dispatch_deadline"
) -> None:
    """HTTP tasks: 15 seconds (``limits.min_dispatch_deadline``) to 30 minutes."""
    low, high = limits.min_dispatch_deadline.total_seconds(), MAX_DISPATCH_DEADLINE.total_seconds()
    if not low <= seconds <= high:
        raise ValidationError(
            field, timedelta(seconds=seconds), f"must be between {low:g} seconds and 30 minutes"
        )


_VOUCHED = threading.local()


def vouch(request: Any, limits: Limits) -> None:
    """Note that the task of ``request`` (a raw ``CreateTaskRequest``) was just built and checked in this
    thread by a builder, under ``limits``: everything :func:`check_task_message` checks, and more.

    The fake's engine runs in the caller's thread and checks what it is sent, as the service does; for
    the very request a builder checked a moment ago it need not check twice (:func:`vouched`). Only the
    last request of each thread is remembered, and only by identity: a request made any other way, or
    checked under other limits, is checked again.
    """
    _VOUCHED.request = request
    _VOUCHED.limits = limits


def vouched(request: Any, limits: Limits) -> bool:
    """True if ``request`` is the one this thread's builder last checked, under these ``limits``."""
    if getattr(_VOUCHED, "request", None) is not request:
        return False
    checked_under: Limits = _VOUCHED.limits
    return checked_under is limits or checked_under == limits


def check_task_message(
    task: Any, *, queue_name: str, now: float, limits: Limits = DEFAULT_LIMITS, queue_routes: bool = False
) -> None:
    """Everything CreateTask answers INVALID_ARGUMENT for in a raw ``Task`` protobuf's content (its name
    is checked by :func:`cloudtasks_kit.names.check_task_in_queue`).

    ``queue_name`` is the request's parent; ``now`` is seconds since the epoch on the caller's clock;
    ``queue_routes`` says the queue has a URI override with a host, so a task may leave its URL out.
    """
    if task.HasField("app_engine_http_request"):
        check_app_engine_request(task, now=now, limits=limits, strict=False)
        return
    if not task.HasField("http_request"):
        raise ValidationError(
            "task",
            "without a target",
            "must have an http_request (the target URL) or an app_engine_http_request",
        )
    request = task.http_request
    if request.url or not queue_routes:
        check_url(request.url)
    check_headers(request.headers.items(), strict=False, limits=limits)
    _check_method_and_rest(task, now=now, limits=limits)


def check_built_task(
    task: Any, *, now: float, limits: Limits = DEFAULT_LIMITS, header_bytes: int | None = None
) -> None:
    """What :func:`check_task_message` checks beyond a ``TaskSpec``'s own validation (URL, header names
    and values): method and body, the headers' total against ``limits``, schedule window, deadline,
    retry config and size. The builders run this alone, giving ``header_bytes`` (the total of the
    headers they put in) so that the message's headers need not be read back."""
    if header_bytes is None:
        headers = task.http_request.headers
        header_bytes = sum(len(name) + len(value) for name, value in headers.items())
    _check_header_total(header_bytes, limits)
    _check_method_and_rest(task, now=now, limits=limits)


def _check_method_and_rest(task: Any, *, now: float, limits: Limits) -> None:
    request = task.http_request
    method = _method_name(request)
    if method not in BODY_METHODS and request.body:  # reading the body copies it: only when it matters
        raise ValidationError(
            "method",
            method,
            f"cannot carry a body (the task has {len(request.body)} bytes); only POST, PUT and PATCH can",
        )
    _check_schedule_retry_size(task, now=now, limits=limits, app_engine=False)


def _check_schedule_retry_size(task: Any, *, now: float, limits: Limits, app_engine: bool) -> None:
    if task.HasField("schedule_time"):
        ahead = task.schedule_time.seconds + task.schedule_time.nanos / 1e9 - now
        if ahead > MAX_SCHEDULE_AHEAD.total_seconds():
            raise ValidationError(
                "schedule_time", task.schedule_time.ToJsonString(), "must be at most 30 days ahead"
            )
    if task.HasField("dispatch_deadline"):
        if app_engine:
            check_app_engine_dispatch_deadline(to_seconds(task.dispatch_deadline))
        else:
            check_dispatch_deadline(to_seconds(task.dispatch_deadline), limits)
    if task.HasField("retry_config"):
        check_retry_config(task.retry_config, field="task.retry_config")
    size = task.ByteSize()
    if size > limits.max_task_bytes:
        raise ValidationError(
            "task size", f"{size} bytes", f"exceeds the limit of {limits.max_task_bytes} bytes"
        )


def check_retry_config(config: Any, field: str = "retry_config") -> None:
    """Ranges of a raw ``RetryConfig``: attempts >= -1, backoffs and doublings >= 0, min <= max."""
    if config.max_attempts < -1:
        raise ValidationError(f"{field}.max_attempts", config.max_attempts, "must be -1 (unlimited) or more")
    for name in ("min_backoff", "max_backoff", "max_retry_duration"):
        if config.HasField(name):
            check_duration(getattr(config, name), f"{field}.{name}")
        if config.HasField(name) and to_seconds(getattr(config, name)) < 0:
            raise ValidationError(
                f"{field}.{name}", getattr(config, name).ToJsonString(), "must not be negative"
            )
    if config.max_doublings < 0:
        raise ValidationError(f"{field}.max_doublings", config.max_doublings, "must not be negative")
    if (
        config.HasField("min_backoff")
        and config.HasField("max_backoff")
        and to_seconds(config.min_backoff) > to_seconds(config.max_backoff)
    ):
        raise ValidationError(
            f"{field}.min_backoff",
            config.min_backoff.ToJsonString(),
            f"must not exceed max_backoff ({config.max_backoff.ToJsonString()})",
        )


def check_rate_limits(limits: Any, field: str = "rate_limits") -> None:
    """Ranges of a raw ``RateLimits``: rate in (0, 500], concurrency in [0, 5000]."""
    rate = limits.max_dispatches_per_second
    if not 0 <= rate <= MAX_DISPATCHES_PER_SECOND:  # NaN fails this too
        raise ValidationError(
            f"{field}.max_dispatches_per_second", rate, "must be between 0 (default) and 500"
        )
    concurrent = limits.max_concurrent_dispatches
    if concurrent < 0 or concurrent > MAX_CONCURRENT_DISPATCHES:
        raise ValidationError(
            f"{field}.max_concurrent_dispatches", concurrent, "must be between 0 (default) and 5000"
        )


def check_queue_config(queue: Any) -> None:
    """Everything Create/UpdateQueue answers INVALID_ARGUMENT for in a raw ``Queue`` protobuf's
    configuration (its name is checked by :func:`cloudtasks_kit.names.parse_queue_name`)."""
    if queue.HasField("rate_limits"):
        check_rate_limits(queue.rate_limits)
    if queue.HasField("retry_config"):
        check_retry_config(queue.retry_config)
    if queue.HasField("http_target"):
        check_http_target(queue.http_target)
    if queue.HasField("app_engine_routing_override"):
        check_app_engine_routing(queue.app_engine_routing_override, "app_engine_routing_override")


def check_enum(value: int, known: Iterable[int], field: str) -> None:
    """An enum field holds one of its values (the wire lets any number through)."""
    if value not in known:
        raise ValidationError(field, value, f"is not one of the enum's values {sorted(known)}")


def check_duration(duration: Any, field: str) -> None:
    """A ``google.protobuf.Duration`` within its documented range (about 10,000 years, nanos below a
    second, both of one sign)."""
    seconds, nanos = duration.seconds, duration.nanos
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS or not -(10**9) < nanos < 10**9:
        raise ValidationError(field, f"{seconds}s {nanos}ns", "is not a valid duration")
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        raise ValidationError(field, f"{seconds}s {nanos}ns", "must have seconds and nanos of one sign")


def check_http_target(target: Any, field: str = "http_target") -> None:
    """A queue-level HTTP target: a URI override needs a host; queue-level auth needs both parts."""
    if target.http_method:
        check_enum(target.http_method, METHOD_NAMES, f"{field}.http_method")
    if target.HasField("uri_override"):
        check_uri_override(target.uri_override, field=f"{field}.uri_override")
    if target.HasField("oidc_token"):
        token = target.oidc_token
        if not token.service_account_email or not token.audience:
            raise ValidationError(
                f"{field}.oidc_token",
                _token_repr(token.service_account_email, token.audience),
                "at queue level needs both service_account_email and audience",
            )
    if target.HasField("oauth_token"):
        token = target.oauth_token
        if not token.service_account_email or not token.scope:
            raise ValidationError(
                f"{field}.oauth_token",
                _token_repr(token.service_account_email, token.scope),
                "at queue level needs both service_account_email and scope",
            )
    headers = [(o.header.key, o.header.value) for o in target.header_overrides]
    check_headers(headers, strict=False, field=f"{field}.header_overrides")


def check_uri_override(override: Any, field: str = "uri_override") -> None:
    """A raw ``UriOverride`` that is present: its host may not be empty, its port and path well formed.

    "Host value cannot be an empty string (INVALID_ARGUMENT)" (UriOverride, v2 REST reference). In proto3
    an unset host and an empty one are the same on the wire, so the rule is read as: a queue whose
    ``http_target`` has a ``uri_override`` at all (``HasField``) must give it a host.
    """
    check_enum(override.scheme, (0, 1, 2), f"{field}.scheme")
    check_enum(override.uri_override_enforce_mode, (0, 1, 2), f"{field}.uri_override_enforce_mode")
    if not override.host:
        raise ValidationError(
            f"{field}.host",
            override.host,
            "may not be empty: a URI override, when present, must name the host (INVALID_ARGUMENT)",
        )
    if not _HOST_RE.fullmatch(override.host):
        raise ValidationError(f"{field}.host", override.host, "must be a host name or address")
    if override.port < 0 or override.port > 65535:
        raise ValidationError(f"{field}.port", override.port, "must be between 0 and 65535")
    if override.path_override.path and not override.path_override.path.startswith("/"):
        raise ValidationError(
            f"{field}.path_override.path", override.path_override.path, "must start with '/'"
        )


def _token_repr(account: str, second: str) -> str:
    return f"({account or '<no account>'}, {second or '<none>'})"


_HOST_RE = re.compile(r"[A-Za-z0-9.\-\[\]:]+")
