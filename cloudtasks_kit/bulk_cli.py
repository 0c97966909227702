"""``cloudtasks-kit enqueue --queue Q --file tasks.jsonl``: bulk enqueue from a file of task specs.

Each line is one :class:`~cloudtasks_kit.TaskSpec` as JSON, e.g.
``{"url": "https://worker.example.com/send", "json": {"to": "ada@example.com"}, "dedup_key": "w-1"}``
(bytes bodies in base64, durations in seconds). It shows a progress bar, prints a summary, and when some
lines fail it writes them, unchanged, to a file of their own (``tasks.failed.jsonl``) so they can be fixed
and sent again, and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .errors import CloudTasksError, ValidationError

__all__ = ["add_enqueue_command", "run_enqueue"]


def add_enqueue_command(commands: Any) -> None:
    parser = commands.add_parser("enqueue", help="create the tasks of a JSONL file (one task spec per line)")
    parser.add_argument("--queue", required=True, help="the queue id")
    parser.add_argument("--file", required=True, type=Path, help="the JSONL file ('-' for standard input)")
    parser.add_argument(
        "--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT"), help="default: $GOOGLE_CLOUD_PROJECT"
    )
    parser.add_argument(
        "--location", default=os.environ.get("CLOUDTASKS_LOCATION"), help="default: $CLOUDTASKS_LOCATION"
    )
    parser.add_argument(
        "--emulator-host",
        default=None,
        help="the emulator's gRPC address (default: $CLOUDTASKS_EMULATOR_HOST)",
    )
    parser.add_argument(
        "--failed", type=Path, default=None, help="where failed lines go (default: FILE.failed.jsonl)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="BatchCreateTasks calls at a time (default 4)"
    )
    parser.set_defaults(run=run_enqueue)


def run_enqueue(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the command; 0 when every line became a task, 1 when some failed, 2 for a usage problem."""
    from .client import CloudTasks

    try:
        lines = _read_lines(args.file)
        client = CloudTasks(args.project, args.location, emulator_host=args.emulator_host)
        queue = client.queue(args.queue)
    except (OSError, CloudTasksError) as exc:
        print(f"cloudtasks-kit enqueue: {exc}", file=err)
        return 2
    parsed: list[tuple[int, Any]] = []
    failed: list[tuple[int, CloudTasksError | None]] = []
    for number, line in enumerate(lines):
        try:
            parsed.append((number, json.loads(line)))
        except ValueError as exc:
            failed.append((number, ValidationError("line", line[:60], f"is not JSON ({exc})")))
    bar = _ProgressBar(len(parsed), err)
    started = time.monotonic()
    with client:
        results = queue.create_tasks(
            [spec for _, spec in parsed], concurrency=args.concurrency, on_progress=bar.update
        )
    bar.close()
    failed = sorted(failed + [(parsed[r.index][0], r.error) for r in results if not r.ok], key=lambda f: f[0])
    elapsed = time.monotonic() - started
    print(
        f"{len(lines) - len(failed)} of {len(lines)} tasks created in {queue.name} ({elapsed:.1f} s)",
        file=out,
    )
    if not failed:
        return 0
    failed_path = args.failed or _default_failed_path(args.file)
    with open(failed_path, "w", encoding="utf-8") as handle:
        for index, _ in failed:
            handle.write(lines[index] + "\n")
    print(f"{len(failed)} failed; their lines are in {failed_path}:", file=out)
    for index, error in failed[:20]:
        print(f"  line {index + 1}: {error}", file=out)
    if len(failed) > 20:
        print(f"  ... and {len(failed) - 20} more", file=out)
    return 1


def _read_lines(path: Path) -> list[str]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _default_failed_path(path: Path) -> Path:
    if str(path) == "-":
        return Path("tasks.failed.jsonl")
    return path.with_name(path.name.removesuffix(".jsonl") + ".failed.jsonl")


class _ProgressBar:
    """``[#########.........] 4500/10000`` on a terminal; a line per tenth otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.tty = stream.isatty()
        self._shown_tenths = -1

    def update(self, done: int, total: int) -> None:
        if self.tty:
            filled = self.WIDTH * done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}")
            self.stream.flush()
            return
        tenths = 10 * done // self.total
        if tenths != self._shown_tenths:
            self._shown_tenths = tenths
            print(f"{done}/{total} tasks", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
