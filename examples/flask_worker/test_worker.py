"""The Flask example end to end on the fake: a signup enqueues, the queue runs dry into the same app."""

from __future__ import annotations

from cloudtasks_kit import TaskHandler
from cloudtasks_kit.testing import FakeTransport

from . import worker


def test_signup_sends_one_welcome_email(cloudtasks_fake: FakeTransport) -> None:
    client = cloudtasks_fake.client()
    client.queue("emails").create()
    app = worker.create_app(TaskHandler(worker.tasks, certs=cloudtasks_fake.certs()), client)
    worker.SENT.clear()

    web = app.test_client()
    assert web.post("/signup", json={"email": "ada@example.com"}).status_code == 200
    again = web.post("/signup", json={"email": "ada@example.com"})  # the dedup key makes it once
    assert again.get_json() == {"task": "already enqueued"}

    cloudtasks_fake.deliver_to_wsgi(app)
    deliveries = cloudtasks_fake.run_until_idle()
    assert [d.status for d in deliveries] == [200]
    assert worker.SENT == ["ada@example.com"]


def test_a_request_without_a_token_never_runs_the_task(cloudtasks_fake: FakeTransport) -> None:
    app = worker.create_app(
        TaskHandler(worker.tasks, certs=cloudtasks_fake.certs()), cloudtasks_fake.client()
    )
    worker.SENT.clear()
    response = app.test_client().post(
        "/tasks/send_welcome", json={"v": 1, "task": "send_welcome", "args": {"to": "x"}}
    )
    assert response.status_code == 401
    assert worker.SENT == []
