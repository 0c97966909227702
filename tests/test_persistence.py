"""The emulator's data directory: what a restart keeps (queues, tasks with their delivery bookkeeping,
tombstones), on the fake's engine and virtual clock with the SQLite store attached, so every figure is
exact. The real-process tests (kill -9, SIGTERM) are in test_emulator_command.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudtasks_kit import AlreadyExists, FailedPrecondition, NotFound, RateLimits, RetryConfig
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.persistence import DATABASE_NAME, DataDirError, SqliteJournal, open_data_dir
from cloudtasks_kit.engine.attempts import AttemptRequest
from cloudtasks_kit.engine.clock import ManualClock
from cloudtasks_kit.engine.journal import NO_JOURNAL
from cloudtasks_kit.transports.fake import FakeTransport

START = 1_700_000_000.0
QUEUES = "projects/p/locations/us-central1/queues/"


class Restartable:
    """A fake whose engine keeps its state in ``data_dir``; :meth:`restart` is a new process's fake."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.clock = ManualClock(START)
        self.stores: list[SqliteJournal] = []
        self.fake = self._open()

    def _open(self) -> FakeTransport:
        fake = FakeTransport(clock=self.clock)
        store, _, _ = open_data_dir(fake.engine, self.data_dir)
        self.stores.append(store)
        return fake

    def restart(self, *, close: bool = True) -> FakeTransport:
        if close:
            self.stores[-1].close()
        else:  # as after kill -9: nothing more is written, the lock goes with the process
            self.stores[-1]._db.close()
        self.fake = self._open()
        return self.fake

    def close(self) -> None:
        self.stores[-1].close()


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[Restartable]:
    restartable = Restartable(tmp_path / "data")
    yield restartable
    restartable.close()


def snapshot(fake: FakeTransport) -> dict[str, Any]:
    engine = fake.engine
    return {
        "queues": {
            name: q.pb.SerializeToString(deterministic=True) for name, q in engine.state.queues.items()
        },
        "tasks": {
            r.pb.name: (
                r.pb.SerializeToString(deterministic=True),  # map order is not otherwise fixed
                r.executions,
                r.first_attempt_time,
                r.previous_response,
                r.retry_reason,
                r.eta,
                r.seq,
            )
            for q in engine.state.queues.values()
            for r in q.tasks.values()
        },
        "task_tombstones": dict(engine.state.task_tombstones),
        "queue_tombstones": dict(engine.state.queue_tombstones),
    }


def answers(statuses: dict[str, list[int]]) -> Any:
    """A target answering each task id with the next of its statuses (200 when they run out)."""

    def target(attempt: AttemptRequest) -> int:
        left = statuses.get(attempt.task_id, [])
        return left.pop(0) if left else 200

    return target


def test_a_restart_keeps_queues_tasks_tombstones_and_delivery_bookkeeping(kept: Restartable) -> None:
    tasks = kept.fake.client("p")
    work = tasks.queue("work")
    work.create(
        rate_limits=RateLimits(max_dispatches_per_second=7, max_concurrent_dispatches=3),
        retry=RetryConfig(
            max_attempts=10, min_backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=8)
        ),
    )
    tasks.queue("held").create()
    tasks.queue("held").pause()
    tasks.queue("gone").create()
    tasks.queue("gone").delete()
    work.create_task("http://w.test/flaky", json={"n": 1}, task_id="flaky")
    work.create_task("http://w.test/ok", json={"n": 2}, task_id="ok")
    work.create_task("http://w.test/later", json={"n": 3}, task_id="later", delay=timedelta(hours=2))
    work.create_task("http://w.test/deleted", task_id="deleted")
    work.delete_task("deleted")
    tasks.queue("held").create_task("http://w.test/held", body=b"\x00\x01binary", task_id="held")
    kept.fake.deliver_to(answers({"flaky": [503, 404]}))
    kept.fake.run_due()
    kept.fake.advance(1.0)  # flaky's second attempt (backoff 1 s) answers 404
    before = snapshot(kept.fake)

    fake = kept.restart()

    assert snapshot(fake) == before
    flaky = fake.engine.state.queues[QUEUES + "work"].tasks["flaky"]
    assert (flaky.pb.dispatch_count, flaky.pb.response_count, flaky.executions) == (2, 2, 1)
    assert fake.engine.queue_pb(QUEUES + "held").state == 2  # PAUSED
    again = fake.client("p")
    with pytest.raises(AlreadyExists):
        again.queue("work").create_task("http://w.test/x", task_id="ok")  # succeeded: its name is taken
    with pytest.raises(AlreadyExists):
        again.queue("work").create_task("http://w.test/x", task_id="deleted")
    with pytest.raises(FailedPrecondition):
        again.queue("gone").create()
    with pytest.raises(NotFound, match="recently"):
        again.queue("work").get_task("ok")


def test_delivery_resumes_with_the_retry_count_and_previous_response(kept: Restartable) -> None:
    work = kept.fake.client("p").queue("work")
    work.create(retry=RetryConfig(min_backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=10)))
    work.create_task("http://w.test/flaky", task_id="flaky")
    kept.fake.deliver_to(answers({"flaky": [503, 500]}))
    kept.fake.run_due()
    kept.fake.advance(10)
    eta = kept.fake.engine.state.queues[QUEUES + "work"].tasks["flaky"].eta

    fake = kept.restart()
    seen: list[AttemptRequest] = []
    fake.deliver_to(lambda attempt: seen.append(attempt) or 200)
    assert fake.run_due() == []  # not due before its schedule time: the backoff carries over
    kept.clock.set(eta)
    fake.run_due()
    assert len(seen) == 1
    headers = seen[0].headers
    assert headers["X-CloudTasks-TaskRetryCount"] == "2"
    assert headers["X-CloudTasks-TaskExecutionCount"] == "0"
    assert headers["X-CloudTasks-TaskPreviousResponse"] == "500"
    assert fake.engine.state.queues[QUEUES + "work"].tasks == {}


def test_a_task_in_flight_at_a_crash_is_due_again_and_its_attempt_counts(kept: Restartable) -> None:
    engine = kept.fake.engine
    work = kept.fake.client("p").queue("work")
    work.create()
    work.create_task("http://w.test/a", task_id="a")
    started = engine.scheduler.take_due()  # sent, never answered: the process dies here
    engine.journal.commit()
    assert [a.task_id for a in started] == ["a"]

    fake = kept.restart(close=False)
    seen: list[AttemptRequest] = []
    fake.deliver_to(lambda attempt: seen.append(attempt) or 200)
    fake.run_due()
    assert [a.headers["X-CloudTasks-TaskRetryCount"] for a in seen] == ["1"]


def test_purge_run_task_and_queue_updates_survive(kept: Restartable) -> None:
    tasks = kept.fake.client("p")
    purged, other = tasks.queue("purged"), tasks.queue("other")
    purged.create()
    other.create()
    other.pause()
    for n in range(3):
        purged.create_task("http://w.test/p", task_id=f"p{n}")
    purged.purge()
    other.create_task("http://w.test/o", task_id="forced", delay=timedelta(hours=1))
    other.run_task("forced")  # RunTask'd: goes even though the queue is paused
    other.update(rate_limits=RateLimits(max_dispatches_per_second=2))
    before = snapshot(kept.fake)

    fake = kept.restart()
    assert snapshot(fake) == before
    with pytest.raises(AlreadyExists):
        fake.client("p").queue("purged").create_task("http://w.test/p", task_id="p1")
    seen: list[str] = []
    fake.deliver_to(lambda attempt: seen.append(attempt.task_id) or 200)
    fake.run_due()
    assert seen == ["forced"]


def test_new_tasks_after_a_restart_list_after_the_old_ones(kept: Restartable) -> None:
    work = kept.fake.client("p").queue("work")
    work.create()
    work.pause()
    for n in range(3):
        work.create_task("http://w.test/x", task_id=f"old{n}")
    work = kept.restart().client("p").queue("work")
    work.create_task("http://w.test/x", task_id="new")
    kept.restart()
    assert [t.id for t in kept.fake.client("p").queue("work").list_tasks()] == ["old0", "old1", "old2", "new"]


def test_expired_tombstones_are_not_restored(kept: Restartable) -> None:
    work = kept.fake.client("p").queue("work")
    work.create()
    work.create_task("http://w.test/x", task_id="t")
    work.delete_task("t")
    kept.clock.advance(timedelta(hours=1, seconds=1))  # the task tombstone window is an hour
    fake = kept.restart()
    assert fake.engine.state.task_tombstones == {}
    fake.client("p").queue("work").create_task("http://w.test/x", task_id="t")


def test_a_data_dir_in_use_is_refused(kept: Restartable) -> None:
    with pytest.raises(DataDirError, match="in use by another emulator"):
        open_data_dir(FakeTransport().engine, kept.data_dir)


def test_a_data_dir_that_is_a_file_or_not_a_database_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataDirError, match="is a file, not a directory"):
        open_data_dir(FakeTransport().engine, a_file)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / DATABASE_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataDirError, match="not an emulator data file"):
        open_data_dir(FakeTransport().engine, garbage)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    engine = FakeTransport().engine
    store, _, _ = open_data_dir(engine, tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / DATABASE_NAME)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(DataDirError, match="schema version 99"):
        open_data_dir(FakeTransport().engine, tmp_path)


def test_the_database_is_in_wal_mode(kept: Restartable) -> None:
    assert kept.stores[-1]._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_without_a_data_dir_nothing_is_kept() -> None:
    assert FakeTransport().engine.journal is NO_JOURNAL
    emulator = Emulator()
    assert emulator.engine.journal is NO_JOURNAL
    assert emulator.state_description.startswith("in memory (pass --data-dir")


def test_the_emulator_restores_from_its_data_dir(tmp_path: Path) -> None:
    with Emulator(data_dir=tmp_path) as emulator:
        queue = emulator.client().queue("work")
        queue.create()
        queue.pause()
        queue.create_task("http://127.0.0.1:9/x", task_id="t1")
    with Emulator(data_dir=tmp_path) as emulator:
        assert emulator.restored == (1, 1)
        assert "(1 queues and 1 tasks restored)" in emulator.state_description
        assert [t.id for t in emulator.client().queue("work").list_tasks()] == ["t1"]
