"""The emulator's data directory: its queues, tasks and tombstones kept in SQLite, so a restart loses
nothing that was acknowledged.

:class:`SqliteJournal` is the engine's :class:`~cloudtasks_kit.engine.journal.Journal`: it writes each
change the engine reports inside one transaction and commits when the engine says the change is whole,
before the call answers. The database is in WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed (``kill -9``) at any moment; only a crash of the machine itself may lose the last
commits (pass ``synchronous="FULL"`` to pay an fsync per commit for that too).

Protobufs are kept as their serialized bytes; the engine's delivery bookkeeping (executions, first
attempt time, previous response, retry reason, RunTask'd) sits beside them in plain columns. The
database is opened in exclusive locking mode: a second emulator on the same directory is refused
rather than left to corrupt the first one's state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from ..engine.engine import Engine
from ..engine.journal import Journal, SavedQueue, SavedTask, SavedTombstone, restore
from ..engine.state import QueueRecord, TaskRecord

__all__ = ["DATABASE_NAME", "DataDirError", "SqliteJournal", "open_data_dir"]

DATABASE_NAME = "cloudtasks.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, pb BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    pb BLOB NOT NULL,
    executions INTEGER NOT NULL,
    first_attempt_time REAL,
    previous_response INTEGER,
    retry_reason TEXT,
    forced INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_queue ON tasks (queue);
CREATE TABLE IF NOT EXISTS tombstones (
    kind TEXT NOT NULL, name TEXT NOT NULL, expiry REAL NOT NULL, PRIMARY KEY (kind, name)
);
"""

_SAVE_TASK = """
INSERT INTO tasks (name, queue, task_id, seq, pb, executions, first_attempt_time, previous_response,
                   retry_reason, forced)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    pb = excluded.pb, executions = excluded.executions, first_attempt_time = excluded.first_attempt_time,
    previous_response = excluded.previous_response, retry_reason = excluded.retry_reason,
    forced = excluded.forced
"""
# An upsert keeps the row (and its rowid): queues come back in the order they were created.
_SAVE_QUEUE = "INSERT INTO queues (name, pb) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET pb = excluded.pb"
_BURY = "INSERT OR REPLACE INTO tombstones (kind, name, expiry) VALUES (?, ?, ?)"

# Expired tombstones are forgotten now and then, not on every commit.
_PRUNE_EVERY = 1000


class DataDirError(Exception):
    """The data directory cannot be used (not a directory, not writable, in use, or not ours)."""


class SqliteJournal(Journal):
    """Keeps an engine's state in ``PATH/cloudtasks.sqlite3`` as the engine changes it.

    Args:
        path: the database file.
        now: the clock tombstone expiry is compared with (the engine's).
        synchronous: SQLite's ``synchronous`` setting: NORMAL survives a killed process, FULL a
            crashed machine too.
    """

    def __init__(
        self,
        path: Path,
        now: Callable[[], float],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = path
        self._now = now
        try:
            # The engine is used from one thread at a time (the emulator's loop), though that may not
            # be the thread that opened the store.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise DataDirError(f"cannot open {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA busy_timeout = 0")
            self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise DataDirError(f"{path}: SQLite could not switch to WAL mode (it says {mode!r})")
            self._db.execute(f"PRAGMA synchronous = {synchronous}")
            self._db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, not at the first write
            for statement in _SCHEMA.split(";"):  # not executescript: it would commit the BEGIN
                if statement.strip():
                    self._db.execute(statement)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise DataDirError(
                    f"{path} is in use by another emulator: stop it, or pass another --data-dir"
                ) from None
            raise DataDirError(f"{path} is not an emulator data file ({exc})") from None
        self._check_version()
        self._db.execute("COMMIT")
        self._open = False  # whether a transaction is open
        self._commits = 0

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            self._db.execute("ROLLBACK")
            self._db.close()
            raise DataDirError(
                f"{self.path} has schema version {row[0]}; this emulator reads version {SCHEMA_VERSION}"
            )

    # Reading back.

    def load_into(self, engine: Engine) -> tuple[int, int]:
        """Restore ``engine`` from the store; returns how many queues and tasks came back."""
        db = self._db
        queues = [SavedQueue(bytes(pb)) for (pb,) in db.execute("SELECT pb FROM queues ORDER BY rowid")]
        tasks = [
            SavedTask(
                queue=queue,
                task_id=task_id,
                seq=seq,
                pb=bytes(pb),
                executions=executions,
                first_attempt_time=first,
                previous_response=previous,
                retry_reason=reason,
                forced=bool(forced),
            )
            for queue, task_id, seq, pb, executions, first, previous, reason, forced in db.execute(
                "SELECT queue, task_id, seq, pb, executions, first_attempt_time, previous_response, "
                "retry_reason, forced FROM tasks ORDER BY seq"
            )
        ]
        stones = [
            SavedTombstone(kind, name, expiry)
            for kind, name, expiry in db.execute(
                "SELECT kind, name, expiry FROM tombstones WHERE expiry > ?", (self._now(),)
            )
        ]
        restore(engine, queues, tasks, stones)
        return len(queues), len(tasks)

    # The journal.

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        if not self._open:
            self._db.execute("BEGIN")
            self._open = True
        self._db.execute(sql, args)

    def _save_queue(self, queue: QueueRecord) -> None:
        self._write(_SAVE_QUEUE, (queue.name, queue.pb.SerializeToString()))

    def _save_task(self, task: TaskRecord) -> None:
        self._write(
            _SAVE_TASK,
            (
                task.pb.name,
                task.queue.name,
                task.id,
                task.seq,
                task.pb.SerializeToString(),
                task.executions,
                task.first_attempt_time,
                task.previous_response,
                task.retry_reason,
                int(task.forced),
            ),
        )

    def queue_created(self, queue: QueueRecord) -> None:
        self._write("DELETE FROM tombstones WHERE kind = 'queue' AND name = ?", (queue.name,))
        self._save_queue(queue)

    def queue_changed(self, queue: QueueRecord) -> None:
        self._save_queue(queue)

    def queue_deleted(self, name: str, tombstone_expiry: float) -> None:
        self._write("DELETE FROM tasks WHERE queue = ?", (name,))
        self._write("DELETE FROM queues WHERE name = ?", (name,))
        self._write(_BURY, ("queue", name, tombstone_expiry))

    def task_created(self, task: TaskRecord) -> None:
        self._save_task(task)

    def task_started(self, task: TaskRecord) -> None:
        self._save_task(task)

    def task_finished(self, task: TaskRecord) -> None:
        self._save_task(task)

    def task_rescheduled(self, task: TaskRecord) -> None:
        self._save_task(task)

    def task_deleted(self, task: TaskRecord, tombstone_expiry: float) -> None:
        self._write("DELETE FROM tasks WHERE name = ?", (task.pb.name,))
        self._write(_BURY, ("task", task.pb.name, tombstone_expiry))

    def commit(self) -> None:
        if not self._open:
            return
        self._commits += 1
        if self._commits % _PRUNE_EVERY == 0:
            self._db.execute("DELETE FROM tombstones WHERE expiry <= ?", (self._now(),))
        self._db.execute("COMMIT")
        self._open = False

    def close(self) -> None:
        """Commit what is pending and close the database (checkpointing its WAL)."""
        self.commit()
        self._db.close()


def open_data_dir(
    engine: Engine, data_dir: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
) -> tuple[SqliteJournal, int, int]:
    """Open (or make) ``data_dir``, restore ``engine`` from it and make the store its journal.

    Returns the store and how many queues and tasks came back.
    """
    directory = Path(data_dir)
    if directory.exists() and not directory.is_dir():
        raise DataDirError(f"--data-dir {str(directory)!r} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot make --data-dir {str(directory)!r}: {exc.strerror or exc}") from None
    store = SqliteJournal(directory / DATABASE_NAME, engine.clock.now, synchronous=synchronous)
    try:
        queues, tasks = store.load_into(engine)
    except Exception:
        store.close()
        raise
    engine.journal = store
    return store, queues, tasks
