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


def test_loading_the_client_leaves_pydantic_for_the_first_create() -> None:
    # A Cloud Run or Cloud Functions worker pays the import on every cold start (issue 15: at most 1.10x
    # `from google.cloud import tasks_v2`); the task and queue models load on first use.
    code = (
        "import sys; from cloudtasks_kit import CloudTasks, AsyncCloudTasks; "
        "print('pydantic' in sys.modules); "
        "from cloudtasks_kit.transports.fake import FakeTransport; "
        "q = CloudTasks('p', 'l', transport=FakeTransport()).queue('q'); q.create(); "
        "print(q.create_task('https://w.test/', json={'a': 1}).name.startswith(q.name)); "
        "print('pydantic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True", "True"], result.stdout + result.stderr


def test_a_deferred_module_loads_once_when_threads_touch_it_together() -> None:
    # Two threads reaching a deferred module at the same moment both get it whole, run once.
    code = """
import sys, threading
from cloudtasks_kit import _lazy
import cloudtasks_kit.client
deferred = sys.modules["cloudtasks_kit.tasks"]
assert type(deferred) is _lazy._Deferred, type(deferred)
start = threading.Barrier(8)
seen = []
def touch():
    start.wait()
    seen.append(deferred.TaskSpec)
threads = [threading.Thread(target=touch) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
import cloudtasks_kit.tasks as loaded
assert loaded is deferred and len(seen) == 8 and all(s is loaded.TaskSpec for s in seen), seen
from cloudtasks_kit import TaskSpec
assert TaskSpec is loaded.TaskSpec
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stdout + result.stderr


def test_a_deferred_module_shows_its_names_and_docstring() -> None:
    # dir(), help() and __doc__ read the whole module, as they would after a plain import.
    code = (
        "import sys; import cloudtasks_kit.client; tasks = sys.modules['cloudtasks_kit.tasks']; "
        "print(type(tasks).__name__, 'TaskSpec' in dir(tasks), bool(tasks.__doc__), type(tasks).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["_Deferred", "True", "True", "module"], result.stdout + result.stderr
