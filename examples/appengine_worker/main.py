"""A Flask app for App Engine standard that enqueues a thumbnail on upload and runs it as an App Engine
task: ``TaskApp(app_engine=...)`` makes App Engine tasks whose relative URI is the function's route.

Run it against the emulator, no Google account needed: see README.md beside this file.

On App Engine (``app.yaml`` here): the tasks go to the service named by TASKS_SERVICE (empty: the
default service) of the queue's project, with no token; the handler admits them by their
``X-AppEngine-*`` headers, which App Engine strips from any request that comes from outside.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, request

from cloudtasks_kit import AlreadyExists, AppEngineRouting, CloudTasks, TaskApp, TaskHandler, task_context

tasks = TaskApp(app_engine=AppEngineRouting(service=os.environ.get("TASKS_SERVICE", "")), queue="thumbnails")
MADE: list[int] = []
FLAKY = 13
"""This image fails its first attempt, to show a retry (a storage read that times out once)."""


@tasks.task(dedup_key=lambda image_id, size=128: f"thumbnail:{image_id}:{size}")
def make_thumbnail(image_id: int, size: int = 128) -> None:
    """Make the thumbnail (here: print and remember it)."""
    attempt = task_context().retry_count + 1
    if image_id == FLAKY and attempt == 1:
        # Any exception is a 500, and Cloud Tasks tries again per the queue's retry config.
        raise TimeoutError(f"reading image {image_id} timed out")
    MADE.append(image_id)
    print(f"made the {size}px thumbnail of image {image_id} (attempt {attempt})", flush=True)


def trusts_app_engine_headers() -> bool:
    """Whether this process may admit tasks by their ``X-AppEngine-*`` headers: on App Engine (the
    runtime sets GAE_ENV), or locally when LOCAL_APP_ENGINE_TASKS=1 says so (a worker on the loopback
    address that the emulator delivers to). Anywhere else anyone could send those headers."""
    return os.environ.get("GAE_ENV") == "standard" or os.environ.get("LOCAL_APP_ENGINE_TASKS") == "1"


def create_app(handler: TaskHandler | None = None, client: CloudTasks | None = None) -> Flask:
    """The web app: ``POST /upload`` enqueues, ``POST /tasks/<name>`` runs tasks.

    By default it enqueues with ``CloudTasks()`` (the project and location from the environment, or the
    emulator's when ``CLOUDTASKS_EMULATOR_HOST`` is set) and serves a ``TaskHandler`` that admits App
    Engine deliveries where :func:`trusts_app_engine_headers` allows it; elsewhere it refuses to start.
    """
    if handler is None:  # the real worker (tests pass their own handler): show the kit's log
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if client is not None or tasks.client is None:
        tasks.bind(client or CloudTasks())
    handler = handler or TaskHandler(tasks, trust_app_engine_headers=trusts_app_engine_headers())
    app = Flask(__name__)

    @app.post("/upload")
    def upload() -> dict[str, str]:
        try:
            task = make_thumbnail.enqueue(int(request.get_json()["image_id"]))
        except AlreadyExists:  # its dedup key: this image's thumbnail is already on its way
            return {"task": "already enqueued"}
        return {"task": task.id}

    @app.post("/tasks/<name>")
    def run_task(name: str) -> Response:
        answer = handler.handle(request.method, request.path, dict(request.headers), request.get_data())
        return Response(answer.body, answer.status, answer.headers)

    return app
