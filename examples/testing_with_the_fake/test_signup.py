"""Testing code that enqueues, with the kit's pytest fixtures: no Google account, no network."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloudtasks_kit import AlreadyExists, CloudTasks, StatusCode, Unavailable
from cloudtasks_kit.testing import FakeTransport

from .signup import signup


@pytest.fixture
def tasks(cloudtasks_client: CloudTasks) -> CloudTasks:
    cloudtasks_client.queue("emails").create()
    return cloudtasks_client


def test_signup_enqueues_one_delayed_welcome_email(tasks: CloudTasks, cloudtasks_fake: FakeTransport) -> None:
    signup("ada@example.com", tasks)

    (task,) = cloudtasks_fake.tasks("emails")
    assert task.json() == {"to": "ada@example.com"}
    assert task.url == "https://worker.example.com/send-welcome"
    assert task.schedule_time is not None
    assert task.schedule_time.timestamp() == pytest.approx(cloudtasks_fake.now() + 60)


def test_signing_up_twice_sends_one_email(tasks: CloudTasks) -> None:
    signup("ada@example.com", tasks)
    with pytest.raises(AlreadyExists):
        signup("ada@example.com", tasks)


def test_the_email_is_delivered_a_minute_later(tasks: CloudTasks, cloudtasks_fake: FakeTransport) -> None:
    sent: list[str] = []
    cloudtasks_fake.deliver_to(lambda attempt: sent.append(attempt.body.decode()) or 200)
    signup("ada@example.com", tasks)

    assert cloudtasks_fake.advance(timedelta(seconds=59)) == []
    (delivery,) = cloudtasks_fake.advance(timedelta(seconds=1))
    assert delivery.status == 200
    assert sent == ['{"to":"ada@example.com"}']


@pytest.mark.parametrize("lost", [False, True])
def test_a_transient_failure_still_sends_exactly_one_email(
    tasks: CloudTasks, cloudtasks_fake: FakeTransport, lost: bool
) -> None:
    # The create fails once (after taking effect, if lost). The task has an id (its dedup key), so the
    # kit retries it, and a retry that finds the task already there returns it.
    cloudtasks_fake.faults.fail("create_task", StatusCode.UNAVAILABLE, lost=lost)
    task_id = signup("ada@example.com", tasks)
    assert [t.id for t in cloudtasks_fake.tasks("emails")] == [task_id]
    assert cloudtasks_fake.faults.injected["create_task"] == 1


def test_a_lasting_outage_reaches_the_caller(tasks: CloudTasks, cloudtasks_fake: FakeTransport) -> None:
    cloudtasks_fake.faults.fail("create_task", StatusCode.UNAVAILABLE, times=100)
    with pytest.raises(Unavailable):
        signup("ada@example.com", tasks)
    assert cloudtasks_fake.tasks("emails") == []
