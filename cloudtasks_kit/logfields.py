"""Structured logs: the field names the handler and the emulator put on their log records, and a JSON
formatter Cloud Logging reads.

The handler (logger ``cloudtasks_kit.handler``) and the emulator's delivery (``cloudtasks_kit.emulator``)
log through the standard :mod:`logging` module and pass these fields with ``extra=``, so any JSON
formatter (python-json-logger, structlog's stdlib bridge, :class:`CloudLoggingFormatter`) writes them as
fields of their own. The names are stable:

============  ==============================================================================
``queue``     the queue id
``task``      the task id
``attempt``   which attempt this is, from 1 (``X-CloudTasks-TaskRetryCount`` + 1)
``status``    the HTTP status answered (or, in the emulator, why there was no answer)
``latency_ms``  how long the attempt took, in milliseconds (on the handler: the task function's run)
``trace_id``  the OpenTelemetry trace id (32 hex digits), when there is one
``span_id``   the span id (16 hex digits), with ``trace_id``
``function``  the task function (handler only)
============  ==============================================================================

Example (Cloud Run, where stdout lines of JSON become structured log entries):

    import logging
    from cloudtasks_kit.logfields import CloudLoggingFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(CloudLoggingFormatter())      # project from GOOGLE_CLOUD_PROJECT
    logging.basicConfig(level=logging.INFO, handlers=[handler])
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import TaskContext
    from .engine.attempts import AttemptRequest, AttemptResult

__all__ = ["FIELDS", "CloudLoggingFormatter", "attempt_fields", "task_fields"]

FIELDS = ("queue", "task", "attempt", "status", "latency_ms", "trace_id", "span_id", "function")
"""The names of the fields the kit's log records carry, in the order a formatter shows them."""

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"


def _ids(headers: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    # Never imports OpenTelemetry for a log line: only if a create or a task already loaded it.
    from .tracing import loaded

    otel = loaded()
    if otel is None:
        return None
    return otel.current_ids() if headers is None else otel.ids_in(headers)


def task_fields(
    context: TaskContext, status: int, latency_ms: float | None = None, function: str | None = None
) -> dict[str, Any]:
    """The fields of a handler's log record about one task request."""
    fields: dict[str, Any] = {
        "queue": context.queue,
        "task": context.task_id,
        "attempt": context.retry_count + 1,
        "status": status,
    }
    if latency_ms is not None:
        fields["latency_ms"] = round(latency_ms, 1)
    if function is not None:
        fields["function"] = function
    ids = _ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


def attempt_fields(attempt: AttemptRequest, result: AttemptResult, latency_ms: float) -> dict[str, Any]:
    """The fields of the emulator's log record about one attempt it sent. The trace is the one the task
    carries (read only when OpenTelemetry is already loaded in the emulator's process)."""
    fields: dict[str, Any] = {
        "queue": attempt.queue_id,
        "task": attempt.task_id,
        "attempt": attempt.retry_count + 1,
        "status": result.status if result.status is not None else result.error,
        "latency_ms": round(latency_ms, 1),
    }
    if any(name.lower() == "traceparent" for name in attempt.headers):
        ids = _ids(attempt.headers)
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids
    return fields


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, as Cloud Logging reads a container's output (Cloud Run, GKE, Cloud
    Functions): ``severity``, ``message``, ``time``, the kit's fields and, with a trace id, the
    ``logging.googleapis.com/trace`` and ``spanId`` fields that put the line under its trace.

    Args:
        project: the project the traces are in; by default ``GOOGLE_CLOUD_PROJECT``. Without one, the
            trace fields are left out (the kit's ``trace_id`` field stays).
    """

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            # Error Reporting finds a stack trace in the message of an ERROR entry.
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": message,
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "logger": record.name,
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        trace_id = record.__dict__.get("trace_id")
        if trace_id and self.project:
            entry[TRACE_FIELD] = f"projects/{self.project}/traces/{trace_id}"
            if record.__dict__.get("span_id"):
                entry[SPAN_FIELD] = record.__dict__["span_id"]
        return json.dumps(entry, default=str)
