"""The transport seam is typed: each row of the call table fixes what ``call`` returns."""

from __future__ import annotations

from google.cloud import tasks_v2
from typing_extensions import assert_type

from cloudtasks_kit import _runner
from cloudtasks_kit.transports import calls
from cloudtasks_kit.transports.base import AsyncTransport, Transport
from cloudtasks_kit.transports.calls import BatchCreateResult, BufferTaskRequest


def use(transport: Transport) -> None:
    task = transport.call(calls.CREATE_TASK, tasks_v2.CreateTaskRequest(parent="p"))
    assert_type(task, tasks_v2.Task)
    queue = transport.call(calls.PAUSE_QUEUE, tasks_v2.PauseQueueRequest(name="q"))
    assert_type(queue, tasks_v2.Queue)
    page = transport.call(calls.LIST_TASKS, tasks_v2.ListTasksRequest(parent="q"))
    assert_type(page, tasks_v2.ListTasksResponse)
    batch = transport.call(calls.BATCH_CREATE_TASKS, tasks_v2.BatchCreateTasksRequest(parent="q"))
    assert_type(batch, BatchCreateResult)
    assert_type(transport.call(calls.DELETE_TASK, tasks_v2.DeleteTaskRequest(name="t")), None)
    buffered = transport.call(calls.BUFFER_TASK, BufferTaskRequest(queue="q", task_id=None))
    assert_type(buffered, tasks_v2.Task)


async def use_async(transport: AsyncTransport) -> None:
    task = await transport.call(calls.GET_TASK, tasks_v2.GetTaskRequest(name="t"))
    assert_type(task, tasks_v2.Task)


def operation() -> _runner.Op[str]:
    task = yield from _runner.call(calls.GET_TASK, tasks_v2.GetTaskRequest(name="t"))
    assert_type(task, tasks_v2.Task)
    return str(task.name)
