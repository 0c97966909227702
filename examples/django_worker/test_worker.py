"""The Django example end to end on the fake, delivered to Django's own WSGI application."""

from __future__ import annotations

from cloudtasks_kit import TaskHandler
from cloudtasks_kit.testing import FakeTransport

from . import worker


def test_a_requested_report_is_built(cloudtasks_fake: FakeTransport) -> None:
    from django.core.wsgi import get_wsgi_application
    from django.test import Client

    client = cloudtasks_fake.client()
    client.queue("reports").create()
    worker.configure(client, TaskHandler(worker.tasks, certs=cloudtasks_fake.certs()))
    worker.REPORTS.clear()

    response = Client().post("/reports", data={"account_id": 42}, content_type="application/json")
    assert response.status_code == 200

    cloudtasks_fake.deliver_to_wsgi(get_wsgi_application())
    assert [d.status for d in cloudtasks_fake.run_until_idle()] == [200]
    assert worker.REPORTS == [42]
