"""Misuse of the typed seam that mypy --strict reports (each line marked ``# error``).

The official messages derive from proto-plus, which is untyped, so mypy lets one message class stand
for another; what it does check is which request a row takes and what a row answers (``None`` included).
"""

from __future__ import annotations

from google.cloud import tasks_v2

from cloudtasks_kit import _runner
from cloudtasks_kit.transports import calls
from cloudtasks_kit.transports.base import Transport


def misuse(transport: Transport) -> None:
    transport.call(calls.CREATE_TASK, tasks_v2.GetTaskRequest(name="t"))  # error
    transport.call(calls.GET_TASK, "projects/p/locations/l/queues/q/tasks/t")  # error
    print(transport.call(calls.DELETE_TASK, tasks_v2.DeleteTaskRequest(name="t")).name)  # error


def operation() -> _runner.Op[int]:
    return (yield from _runner.call(calls.DELETE_QUEUE, tasks_v2.DeleteQueueRequest(name="q")))  # error
