"""A Flask app that enqueues a welcome email on signup and runs it as a Cloud Tasks handler.

Run it against the emulator, no Google account needed: see README.md beside this file.

The same code runs in production: leave the emulator variables out, set GOOGLE_CLOUD_PROJECT,
CLOUDTASKS_LOCATION, WORKER_URL (the service's URL) and TASKS_SERVICE_ACCOUNT (the account the queue's
tasks carry); the handler then verifies their OIDC tokens against Google's certificates.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, request

from cloudtasks_kit import AlreadyExists, CloudTasks, OidcToken, TaskApp, TaskHandler, task_context

tasks = TaskApp(
    base_url=os.environ.get("WORKER_URL", "http://127.0.0.1:8080"),
    queue="emails",
    oidc=OidcToken(
        service_account_email=os.environ.get(
            "TASKS_SERVICE_ACCOUNT", "tasks@my-project.iam.gserviceaccount.com"
        )
    ),
)
SENT: list[str] = []
FLAKY_DOMAIN = "@flaky.example"
"""Addresses here fail their first attempt, to show a retry (a mail server that hangs up once)."""


@tasks.task(dedup_key=lambda to: f"welcome:{to}")
def send_welcome(to: str) -> None:
    """Send the welcome email (here: print and remember it)."""
    attempt = task_context().retry_count + 1
    if to.endswith(FLAKY_DOMAIN) and attempt == 1:
        # Any exception is a 500, and Cloud Tasks tries again per the queue's retry config.
        raise ConnectionError(f"the mail server hung up while sending to {to}")
    SENT.append(to)
    print(f"sent the welcome email to {to} (attempt {attempt})", flush=True)


def create_app(handler: TaskHandler | None = None, client: CloudTasks | None = None) -> Flask:
    """The web app: ``POST /signup`` enqueues, ``POST /tasks/<name>`` runs tasks.

    By default it enqueues with ``CloudTasks()`` (the project and location from the environment, or the
    emulator's ``local-project``/``us-central1`` when ``CLOUDTASKS_EMULATOR_HOST`` is set) and serves a
    ``TaskHandler`` that verifies tokens with Google's certificates, or with the emulator's when
    ``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` is set beside the emulator's address.
    """
    if handler is None:  # the real worker (tests pass their own handler): show the kit's log
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if client is not None or tasks.client is None:
        tasks.bind(client or CloudTasks())
    handler = handler or TaskHandler(tasks)
    app = Flask(__name__)

    @app.post("/signup")
    def signup() -> dict[str, str]:
        try:
            task = send_welcome.enqueue(request.get_json()["email"])
        except AlreadyExists:  # its dedup key: this address already has its welcome email
            return {"task": "already enqueued"}
        return {"task": task.id}

    @app.post("/tasks/<name>")
    def run_task(name: str) -> Response:
        answer = handler.handle(request.method, request.path, dict(request.headers), request.get_data())
        return Response(answer.body, answer.status, answer.headers)

    return app
