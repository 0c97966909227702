"""cloudtasks_kit: a typed, Pythonic SDK for Google Cloud Tasks.

>>> from cloudtasks_kit import CloudTasks
>>> tasks = CloudTasks(project="my-project", location="us-central1")  # doctest: +SKIP
>>> emails = tasks.queue("emails")  # doctest: +SKIP
>>> emails.create_task("https://worker.example.com/send", json={"to": "a@b.c"})  # doctest: +SKIP
"""

import logging

from ._version import __version__
from .aio import AsyncCloudTasks, AsyncQueueHandle
from .app import BoundTask, TaskApp, TaskFunction
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
from .tasks import Attempt, Task, TaskSpec, task_id_for_key
from .verify import AuthError, TokenVerifier, VerifiedToken

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ApiError",
    "AsyncCloudTasks",
    "AsyncQueueHandle",
    "Attempt",
    "AuthError",
    "BoundTask",
    "Cancelled",
    "CloudTasks",
    "CloudTasksError",
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

# A library logs; the application decides where logs go.
logging.getLogger("cloudtasks_kit").addHandler(logging.NullHandler())
