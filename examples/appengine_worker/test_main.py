"""The App Engine example end to end on the fake: an upload enqueues an App Engine task, the queue runs
dry into the same app with X-AppEngine-* headers and no token."""

from __future__ import annotations

import pytest

from cloudtasks_kit import TaskHandler, UsageError
from cloudtasks_kit.testing import FakeTransport

from . import main


def test_upload_makes_one_thumbnail(cloudtasks_fake: FakeTransport) -> None:
    client = cloudtasks_fake.client()
    client.queue("thumbnails").create()
    app = main.create_app(TaskHandler(main.tasks, trust_app_engine_headers=True), client)
    main.MADE.clear()

    web = app.test_client()
    assert web.post("/upload", json={"image_id": 7}).status_code == 200
    again = web.post("/upload", json={"image_id": 7})  # the dedup key makes it once
    assert again.get_json() == {"task": "already enqueued"}

    cloudtasks_fake.deliver_to_wsgi(app)
    (attempt,) = cloudtasks_fake.run_until_idle()
    assert attempt.status == 200
    assert attempt.url == f"http://{client.project}.appspot.com/tasks/make_thumbnail"
    assert attempt.header("X-AppEngine-QueueName") == "thumbnails"
    assert attempt.header("Authorization") is None
    assert main.MADE == [7]


def test_a_request_from_outside_never_runs_the_task(cloudtasks_fake: FakeTransport) -> None:
    app = main.create_app(TaskHandler(main.tasks, trust_app_engine_headers=True), cloudtasks_fake.client())
    main.MADE.clear()
    envelope = {"v": 1, "task": "make_thumbnail", "args": {"image_id": 1}}
    assert app.test_client().post("/tasks/make_thumbnail", json=envelope).status_code == 401
    assert main.MADE == []


def test_the_worker_will_not_start_without_the_explicit_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GAE_ENV", "LOCAL_APP_ENGINE_TASKS"):
        monkeypatch.delenv(name, raising=False)
    assert not main.trusts_app_engine_headers()
    with pytest.raises(UsageError, match="trust_app_engine_headers=True"):
        TaskHandler(main.tasks, trust_app_engine_headers=main.trusts_app_engine_headers())
