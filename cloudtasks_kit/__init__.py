"""cloudtasks_kit: a typed, Pythonic SDK for Google Cloud Tasks.

>>> from cloudtasks_kit import CloudTasks
>>> tasks = CloudTasks(project="my-project", location="us-central1")  # doctest: +SKIP
>>> emails = tasks.queue("emails")  # doctest: +SKIP
>>> emails.create_task("https://worker.example.com/send", json={"to": "a@b.c"})  # doctest: +SKIP
"""

from ._version import __version__
from .aio import AsyncCloudTasks, AsyncQueueHandle
from .auth import OAuthToken, OidcToken
from .client import CloudTasks, QueueHandle
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
from .queues import Queue, QueueHttpTarget, QueueState, RateLimits, RetryConfig, UriOverride
from .rules import Limits
from .tasks import Attempt, Task, TaskSpec, task_id_for_key

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ApiError",
    "AsyncCloudTasks",
    "AsyncQueueHandle",
    "Attempt",
    "Cancelled",
    "CloudTasks",
    "CloudTasksError",
    "DeadlineExceeded",
    "FailedPrecondition",
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
    "StatusCode",
    "Task",
    "TaskSpec",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "UriOverride",
    "UsageError",
    "ValidationError",
    "__version__",
    "task_id_for_key",
]
