"""A Flask app that enqueues a welcome email on signup and runs it as a Cloud Tasks handler.

Run it against the emulator (no Google account):

    cloudtasks-kit emulator &
    export CLOUDTASKS_EMULATOR_HOST=127.0.0.1:8123 WORKER_URL=http://127.0.0.1:8080
    flask --app examples.flask_worker.worker:create_app run --port 8080

In production, set WORKER_URL to the service's URL and TASKS_SERVICE_ACCOUNT to the account the queue's
tasks carry; the handler verifies their OIDC tokens against Google's certificates.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request

from cloudtasks_kit import AlreadyExists, CloudTasks, OidcToken, TaskApp, TaskHandler

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


@tasks.task(dedup_key=lambda to: f"welcome:{to}")
def send_welcome(to: str) -> None:
    """Send the welcome email (here: remember it)."""
    SENT.append(to)


def create_app(handler: TaskHandler | None = None, client: CloudTasks | None = None) -> Flask:
    """The web app: ``POST /signup`` enqueues, ``POST /tasks/<name>`` runs tasks."""
    if client is not None or tasks.client is None:
        tasks.bind(
            client or CloudTasks(os.environ.get("GOOGLE_CLOUD_PROJECT", "local-project"), "us-central1")
        )
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
