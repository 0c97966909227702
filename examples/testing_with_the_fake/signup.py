"""A tiny app that enqueues a welcome email when someone signs up."""

from __future__ import annotations

from datetime import timedelta

from cloudtasks_kit import CloudTasks

WORKER = "https://worker.example.com"


def signup(email: str, tasks: CloudTasks) -> str:
    """Register ``email`` and enqueue its welcome email (once, however often this is called)."""
    task = tasks.queue("emails").create_task(
        f"{WORKER}/send-welcome",
        json={"to": email},
        delay=timedelta(minutes=1),
        dedup_key=f"welcome:{email}",
    )
    return task.id
