"""Wrong uses of the task decorator: mypy must report each line marked as an error below."""

from __future__ import annotations

from cloudtasks_kit import AppEngineRouting, AppEngineTask, OidcToken, TaskApp, TaskSpec

app = TaskApp(base_url="https://worker.example.com")
worker = TaskApp(app_engine=AppEngineRouting(service="worker"))


@app.task
def send(to: str, retries: int = 3) -> bool:
    return bool(to) and retries > 0


@worker.task
def resize(image: int) -> None: ...


send.enqueue(42)  # error: an int for a str
send.enqueue("ada@example.com", retries="many")  # error: a str for an int
send.enqueue("ada@example.com", tries=1)  # error: no such argument
send.enqueue()  # error: missing argument
send.options(task_id="x").enqueue(to=1.5)  # error: a float for a str
send.spec(b"bytes")  # error: bytes for a str
value: str = send("ada@example.com")  # error: it returns a bool
resize.enqueue("42")  # error: a str for an int
http_spec: TaskSpec = resize.spec(42)  # error: an App Engine app makes AppEngineTasks
ae_spec: AppEngineTask = send.spec("ada@example.com")  # error: an HTTP app makes TaskSpecs
send.enqueue_many([resize.spec(42)])  # error: an App Engine spec for an HTTP function
TaskApp(app_engine=AppEngineRouting(), oidc=OidcToken(service_account_email="a@b.c"))  # error: no token
TaskApp(base_url="https://w.example.com", app_engine=AppEngineRouting())  # error: both targets
TaskApp()  # error: no target
