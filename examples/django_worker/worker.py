"""A Django project in one file: a view that enqueues, and the kit's handler behind a URL.

Run it against the emulator, no Google account needed: see README.md beside this file.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from cloudtasks_kit import CloudTasks, OidcToken, TaskApp, TaskHandler, task_context

tasks = TaskApp(
    base_url=os.environ.get("WORKER_URL", "http://127.0.0.1:8000"),
    queue="reports",
    oidc=OidcToken(
        service_account_email=os.environ.get(
            "TASKS_SERVICE_ACCOUNT", "tasks@my-project.iam.gserviceaccount.com"
        )
    ),
)
REPORTS: list[int] = []
FLAKY_ACCOUNT = 13
"""This account's report fails its first attempt, to show a retry (a database busy once)."""
handler: TaskHandler | None = None


@tasks.task
def build_report(account_id: int) -> None:
    """Build a monthly report (here: print and remember it)."""
    attempt = task_context().retry_count + 1
    if account_id == FLAKY_ACCOUNT and attempt == 1:
        # Any exception is a 500, and Cloud Tasks tries again per the queue's retry config.
        raise TimeoutError(f"the database was busy building the report of account {account_id}")
    REPORTS.append(account_id)
    print(f"built the report of account {account_id} (attempt {attempt})", flush=True)


def configure(client: CloudTasks, task_handler: TaskHandler) -> None:
    global handler
    tasks.bind(client)
    handler = task_handler


@csrf_exempt
def request_report(request: HttpRequest) -> JsonResponse:
    task = build_report.enqueue(json.loads(request.body)["account_id"])
    return JsonResponse({"task": task.id})


@csrf_exempt
def run_task(request: HttpRequest, name: str) -> HttpResponse:
    assert handler is not None, "call configure() at start-up"
    answer = handler.handle(request.method or "POST", request.path, dict(request.headers), request.body)
    response = HttpResponse(answer.body, status=answer.status)
    for key, value in answer.headers.items():
        response[key] = value
    return response


urlpatterns = [path("reports", request_report), path("tasks/<str:name>", run_task)]


if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    # CloudTasks(): the project and location from the environment, or the emulator's defaults when
    # CLOUDTASKS_EMULATOR_HOST is set. TaskHandler: Google's certificates, or the emulator's with
    # CLOUDTASKS_HANDLER_TRUST_EMULATOR=1 beside the emulator's address.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    configure(CloudTasks(), TaskHandler(tasks))
    execute_from_command_line(sys.argv)
