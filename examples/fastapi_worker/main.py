"""A FastAPI app that enqueues with AsyncCloudTasks and serves its task functions with the kit's ASGI handler.

    cloudtasks-kit emulator &
    export CLOUDTASKS_EMULATOR_HOST=127.0.0.1:8123 WORKER_URL=http://127.0.0.1:8000
    uvicorn examples.fastapi_worker.main:app --port 8000

``AsyncCloudTasks`` is created at import time: the kit makes the official async client lazily, inside
the running loop, so that is safe.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel

from cloudtasks_kit import AsyncCloudTasks, OidcToken, TaskApp, TaskHandler, task_context

tasks = TaskApp(
    AsyncCloudTasks(os.environ.get("GOOGLE_CLOUD_PROJECT", "local-project"), "us-central1"),
    base_url=os.environ.get("WORKER_URL", "http://127.0.0.1:8000"),
    queue="thumbnails",
    oidc=OidcToken(
        service_account_email=os.environ.get(
            "TASKS_SERVICE_ACCOUNT", "tasks@my-project.iam.gserviceaccount.com"
        )
    ),
)
DONE: list[tuple[str, int]] = []


class Image(BaseModel):
    bucket: str
    name: str
    width: int = 256


@tasks.task
async def make_thumbnail(image: Image) -> None:
    """Resize an image (here: remember it, with the attempt it succeeded on)."""
    DONE.append((f"{image.bucket}/{image.name}@{image.width}", task_context().retry_count))


def create_app(handler: TaskHandler | None = None) -> FastAPI:
    api = FastAPI()

    @api.post("/uploads")
    async def uploaded(image: Image) -> dict[str, str]:
        task = await make_thumbnail.aenqueue(image)
        return {"task": task.id}

    api.mount("/tasks", (handler or TaskHandler(tasks)).asgi)
    return api


app = create_app()
