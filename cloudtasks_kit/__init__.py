"""cloudtasks_kit: a typed, Pythonic SDK for Google Cloud Tasks.

>>> from cloudtasks_kit import CloudTasks
>>> tasks = CloudTasks(project="my-project", location="us-central1")  # doctest: +SKIP
>>> emails = tasks.queue("emails")  # doctest: +SKIP
>>> emails.create_task("https://worker.example.com/send", json={"to": "a@b.c"})  # doctest: +SKIP

PYTEST_DONT_REWRITE: pytest imports this for its plugin; there are no asserts to rewrite.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from .aio import AsyncCloudTasks, AsyncQueueHandle
    from .app import BoundTask, TaskApp, TaskFunction
    from .appengine import AppEngineRouting, AppEngineTask
    from .auth import OAuthToken, OidcToken
    from .bulk import CreateResult
    from .client import CloudTasks, QueueHandle
    from .context import GiveUp, RetryLater, TaskContext, task_context
    from .errors import (
        Aborted,
        AlreadyExists,
        ApiError,
        Cancelled,
        CloudTasksError,
        DeadlineExceeded,
        FailedPrecondition,
        Internal,
        InvalidArgument,
        NotFound,
        OutOfRange,
        PermissionDenied,
        ResourceExhausted,
        StatusCode,
        TransportError,
        Unauthenticated,
        Unavailable,
        Unimplemented,
        Unknown,
        UsageError,
        ValidationError,
    )
    from .handler import HandlerResponse, TaskHandler
    from .queues import Queue, QueueHttpTarget, QueueState, RateLimits, RetryConfig, UriOverride
    from .retry import RetryPolicy
    from .rules import Limits
    from .tasks import Attempt, CreateOutcome, Task, TaskSpec, task_id_for_key
    from .verify import AuthError, TokenVerifier, VerifiedToken

_HOME = {
    "Aborted": "errors",
    "AlreadyExists": "errors",
    "ApiError": "errors",
    "AppEngineRouting": "appengine",
    "AppEngineTask": "appengine",
    "AsyncCloudTasks": "aio",
    "AsyncQueueHandle": "aio",
    "Attempt": "tasks",
    "AuthError": "verify",
    "BoundTask": "app",
    "Cancelled": "errors",
    "CloudTasks": "client",
    "CloudTasksError": "errors",
    "CreateOutcome": "tasks",
    "CreateResult": "bulk",
    "DeadlineExceeded": "errors",
    "FailedPrecondition": "errors",
    "GiveUp": "context",
    "HandlerResponse": "handler",
    "Internal": "errors",
    "InvalidArgument": "errors",
    "Limits": "rules",
    "NotFound": "errors",
    "OAuthToken": "auth",
    "OidcToken": "auth",
    "OutOfRange": "errors",
    "PermissionDenied": "errors",
    "Queue": "queues",
    "QueueHandle": "client",
    "QueueHttpTarget": "queues",
    "QueueState": "queues",
    "RateLimits": "queues",
    "ResourceExhausted": "errors",
    "RetryConfig": "queues",
    "RetryLater": "context",
    "RetryPolicy": "retry",
    "StatusCode": "errors",
    "Task": "tasks",
    "TaskApp": "app",
    "TaskContext": "context",
    "TaskFunction": "app",
    "TaskHandler": "handler",
    "TaskSpec": "tasks",
    "TokenVerifier": "verify",
    "TransportError": "errors",
    "Unauthenticated": "errors",
    "Unavailable": "errors",
    "Unimplemented": "errors",
    "Unknown": "errors",
    "UriOverride": "queues",
    "UsageError": "errors",
    "ValidationError": "errors",
    "VerifiedToken": "verify",
    "task_context": "context",
    "task_id_for_key": "tasks",
}


__all__ = [
    "Aborted",
    "AlreadyExists",
    "ApiError",
    "AppEngineRouting",
    "AppEngineTask",
    "AsyncCloudTasks",
    "AsyncQueueHandle",
    "Attempt",
    "AuthError",
    "BoundTask",
    "Cancelled",
    "CloudTasks",
    "CloudTasksError",
    "CreateOutcome",
    "CreateResult",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GiveUp",
    "HandlerResponse",
    "Internal",
    "InvalidArgument",
    "Limits",
    "NotFound",
    "OAuthToken",
    "OidcToken",
    "OutOfRange",
    "PermissionDenied",
    "Queue",
    "QueueHandle",
    "QueueHttpTarget",
    "QueueState",
    "RateLimits",
    "ResourceExhausted",
    "RetryConfig",
    "RetryLater",
    "RetryPolicy",
    "StatusCode",
    "Task",
    "TaskApp",
    "TaskContext",
    "TaskFunction",
    "TaskHandler",
    "TaskSpec",
    "TokenVerifier",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "UriOverride",
    "UsageError",
    "ValidationError",
    "VerifiedToken",
    "__version__",
    "task_context",
    "task_id_for_key",
]


def __getattr__(name: str) -> Any:
    # Importing the kit stays cheap: each public name loads its module when it is first used.
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'cloudtasks_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


# A library logs; the application decides where logs go.
logging.getLogger("cloudtasks_kit").addHandler(logging.NullHandler())
