"""A FastAPI app that enqueues with AsyncCloudTasks and serves its task functions with the kit's ASGI handler.

Run it against the emulator, no Google account needed: see README.md beside this file.

``AsyncCloudTasks()`` is made at import time: it looks nothing up until its first call (the project and
location from the environment, or the emulator's defaults), and the kit makes the official async client
lazily, inside the running loop, so that is safe.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from pydantic import BaseModel

from cloudtasks_kit import AsyncCloudTasks, OidcToken, TaskApp, TaskHandler, task_context

tasks = TaskApp(
    AsyncCloudTasks(),
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
    """Resize an image (here: print and remember it, with the attempt it succeeded on)."""
    retries = task_context().retry_count
    if image.name.startswith("flaky") and retries == 0:
        # Stands for storage that is not ready yet: a 500, and Cloud Tasks tries again.
        raise RuntimeError(f"{image.bucket}/{image.name} is not readable yet")
    DONE.append((f"{image.bucket}/{image.name}@{image.width}", retries))
    print(f"made the thumbnail of {image.bucket}/{image.name} (attempt {retries + 1})", flush=True)


def create_app(handler: TaskHandler | None = None) -> FastAPI:
    """``POST /uploads`` enqueues; the task functions are served under ``/tasks``.

    The default handler verifies tokens with Google's certificates, or with the emulator's when
    ``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` is set beside the emulator's address.
    """
    if handler is None:  # the real worker (tests pass their own handler): show the kit's log
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    api = FastAPI()

    @api.post("/uploads")
    async def uploaded(image: Image) -> dict[str, str]:
        task = await make_thumbnail.aenqueue(image)
        return {"task": task.id}

    api.mount("/tasks", (handler or TaskHandler(tasks)).asgi)
    return api


app = create_app()
