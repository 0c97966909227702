"""The house rules that keep the kit easy to change: one table of calls, a pure engine, one clock per
transport, bounded history, and Retry-After read as RFC 9110 says."""

from __future__ import annotations

import ast
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import rest_base

import cloudtasks_kit as kit
from cloudtasks_kit.drivers.history import History
from cloudtasks_kit.engine.attempts import AttemptRecord, AttemptRequest, AttemptResult, parse_retry_after
from cloudtasks_kit.engine.engine import Engine
from cloudtasks_kit.errors import StatusCode
from cloudtasks_kit.transports.calls import RPCS, HttpRule
from cloudtasks_kit.transports.fake import FakeTransport

PACKAGE = Path(kit.__file__).parent


# The call table.


def _official_http_options(method: str) -> list[dict[str, str]] | None:
    base = getattr(rest_base._BaseCloudTasksRestTransport, f"_Base{method}", None)
    return None if base is None else list(base._get_http_options())


@pytest.mark.parametrize("name", sorted(RPCS))
def test_each_rest_binding_is_the_official_clients(name: str) -> None:
    # The routes are written in the table; Google's generated REST transport is the reference for them.
    rpc = RPCS[name]
    official = _official_http_options(rpc.method) if rpc.method else None
    if official is None:
        return  # BufferTask, and the Operations calls the official REST transport does not bind
    ours = [{"method": rule.verb.lower(), "uri": rule.path} | ({"body": rule.body} if rule.body else {})
            for rule in rpc.http]  # fmt: skip
    assert ours == official


@pytest.mark.parametrize("name", sorted(RPCS))
def test_every_call_has_an_engine_method(name: str) -> None:
    engine = Engine()
    handler = getattr(engine, name, None) or getattr(engine.admin, name, None)
    assert callable(handler), f"the engine has no method for {name}"


def test_every_call_of_the_official_client_is_in_the_table() -> None:
    # The official client's RPCs (its gapic metadata) are all rows; BufferTask is the REST-only extra.
    import json

    metadata = json.loads((Path(tasks_v2.__file__).parent / "gapic_metadata.json").read_text())
    methods = set(metadata["services"]["CloudTasks"]["clients"]["grpc"]["rpcs"])
    assert methods <= {rpc.method for rpc in RPCS.values()}


def test_a_path_template_becomes_a_route() -> None:
    rule = HttpRule("PATCH", "/v2/{queue.name=projects/*/locations/*/queues/*}", "queue")
    match = rule.regex().fullmatch("/v2/projects/p/locations/l/queues/q")
    assert match is not None and match.group("queue__name") == "projects/p/locations/l/queues/q"
    assert rule.fields() == ["queue.name"]
    assert rule.regex().fullmatch("/v2/projects/p/locations/l/queues/q/tasks/t") is None
    assert rule.regex().fullmatch("/v2/projects/p/locations/l/queues/q:pause") is None


# A pure engine.

_IO_MODULES = {"socket", "asyncio", "aiohttp", "requests", "urllib.request", "http.client", "selectors",
               "subprocess", "concurrent.futures", "grpc.aio"}  # fmt: skip


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_does_no_io(path: Path) -> None:
    assert not _imports(path) & _IO_MODULES
    assert "Thread(" not in path.read_text() and "event_loop" not in path.read_text()


def test_the_engine_does_not_import_its_drivers_or_servers() -> None:
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module not in ("drivers", "emulator"), path.name
                assert not (node.module or "").startswith(("drivers.", "emulator.")), path.name


def test_resource_names_are_split_only_in_names_py() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "names.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(f'{verb}("/' in line for verb in ("split", "rsplit", "partition", "rpartition")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}")
    assert offenders == []


def test_there_is_one_deadline_exceeded_class() -> None:
    classes = [path for path in PACKAGE.rglob("*.py") if "class DeadlineExceeded" in path.read_text()]
    assert [p.name for p in classes] == ["errors.py"]


# One clock per transport.


def test_retries_on_the_fake_wait_on_its_virtual_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    fake.faults.fail("create_task", StatusCode.UNAVAILABLE, times=3)

    def no_real_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s for real")

    monkeypatch.setattr(time, "sleep", no_real_sleep)
    before, wall = fake.now(), time.monotonic()
    task = queue.create_task("https://w.example.com/x", task_id="retried")
    assert task.id == "retried"
    assert fake.faults.injected["create_task"] == 3
    assert fake.now() - before >= 0.1  # three waits of the default policy passed on the fake's clock
    assert time.monotonic() - wall < 1.0


async def test_async_retries_on_the_fake_wait_on_its_virtual_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    fake = FakeTransport()
    client = fake.async_client()
    await client.queue("q").create()
    fake.faults.fail("create_task", StatusCode.UNAVAILABLE, times=2)

    async def no_real_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s for real")

    monkeypatch.setattr(asyncio, "sleep", no_real_sleep)
    before = fake.now()
    await client.queue("q").create_task("https://w.example.com/x", task_id="retried")
    assert fake.now() > before


# Bounded history.


def _record(n: int) -> AttemptRecord:
    request = AttemptRequest(
        task_name=f"projects/p/locations/l/queues/q/tasks/t{n}",
        queue_name="projects/p/locations/l/queues/q",
        method="POST",
        url="https://w.test/",
        headers={"Authorization": "Bearer secret-token", "X-Id": str(n)},
        body=b"",
        deadline=600.0,
        retry_count=0,
        schedule_time=0.0,
        dispatch_time=float(n),
    )
    return AttemptRecord.of(request, AttemptResult(200))


def test_the_history_keeps_the_newest_attempts_and_counts_them_all() -> None:
    history = History(3)
    for n in range(5):
        history.append(_record(n))
    assert len(history) == 3 and history.total == 5
    assert [r.header("X-Id") for r in history] == ["2", "3", "4"]
    assert history[-1].time == 4.0 and [r.time for r in history[:2]] == [2.0, 3.0]


def test_a_record_keeps_no_bearer_token() -> None:
    record = _record(1)
    assert "secret-token" not in repr(record.headers)
    assert record.header("Authorization") == "Bearer [redacted]"


def test_the_fake_history_is_bounded_and_configurable() -> None:
    fake = FakeTransport(history=2)
    queue = fake.client().queue("q")
    queue.create()
    for n in range(4):
        queue.create_task(f"https://w.test/{n}")
    fake.deliver_to(lambda attempt: 200)
    assert len(fake.run_until_idle()) == 4
    assert len(fake.attempts) == 2 and fake.attempts.total == 4
    assert fake.deliveries is fake.attempts  # the former name


# Retry-After (RFC 9110, section 10.2.3: delta-seconds or an HTTP-date).

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("5", 5.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1e19", None),  # not delta-seconds, not a date: junk
        ("-3", None),
        ("²", None),  # a Unicode digit is not a DIGIT
        ("9" * 400, 3600.0),  # huge: clamped, never overflowing
        ("1000000000000", 3600.0),
        ("soon", None),
        ("x" * 10_000, None),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW, maximum=3600.0) == expected


def test_retry_after_as_an_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 90, tz=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW, maximum=3600.0) == pytest.approx(90)
    past = datetime.fromtimestamp(NOW - 90, tz=timezone.utc)
    assert parse_retry_after(format_datetime(past, usegmt=True), now=NOW, maximum=3600.0) == 0.0
    far = datetime(9999, 12, 31, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(far, usegmt=True), now=NOW, maximum=3600.0) == 3600.0


def test_a_huge_retry_after_holds_the_task_no_longer_than_the_limit() -> None:
    limits = kit.Limits(max_retry_after=timedelta(seconds=30))
    fake = FakeTransport(limits=limits)
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://w.test/x")
    from cloudtasks_kit.testing import TargetResponse

    answers = iter([TargetResponse(503, {"Retry-After": "9" * 400}), TargetResponse(200)])
    fake.deliver_to(lambda attempt: next(answers))
    first, second = fake.run_until_idle()
    assert second.time - first.time == pytest.approx(30, abs=1)
    assert second.succeeded
    assert list(queue.list_tasks()) == []


def test_a_result_with_any_retry_after_is_bounded_by_the_scheduler() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://w.test/x")
    scheduler: Any = fake.engine.scheduler
    (attempt,) = scheduler.take_due()
    scheduler.finish(attempt, AttemptResult(429, retry_after=1e300))
    (task,) = queue.list_tasks()
    assert task.schedule_time is not None
    assert task.schedule_time.timestamp() - fake.now() == pytest.approx(3600.0, abs=1)
