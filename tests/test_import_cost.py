"""What a process pays for the kit before it uses it: the pytest plugin imports nothing heavy, and a
named create that succeeds at once never builds the retry machinery."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.errors import StatusCode
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.fake import FakeTransport


def test_registering_the_pytest_plugin_imports_neither_the_client_nor_the_fake() -> None:
    # The plugin is loaded by every pytest run on a machine with the kit installed.
    code = (
        "import sys, cloudtasks_kit.testing.plugin; "
        "heavy = [m for m in ('google.cloud.tasks_v2', 'grpc', 'pydantic', 'cloudtasks_kit.transports.fake') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_testing_names_still_load_on_use() -> None:
    import cloudtasks_kit.testing as testing

    assert testing.FakeTransport is FakeTransport
    assert testing.Delivery is testing.AttemptRecord


def test_a_named_create_that_succeeds_at_once_builds_no_retry_machinery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tenacity(self: RetryPolicy, *args: object) -> object:
        raise AssertionError("tenacity was built for a create that needed no retry")

    monkeypatch.setattr(RetryPolicy, "retrying", no_tenacity)
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    assert queue.create_task("https://w.test/", dedup_key="once").name.endswith(kit.task_id_for_key("once"))


def test_a_failed_first_attempt_still_retries_with_exact_counts() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, sleep=waits.append, deadline=None)
    fake = FakeTransport()
    queue = fake.client(retry_policy=policy).queue("q")
    queue.create()
    fake.faults.fail("create_task", StatusCode.UNAVAILABLE, times=3)
    with pytest.raises(kit.Unavailable):
        queue.create_task("https://w.test/", task_id="never")
    assert fake.faults.injected["create_task"] == 3  # three attempts in all, as the policy says
    assert len(waits) == 2
