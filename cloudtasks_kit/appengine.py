"""App Engine tasks: :class:`AppEngineTask` and :class:`AppEngineRouting`, and the builder that turns a
spec into the official ``Task`` with an ``app_engine_http_request``.

``queue.create_task(AppEngineTask(relative_uri="/work", routing=AppEngineRouting(service="worker")))``
creates one; HTTP tasks (:class:`~cloudtasks_kit.TaskSpec`) are unchanged. The rules come from the v2
reference (``AppEngineHttpRequest``, ``AppEngineRouting``, ``Task.dispatch_deadline``); see
docs/app-engine.md.
"""

from __future__ import annotations

from typing import Any

import pydantic
from google.cloud import tasks_v2

from . import rules
from ._model import KitModel
from .errors import ValidationError
from .tasks import TaskContent

__all__ = ["AppEngineRouting", "AppEngineTask", "build_app_engine_task"]


class AppEngineRouting(KitModel):
    """Which App Engine service, version and instance a task goes to (each empty: the default one).

    The service sends the task to ``[instance.]version.service.<app's domain>`` (``AppEngineRouting.host``,
    output only). A queue's ``app_engine_routing_override`` replaces it for every task of the queue.
    """

    service: str = ""
    version: str = ""
    instance: str = ""

    @pydantic.model_validator(mode="after")
    def _check(self) -> AppEngineRouting:
        rules.check_app_engine_routing(self, "routing")
        return self

    def fill(self, msg: Any) -> None:
        """Fill an official ``AppEngineRouting`` protobuf."""
        msg.service, msg.version, msg.instance = self.service, self.version, self.instance


class AppEngineTask(TaskContent):
    """Everything a caller says about an App Engine task.

    ``relative_uri`` is the path (and query) on the app, starting with ``/``. ``method`` is POST by
    default; a body (``body``, ``text`` or ``json``, at most one) only with POST or PUT. ``deadline`` is
    15 seconds to 24 hours 15 seconds (unset: the default of the service's scaling type). Schedule,
    naming and retry work as for :class:`~cloudtasks_kit.TaskSpec`.

    Example:
        ``AppEngineTask(relative_uri="/work", routing=AppEngineRouting(service="worker"), json={"id": 1})``
    """

    relative_uri: str = "/"
    routing: AppEngineRouting | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> AppEngineTask:
        rules.check_relative_uri(self.relative_uri)
        self._check_one_body()
        if self._given_bodies() and self.method not in rules.APP_ENGINE_BODY_METHODS:
            raise ValidationError(
                "method", self.method, "cannot carry a body on an App Engine task; only POST and PUT can"
            )
        if self.headers:
            rules.check_app_engine_headers(self.headers.items(), strict=True)
        self._check_schedule_and_name()
        if self.deadline is not None:
            rules.check_app_engine_dispatch_deadline(self.deadline.total_seconds(), field="deadline")
        return self


def build_app_engine_task(
    spec: AppEngineTask,
    *,
    queue_name: str,
    now: float,
    limits: rules.Limits = rules.DEFAULT_LIMITS,
    into: Any = None,
) -> Any:
    """The official ``Task`` protobuf for ``spec`` in the queue ``queue_name``, checked by the rules."""
    msg = _new_task() if into is None else into
    request = msg.app_engine_http_request
    request.relative_uri = spec.relative_uri
    if spec.routing is not None:
        spec.routing.fill(request.app_engine_routing)
    spec._fill(msg, request, queue_name=queue_name, now=now)
    rules.check_app_engine_request(msg, now=now, limits=limits, strict=True)
    return msg


def _new_task() -> Any:
    """An empty raw ``Task`` protobuf."""
    return tasks_v2.Task.pb()()
