"""The public names are a promise: adding or removing one is a decision, made here."""

from __future__ import annotations

import cloudtasks_kit
import cloudtasks_kit.testing

PUBLIC = {
    "Aborted",
    "AuthError",
    "BoundTask",
    "CreateOutcome",
    "CreateResult",
    "GiveUp",
    "HandlerResponse",
    "RetryLater",
    "RetryPolicy",
    "TaskApp",
    "TaskContext",
    "TaskFunction",
    "TaskHandler",
    "TokenVerifier",
    "VerifiedToken",
    "task_context",
    "AlreadyExists",
    "ApiError",
    "AppEngineRouting",
    "AppEngineTask",
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
}

TESTING = {
    "ASGITarget",
    "AttemptRecord",
    "AttemptRequest",
    "AttemptResult",
    "CallableTarget",
    "Delivery",  # the former name of AttemptRecord
    "Dispatch",  # the former name of AttemptRequest
    "FakeTransport",
    "Faults",
    "HTTPTarget",
    "History",
    "ManualClock",
    "NotIdleError",
    "TargetResponse",
    "WSGITarget",
    "assert_delivered",
    "assert_enqueued",
}


def test_the_public_names_are_pinned() -> None:
    assert set(cloudtasks_kit.__all__) == PUBLIC
    assert set(cloudtasks_kit._HOME) == PUBLIC - {"__version__"}  # each lazily loaded name has a home
    assert set(cloudtasks_kit.testing.__all__) == TESTING
    # The old names of the attempt types stay, as aliases of the new ones.
    assert cloudtasks_kit.testing.Delivery is cloudtasks_kit.testing.AttemptRecord
    assert cloudtasks_kit.testing.Dispatch is cloudtasks_kit.testing.AttemptRequest


def test_every_public_name_exists_and_has_a_docstring() -> None:
    for module, names in ((cloudtasks_kit, PUBLIC), (cloudtasks_kit.testing, TESTING)):
        for name in names - {"__version__"}:
            value = getattr(module, name)
            assert getattr(value, "__doc__", None), f"{module.__name__}.{name} has no docstring"


def test_the_observability_modules_names_are_pinned() -> None:
    import cloudtasks_kit.logfields
    import cloudtasks_kit.tracing

    assert set(cloudtasks_kit.tracing.__all__) == {"TRACE_HEADERS", "TraceMode"}
    assert set(cloudtasks_kit.logfields.__all__) == {
        "FIELDS",
        "CloudLoggingFormatter",
        "attempt_fields",
        "task_fields",
    }
    assert cloudtasks_kit.logfields.FIELDS[:6] == (
        "queue",
        "task",
        "attempt",
        "status",
        "latency_ms",
        "trace_id",
    )
