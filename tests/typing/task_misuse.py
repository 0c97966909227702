"""Wrong uses of the task decorator: mypy must report each line marked as an error below."""

from __future__ import annotations

from cloudtasks_kit import TaskApp

app = TaskApp(base_url="https://worker.example.com")


@app.task
def send(to: str, retries: int = 3) -> bool:
    return bool(to) and retries > 0


send.enqueue(42)  # error: an int for a str
send.enqueue("ada@example.com", retries="many")  # error: a str for an int
send.enqueue("ada@example.com", tries=1)  # error: no such argument
send.enqueue()  # error: missing argument
send.options(task_id="x").enqueue(to=1.5)  # error: a float for a str
send.spec(b"bytes")  # error: bytes for a str
value: str = send("ada@example.com")  # error: it returns a bool
