"""Typed use of the task decorator: mypy --strict accepts this file."""

from __future__ import annotations

from datetime import timedelta

from cloudtasks_kit import AppEngineRouting, AppEngineTask, CloudTasks, Task, TaskApp, TaskSpec

app = TaskApp(base_url="https://worker.example.com")
worker = TaskApp(app_engine=AppEngineRouting(service="worker"), queue="images")


@app.task
def send(to: str, retries: int = 3) -> bool:
    return bool(to) and retries > 0


@app.task(queue="other", dedup_key=lambda to, **_: to)
async def fetch(url: str) -> None: ...


@worker.task
def resize(image: int, size: str = "small") -> None: ...


def http_app() -> TaskApp:  # a bare TaskApp is an HTTP app
    return app


def app_engine_app() -> TaskApp[AppEngineTask]:
    return worker


def use(client: CloudTasks) -> None:
    app.bind(client)
    ok: bool = send("ada@example.com")
    task: Task = send.enqueue("ada@example.com", retries=1)
    later: Task = send.options(delay=timedelta(minutes=5)).enqueue("bob@example.com")
    spec: TaskSpec = send.spec("carol@example.com")
    fetch.enqueue("https://example.com")
    send.enqueue_many([send.spec("dan@example.com"), spec])
    print(ok, task, later, spec)


def use_app_engine(client: CloudTasks) -> None:
    worker.bind(client)
    task: Task = resize.enqueue(42, size="large")
    spec: AppEngineTask = resize.options(delay=timedelta(minutes=5)).spec(43)
    uri: str = spec.relative_uri
    resize.enqueue_many([resize.spec(44), spec])
    print(task, uri)
