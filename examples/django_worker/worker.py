"""A Django project in one file: a view that enqueues, and the kit's handler behind a URL.

cloudtasks-kit emulator &
export CLOUDTASKS_EMULATOR_HOST=127.0.0.1:8123 WORKER_URL=http://127.0.0.1:8000
python -m examples.django_worker.worker runserver 8000
"""

from __future__ import annotations

import json
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

from cloudtasks_kit import CloudTasks, OidcToken, TaskApp, TaskHandler

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
handler: TaskHandler | None = None


@tasks.task
def build_report(account_id: int) -> None:
    """Build a monthly report (here: remember it)."""
    REPORTS.append(account_id)


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

    configure(
        CloudTasks(os.environ.get("GOOGLE_CLOUD_PROJECT", "local-project"), "us-central1"), TaskHandler(tasks)
    )
    execute_from_command_line(sys.argv)
