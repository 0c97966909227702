"""Typed use of the task decorator: mypy --strict accepts this file."""

from __future__ import annotations

from datetime import timedelta

from cloudtasks_kit import CloudTasks, Task, TaskApp, TaskSpec

app = TaskApp(base_url="https://worker.example.com")


@app.task
def send(to: str, retries: int = 3) -> bool:
    return bool(to) and retries > 0


@app.task(queue="other", dedup_key=lambda to, **_: to)
async def fetch(url: str) -> None: ...


def use(client: CloudTasks) -> None:
    app.bind(client)
    ok: bool = send("ada@example.com")
    task: Task = send.enqueue("ada@example.com", retries=1)
    later: Task = send.options(delay=timedelta(minutes=5)).enqueue("bob@example.com")
    spec: TaskSpec = send.spec("carol@example.com")
    fetch.enqueue("https://example.com")
    print(ok, task, later, spec)
