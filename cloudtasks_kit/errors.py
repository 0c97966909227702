"""The kit's errors: one tree, the same class whichever transport answered.

```
CloudTasksError
├── UsageError (ValueError)          raised before any I/O: the call itself is wrong
│   └── ValidationError              a field breaks a service rule (field, value, rule)
├── ApiError                         the service (or the fake, or the emulator) answered with a status
│   ├── InvalidArgument              INVALID_ARGUMENT
│   ├── FailedPrecondition           FAILED_PRECONDITION
│   ├── OutOfRange                   OUT_OF_RANGE
│   ├── Unauthenticated              UNAUTHENTICATED
│   ├── PermissionDenied             PERMISSION_DENIED
│   ├── NotFound                     NOT_FOUND
│   ├── AlreadyExists                ALREADY_EXISTS
│   ├── Aborted                      ABORTED
│   ├── ResourceExhausted            RESOURCE_EXHAUSTED
│   ├── Cancelled                    CANCELLED
│   ├── Unimplemented                UNIMPLEMENTED
│   ├── Internal                     INTERNAL, DATA_LOSS
│   ├── Unknown                      UNKNOWN
│   ├── DeadlineExceeded             DEADLINE_EXCEEDED
│   └── Unavailable                  UNAVAILABLE
│       └── TransportError           no answer at all: connection refused or reset, DNS, TLS
```

gRPC and REST disagree in `google.api_core` (``AlreadyExists`` versus ``Conflict``, ``InvalidArgument``
versus ``BadRequest``...). :func:`from_exception` normalises both to the status code the service meant, so
``except cloudtasks_kit.AlreadyExists`` works on every transport. The original exception is kept as
``__cause__``. A call that got no answer at all is a :class:`TransportError`, a kind of
:class:`Unavailable`: gRPC reports a refused connection as UNAVAILABLE, REST as a connection error, and
both are the same thing to a retry policy. A request too large to be received is an
:class:`InvalidArgument` on every transport (gRPC says RESOURCE_EXHAUSTED), so it is never retried.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ApiError",
    "Cancelled",
    "CloudTasksError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "StatusCode",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "UsageError",
    "ValidationError",
    "from_exception",
    "is_too_large",
]


class StatusCode(enum.IntEnum):
    """The canonical Google RPC status codes (``google.rpc.Code``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        """The HTTP status Google's REST APIs answer with for this code."""
        return _HTTP_FOR_CODE[self]


_HTTP_FOR_CODE = {
    StatusCode.OK: 200,
    StatusCode.CANCELLED: 499,
    StatusCode.UNKNOWN: 500,
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.DEADLINE_EXCEEDED: 504,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.FAILED_PRECONDITION: 400,
    StatusCode.ABORTED: 409,
    StatusCode.OUT_OF_RANGE: 400,
    StatusCode.UNIMPLEMENTED: 501,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
    StatusCode.DATA_LOSS: 500,
    StatusCode.UNAUTHENTICATED: 401,
}

# Where a REST answer carries no status name, its HTTP status is all there is to go on.
_CODE_FOR_HTTP = {
    400: StatusCode.INVALID_ARGUMENT,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.NOT_FOUND,
    409: StatusCode.ALREADY_EXISTS,
    412: StatusCode.FAILED_PRECONDITION,
    416: StatusCode.OUT_OF_RANGE,
    429: StatusCode.RESOURCE_EXHAUSTED,
    499: StatusCode.CANCELLED,
    500: StatusCode.INTERNAL,
    501: StatusCode.UNIMPLEMENTED,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.DEADLINE_EXCEEDED,
}


class CloudTasksError(Exception):
    """Base class of every error the kit raises."""


class UsageError(CloudTasksError, ValueError):
    """The call is wrong in itself; raised before any I/O."""


class ValidationError(UsageError):
    """A field breaks one of the service's rules.

    The message names the field, the bad value and the rule, for example
    ``task id 'a b' may contain only letters, digits, '-' and '_' (1-500 chars)``.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field} {_show(value)} {rule}")


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, datetime):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"...' ({len(text)} chars)"


class ApiError(CloudTasksError):
    """The service answered with a non-OK status.

    Attributes:
        code: the canonical status code, the same whichever transport carried the call.
        message: the service's message.
    """

    code: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: StatusCode | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(f"{self.code.name}: {message}")


class InvalidArgument(ApiError):
    """The request breaks a rule (INVALID_ARGUMENT)."""

    code = StatusCode.INVALID_ARGUMENT


class FailedPrecondition(ApiError):
    """The system is not in a state for this call, e.g. a queue name deleted too recently (FAILED_PRECONDITION)."""

    code = StatusCode.FAILED_PRECONDITION


class OutOfRange(ApiError):
    """A value is past a valid range (OUT_OF_RANGE)."""

    code = StatusCode.OUT_OF_RANGE


class Unauthenticated(ApiError):
    """The caller's credentials are missing or invalid (UNAUTHENTICATED)."""

    code = StatusCode.UNAUTHENTICATED


class PermissionDenied(ApiError):
    """The caller may not do this (PERMISSION_DENIED)."""

    code = StatusCode.PERMISSION_DENIED


class NotFound(ApiError):
    """The queue or task does not exist, or a task finished or was deleted (NOT_FOUND)."""

    code = StatusCode.NOT_FOUND


class AlreadyExists(ApiError):
    """The queue or task id is taken, now or recently (ALREADY_EXISTS)."""

    code = StatusCode.ALREADY_EXISTS


class Aborted(ApiError):
    """The call was aborted, usually by a concurrent change (ABORTED)."""

    code = StatusCode.ABORTED


class ResourceExhausted(ApiError):
    """A quota or rate was exceeded (RESOURCE_EXHAUSTED)."""

    code = StatusCode.RESOURCE_EXHAUSTED


class Cancelled(ApiError):
    """The call was cancelled (CANCELLED)."""

    code = StatusCode.CANCELLED


class Unimplemented(ApiError):
    """The method is not served (UNIMPLEMENTED)."""

    code = StatusCode.UNIMPLEMENTED


class Internal(ApiError):
    """The service failed (INTERNAL, DATA_LOSS)."""

    code = StatusCode.INTERNAL


class Unknown(ApiError):
    """An error with no better status (UNKNOWN)."""

    code = StatusCode.UNKNOWN


class Unavailable(ApiError):
    """The service could not be reached or is overloaded; safe to retry (UNAVAILABLE)."""

    code = StatusCode.UNAVAILABLE


class DeadlineExceeded(ApiError):
    """The call took longer than its timeout (DEADLINE_EXCEEDED)."""

    code = StatusCode.DEADLINE_EXCEEDED


class TransportError(Unavailable):
    """The call got no answer: the connection failed or was reset (a kind of :class:`Unavailable`)."""


_CLASS_FOR_CODE: dict[StatusCode, type[ApiError]] = {
    StatusCode.INVALID_ARGUMENT: InvalidArgument,
    StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    StatusCode.OUT_OF_RANGE: OutOfRange,
    StatusCode.UNAUTHENTICATED: Unauthenticated,
    StatusCode.PERMISSION_DENIED: PermissionDenied,
    StatusCode.NOT_FOUND: NotFound,
    StatusCode.ALREADY_EXISTS: AlreadyExists,
    StatusCode.ABORTED: Aborted,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    StatusCode.CANCELLED: Cancelled,
    StatusCode.UNIMPLEMENTED: Unimplemented,
    StatusCode.INTERNAL: Internal,
    StatusCode.DATA_LOSS: Internal,
    StatusCode.UNKNOWN: Unknown,
    StatusCode.UNAVAILABLE: Unavailable,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def api_error(code: StatusCode, message: str) -> ApiError:
    """The kit's error for a status code.

    A request too large to be received is :class:`InvalidArgument` whatever the transport said: gRPC
    answers RESOURCE_EXHAUSTED ("Received message larger than max"), Google's REST front end
    INVALID_ARGUMENT, and sending the same bytes again can never succeed (see :func:`is_too_large`).
    """
    if code in _SIZE_CODES and _TOO_LARGE.search(message):
        return InvalidArgument(message)
    return _CLASS_FOR_CODE.get(code, ApiError)(message, code=code)


# How gRPC ("Received message larger than max (4500000 vs. 4194304)", "Sent message larger than max"),
# Google's front ends ("Request payload size exceeds the limit: 10485760 bytes.") and HTTP servers ("413
# Request Entity Too Large") say a request was too big. The code varies (RESOURCE_EXHAUSTED,
# INVALID_ARGUMENT, or an HTTP status with no code of its own), the words do not.
_TOO_LARGE = re.compile(r"larger than max|too large|payload size exceeds", re.IGNORECASE)


def is_too_large(error: BaseException) -> bool:
    """Whether ``error`` says the request message was too large to be received.

    Sending the same bytes again would be refused again: :func:`api_error` makes such an answer an
    :class:`InvalidArgument` (gRPC says RESOURCE_EXHAUSTED, which retry policies retry by default), and
    bulk creates use this to report the item, not retry its chunk.
    """
    return isinstance(error, InvalidArgument) and bool(_TOO_LARGE.search(error.message))


_SIZE_CODES = frozenset(
    {StatusCode.RESOURCE_EXHAUSTED, StatusCode.INVALID_ARGUMENT, StatusCode.OUT_OF_RANGE, StatusCode.UNKNOWN}
)


def from_exception(exc: BaseException) -> CloudTasksError:
    """Map an exception raised by a transport to the kit's error for it.

    Handles ``google.api_core`` exceptions (gRPC and REST flavours), raw ``grpc.RpcError``, and connection
    failures from ``requests``, ``google.auth`` and the OS. Kit errors pass through. Anything else is
    wrapped as :class:`Unknown` so callers only need to catch :class:`CloudTasksError`.
    """
    if isinstance(exc, CloudTasksError):
        return exc
    from google.api_core import exceptions as core

    if isinstance(exc, core.RetryError) and exc.cause is not None:
        # The official client's own retry gave up: the last attempt's error is the one that matters.
        inner = from_exception(exc.cause)
        if isinstance(inner, ApiError):
            inner.message = f"{inner.message} (retried until: {exc.message})"
            inner.args = (f"{inner.code.name}: {inner.message}",)
        return inner
    if isinstance(exc, core.GoogleAPICallError):
        code = _code_of_api_call_error(exc)
        message = _message_of(exc)
        if code is StatusCode.UNAVAILABLE and _GRPC_NO_CONNECTION in message:
            return TransportError(message)
        return api_error(code, message)
    grpc_code = _grpc_code_of(exc)
    if grpc_code is not None:
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)  # type: ignore[attr-defined]
        if grpc_code is StatusCode.UNAVAILABLE and _GRPC_NO_CONNECTION in str(details):
            return TransportError(str(details))
        return api_error(grpc_code, str(details))
    if _is_connection_failure(exc):
        return TransportError(f"{type(exc).__name__}: {exc}")
    if _is_missing_credentials(exc):
        # No credentials at all: the fix is on the caller's machine, so the message says what to do.
        return Unauthenticated(f"{NO_CREDENTIALS} ({type(exc).__name__})")
    if _is_credentials_failure(exc):
        # google-auth could not get or refresh a token (REST refreshes on a 401): an authentication failure.
        return api_error(StatusCode.UNAUTHENTICATED, f"{type(exc).__name__}: {exc}")
    return api_error(StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")


NO_CREDENTIALS = (
    "no Google credentials were found (application default credentials): on your machine run "
    "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
    "key file, or pass credentials=...; to use the local emulator instead, set CLOUDTASKS_EMULATOR_HOST"
)
"""What :class:`Unauthenticated` says when google-auth finds no credentials at all."""

# What gRPC says when it never reached a server (as opposed to a server answering UNAVAILABLE).
_GRPC_NO_CONNECTION = "failed to connect to all addresses"


def _code_of_api_call_error(exc: Any) -> StatusCode:
    # A REST body names the status; the class api_core picked from the HTTP status may not (500 is
    # INTERNAL to api_core whether the service said INTERNAL or UNKNOWN).
    named = _status_name_in_response(getattr(exc, "response", None))
    if named is not None:
        return named
    grpc_code = getattr(exc, "grpc_status_code", None)
    if grpc_code is not None:
        return StatusCode(grpc_code.value[0])
    http = getattr(exc, "code", None)
    if isinstance(http, int):
        return code_for_http(http)
    return StatusCode.UNKNOWN


def code_for_http(status: int) -> StatusCode:
    """The status code an HTTP status stands for (2xx is OK)."""
    if 200 <= status < 300:
        return StatusCode.OK
    return _CODE_FOR_HTTP.get(status, StatusCode.INTERNAL if status >= 500 else StatusCode.UNKNOWN)


def _status_name_in_response(response: Any) -> StatusCode | None:
    """REST answers name their status in the body (``{"error": {"status": "ALREADY_EXISTS"}}``)."""
    status = _error_field(response, "status")
    try:
        return StatusCode[status]
    except KeyError:
        return None


def _message_of(exc: Any) -> str:
    # api_core puts "VERB url: " before a REST answer's message; the body holds the service's own words,
    # so the same answer reads the same over gRPC and REST.
    named = _error_field(getattr(exc, "response", None), "message")
    if isinstance(named, str) and named:
        return named
    message = getattr(exc, "message", None) or str(exc)
    return str(message)


def _error_field(response: Any, field: str) -> Any:
    """A field of a REST answer's ``{"error": {...}}`` body, or None."""
    if response is None:
        return None
    try:
        raw = response.content if hasattr(response, "content") else response.data
        return json.loads(raw)["error"][field]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _grpc_code_of(exc: BaseException) -> StatusCode | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:  # a non-gRPC object with a .code() of its own
        return None
    raw = getattr(value, "value", None)
    if isinstance(raw, tuple) and raw and isinstance(raw[0], int):
        return StatusCode(raw[0])
    return None


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {f"{cls.__module__}.{cls.__name__}" for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "requests.exceptions.ConnectionError",
            "requests.exceptions.Timeout",
            "google.auth.exceptions.TransportError",
            "aiohttp.client_exceptions.ClientConnectionError",
        }
    )


def _is_missing_credentials(exc: BaseException) -> bool:
    from google.auth import exceptions as auth

    # InvalidOperation is a kind of DefaultCredentialsError too, but means credentials that exist and
    # cannot do something (anonymous ones cannot be refreshed): not the missing-credentials advice.
    return isinstance(exc, auth.DefaultCredentialsError) and not isinstance(
        exc, (auth.InvalidOperation, auth.RefreshError)
    )


def _is_credentials_failure(exc: BaseException) -> bool:
    from google.auth import exceptions as auth

    return isinstance(exc, (auth.RefreshError, auth.InvalidOperation, auth.DefaultCredentialsError))
