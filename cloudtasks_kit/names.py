"""Resource names: ``projects/P/locations/L/queues/Q[/tasks/T]``, built and parsed in one place."""

from __future__ import annotations

from typing import NamedTuple

from . import rules
from .errors import ValidationError

__all__ = [
    "QueueName",
    "TaskName",
    "check_queue_in_parent",
    "check_task_in_queue",
    "location_of_queue",
    "location_path",
    "parse_location_name",
    "parse_queue_name",
    "parse_task_name",
    "project_of",
    "queue_of_task",
    "short_id",
    "task_path",
]


class QueueName(NamedTuple):
    """The parts of a queue's full name."""

    project: str
    location: str
    queue: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}"

    @property
    def parent(self) -> str:
        return location_path(self.project, self.location)


class TaskName(NamedTuple):
    """The parts of a task's full name."""

    project: str
    location: str
    queue: str
    task: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}/tasks/{self.task}"

    @property
    def queue_path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}"


def location_path(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


# Fast splits of names the engine made itself (already checked): no validation, no allocation of parts.


def short_id(name: str) -> str:
    """The last segment of a full name: a queue's or a task's short id."""
    return name.rpartition("/")[2]


def queue_of_task(task_name: str) -> str:
    """``projects/P/locations/L/queues/Q`` of a task's full name."""
    return task_name.rpartition("/tasks/")[0]


def location_of_queue(queue_name: str) -> str:
    """``projects/P/locations/L`` of a queue's full name."""
    return queue_name.rpartition("/queues/")[0]


def project_of(name: str, default: str) -> str:
    """The project of any ``projects/P/...`` name, else ``default``."""
    parts = name.split("/", 2)
    return parts[1] if len(parts) > 1 and parts[0] == "projects" and parts[1] else default


def task_path(queue_name: str, task_id: str) -> str:
    """A task's full name from its queue's full name and its short id."""
    return f"{queue_name}/tasks/{task_id}"


def check_task_in_queue(task_name: str, queue_name: str) -> str:
    """A task named in a CreateTask request must be in the request's queue; returns its short id."""
    prefix = queue_name + "/tasks/"
    if not task_name.startswith(prefix):
        raise ValidationError("task name", task_name, f"must be in the request's queue ({prefix}TASK_ID)")
    return rules.check_task_id(task_name[len(prefix) :])


def check_queue_in_parent(queue_name: str, parent: str) -> None:
    """A queue named in a CreateQueue request must be in the request's parent."""
    if location_of_queue(queue_name) != parent:
        raise ValidationError(
            "queue name", queue_name, f"must be in the request's parent ({parent}/queues/QUEUE_ID)"
        )


def parse_location_name(name: str, *, field: str = "parent") -> tuple[str, str]:
    """``projects/P/locations/L`` -> ``(P, L)``."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
        raise ValidationError(field, name, "must look like 'projects/PROJECT/locations/LOCATION'")
    return rules.check_project_id(parts[1]), rules.check_location_id(parts[3])


def parse_queue_name(name: str, *, field: str = "queue name") -> QueueName:
    """``projects/P/locations/L/queues/Q`` -> :class:`QueueName`, each part checked."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "queues":
        raise ValidationError(
            field, name, "must look like 'projects/PROJECT/locations/LOCATION/queues/QUEUE'"
        )
    return QueueName(
        rules.check_project_id(parts[1]), rules.check_location_id(parts[3]), rules.check_queue_id(parts[5])
    )


def parse_task_name(name: str, *, field: str = "task name") -> TaskName:
    """``projects/P/locations/L/queues/Q/tasks/T`` -> :class:`TaskName`, each part checked."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) != 8 or parts[6] != "tasks":
        raise ValidationError(
            field, name, "must look like 'projects/PROJECT/locations/LOCATION/queues/QUEUE/tasks/TASK'"
        )
    queue = parse_queue_name("/".join(parts[:6]), field=field)
    return TaskName(*queue, rules.check_task_id(parts[7]))
