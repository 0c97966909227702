"""The pytest plugin's fixtures and the assertion helpers, as a user's test suite meets them."""

from __future__ import annotations

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.testing import FakeTransport, assert_delivered, assert_enqueued


def test_the_plugin_gives_a_fresh_fake_and_a_client_on_it(
    cloudtasks_fake: FakeTransport, cloudtasks_client: kit.CloudTasks
) -> None:
    assert cloudtasks_client.transport is cloudtasks_fake
    assert (cloudtasks_client.project, cloudtasks_client.location) == ("test-project", "us-central1")
    assert cloudtasks_fake.engine.queue_names() == []


def test_assert_enqueued_finds_matches_and_shows_the_queue_when_it_fails(
    cloudtasks_fake: FakeTransport, cloudtasks_client: kit.CloudTasks
) -> None:
    queue = cloudtasks_client.queue("emails")
    queue.create()
    queue.create_task("https://worker.test/send", json={"to": "bob@example.com"}, headers={"X-Tenant": "t1"})
    queue.create_task("https://worker.test/send", json={"to": "carol@example.com"})

    (task,) = assert_enqueued(
        cloudtasks_fake, "emails", json={"to": "bob@example.com"}, headers={"x-tenant": "t1"}
    )
    assert task.url == "https://worker.test/send"
    assert len(assert_enqueued(cloudtasks_fake, "emails", url="https://worker.test/send", count=2)) == 2

    with pytest.raises(AssertionError) as caught:
        assert_enqueued(cloudtasks_fake, "emails", json={"to": "ada@example.com"})
    message = str(caught.value)
    assert "expected 1 task in queue 'emails' with json={'to': 'ada@example.com'}; found 0 of 2:" in message
    assert "json={'to': 'bob@example.com'}" in message and "json={'to': 'carol@example.com'}" in message


def test_assert_delivered(cloudtasks_fake: FakeTransport, cloudtasks_client: kit.CloudTasks) -> None:
    queue = cloudtasks_client.queue("work")
    queue.create(retry=kit.RetryConfig(max_attempts=2))
    cloudtasks_fake.deliver_to(lambda dispatch: 500 if dispatch.url.endswith("/bad") else 200)
    queue.create_task("https://worker.test/good", json={"n": 1})
    queue.create_task("https://worker.test/bad", json={"n": 2})
    cloudtasks_fake.run_until_idle()

    assert_delivered(cloudtasks_fake, url_endswith="/good", status=200, json={"n": 1})
    assert_delivered(cloudtasks_fake, url_endswith="/bad", status=500, count=2)
    assert_delivered(cloudtasks_fake, header=("X-CloudTasks-QueueName", "work"), count=3)
    with pytest.raises(
        AssertionError, match=r"expected 1 delivery with url_endswith='/bad', status=200; found 0 of 3"
    ):
        assert_delivered(cloudtasks_fake, url_endswith="/bad", status=200)
