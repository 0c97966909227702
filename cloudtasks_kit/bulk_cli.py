"""``cloudtasks-kit enqueue --queue Q --file tasks.jsonl``: bulk enqueue from a file of task specs.

Each line is one :class:`~cloudtasks_kit.TaskSpec` as JSON, e.g.
``{"url": "https://worker.example.com/send", "json": {"to": "ada@example.com"}, "dedup_key": "w-1"}``
(bytes bodies in base64, durations in seconds). Blank lines are skipped but counted, so line numbers are
the file's. It checks the queue first, shows a progress bar and prints a summary.

Running a file again resumes it: a line whose task already exists (its ``task_id`` or ``dedup_key`` was
created before) is "already there", done, not failed. Lines that fail are written, unchanged, to a file of
their own (``tasks.failed.jsonl``) so they can be fixed and sent again, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import AlreadyExists, CloudTasksError, NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from .client import CloudTasks, QueueHandle

__all__ = ["add_enqueue_command", "run_enqueue"]

EXIT_FAILED = 1
EXIT_USAGE = 2
SHOWN_ERRORS = 20


def add_enqueue_command(commands: Any) -> None:
    """Add ``enqueue`` to the ``cloudtasks-kit`` subcommands."""
    parser = commands.add_parser("enqueue", help="create the tasks of a JSONL file (one task spec per line)")
    parser.add_argument("--queue", required=True, help="the queue id")
    parser.add_argument("--file", required=True, type=Path, help="the JSONL file ('-' for standard input)")
    parser.add_argument(
        "--project",
        default=os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT"),
        help="default: $GOOGLE_CLOUD_PROJECT",
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
        "--concurrency",
        type=_concurrency,
        default=4,
        help="BatchCreateTasks calls at a time (1 to 100, default 4)",
    )
    parser.set_defaults(run=run_enqueue)


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100, got {value}")
    return value


@dataclass(frozen=True)
class Line:
    """One non-blank line of the file: its 1-based number in the file, its text and its parsed spec."""

    number: int
    text: str
    spec: Any = None


def run_enqueue(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command; 0 when every line is created or already there, 1 when some failed, 2 for usage."""
    # Looked up now, not at import: tests and callers may have replaced the standard streams since.
    out, err = out or sys.stdout, err or sys.stderr
    problem = _check_arguments(args)
    if problem:
        return _fail(err, problem, EXIT_USAGE)
    try:
        lines = _read_lines(args.file)
    except OSError as exc:
        return _fail(err, f"cannot read {args.file}: {exc.strerror or exc}", EXIT_USAGE)
    except UnicodeDecodeError as exc:
        return _fail(err, f"{args.file} is not UTF-8 text ({exc.reason})", EXIT_USAGE)

    try:
        client = _client(args)
    except CloudTasksError as exc:
        return _fail(err, str(exc), EXIT_USAGE)
    except Exception as exc:
        if _is_missing_credentials(exc):
            return _fail(err, _NO_CREDENTIALS, EXIT_FAILED)
        raise
    with client:
        queue = client.queue(args.queue)
        problem = _check_queue(queue, args)
        if problem:
            return _fail(err, problem, EXIT_FAILED)
        return _enqueue(queue, lines, args, out, err)


def _check_arguments(args: argparse.Namespace) -> str | None:
    # Said in the command's own words (--project), not the library's (project=...).
    from . import rules

    if not args.project:
        return "no project: pass --project PROJECT or set GOOGLE_CLOUD_PROJECT"
    if not args.location:
        return "no location: pass --location LOCATION (e.g. us-central1) or set CLOUDTASKS_LOCATION"
    for flag, value, check in (
        ("--project", args.project, rules.check_project_id),
        ("--location", args.location, rules.check_location_id),
        ("--queue", args.queue, rules.check_queue_id),
    ):
        try:
            check(value)
        except ValidationError as exc:
            return f"{flag} {exc.value!r} {exc.rule}"
    return None


def _client(args: argparse.Namespace) -> CloudTasks:
    from .client import CloudTasks

    return CloudTasks(args.project, args.location, emulator_host=args.emulator_host)


_NO_CREDENTIALS = (
    "no Google credentials found: run 'gcloud auth application-default login', or set "
    "GOOGLE_APPLICATION_CREDENTIALS, or pass --emulator-host for the local emulator"
)


def _is_missing_credentials(exc: BaseException | None) -> bool:
    """Whether google-auth found no credentials, at any depth of ``__cause__``."""
    from google.auth.exceptions import DefaultCredentialsError

    while exc is not None:
        if isinstance(exc, DefaultCredentialsError):
            return True
        exc = exc.__cause__
    return False


def _check_queue(queue: QueueHandle, args: argparse.Namespace) -> str | None:
    """Why no line can be created (no credentials, no queue), said once; None to go ahead."""
    try:
        queue.get()
    except NotFound:
        return (
            f"queue {queue.name} does not exist: create it "
            f"(gcloud tasks queues create {queue.id} --location={args.location}), "
            "or check --project, --location and --queue"
        )
    except PermissionDenied:
        return None  # an enqueuer may create tasks without being allowed to read the queue: go ahead
    except CloudTasksError as exc:
        if _is_missing_credentials(exc):
            return _NO_CREDENTIALS
        return f"cannot reach the queue {queue.name}: {exc}"
    except Exception as exc:  # google-auth raises before the kit sees the call when it finds no credentials
        if _is_missing_credentials(exc):
            return _NO_CREDENTIALS
        raise
    return None


def _enqueue(
    queue: QueueHandle, lines: list[Line], args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    failed: dict[int, str] = {}  # line number -> why
    sending: list[Line] = []
    first_with_id: dict[str, int] = {}
    for raw in lines:
        spec, problem = parse_line(raw.text)
        if problem is not None:
            failed[raw.number] = problem
            continue
        line = Line(raw.number, raw.text, spec)
        task_id = _task_id(line.spec)
        if task_id is not None and task_id in first_with_id:
            # Sent, it would come back ALREADY_EXISTS and pass for "already there": it is a mistake in the file.
            failed[line.number] = f"the same task id as line {first_with_id[task_id]}"
            continue
        if task_id is not None:
            first_with_id[task_id] = line.number
        sending.append(line)

    bar = _ProgressBar(len(sending), err)
    started = time.monotonic()
    results = queue.create_tasks(
        [line.spec for line in sending], concurrency=args.concurrency, on_progress=bar.update
    )
    bar.close()
    elapsed = time.monotonic() - started

    created = already = unconfirmed = 0
    for result in results:
        line = sending[result.index]
        if result.ok and result.task is not None and result.task.created_by_this_call is None:
            unconfirmed += 1  # found taken after a lost answer and not readable: made now or before
        elif result.ok:
            created += 1
        elif isinstance(result.error, AlreadyExists) and _task_id(line.spec) is not None:
            already += 1  # a line that made it on an earlier run: done
        elif _is_missing_credentials(result.error):
            return _fail(err, _NO_CREDENTIALS, EXIT_FAILED)
        else:
            failed[line.number] = _one_line(str(result.error))

    total = len(lines)
    print(
        f"{created + already + unconfirmed} of {total} lines done in {queue.name} ({elapsed:.1f} s): "
        f"{created} created, {already} already there"
        + (f", {unconfirmed} created now or before (could not be read back)" if unconfirmed else "")
        + (f", {len(failed)} failed" if failed else ""),
        file=out,
    )
    if not failed:
        return 0
    _report_failures(lines, failed, args, out)
    return EXIT_FAILED


MAX_DEPTH = 64
"""The deepest nesting a line may have. Python's JSON parser recurses, and a line of 100,000 ``[``
would exhaust the stack; no task spec needs more than a few levels (its ``json`` payload included)."""


def parse_line(text: str) -> tuple[Any, str | None]:
    """A line's JSON value, or why it cannot be one: one line of text naming the rule it breaks.

    It never raises: a line nested too deeply, a number too long to convert, or anything else hostile
    is that line's failure, and the rest of the file proceeds.
    """
    # Counting brackets is a C loop; only a line with many of them is scanned for its real depth.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = _nesting(text)
        if depth > MAX_DEPTH:
            return None, f"is nested {depth} levels deep; a task spec may be nested at most {MAX_DEPTH}"
    try:
        return json.loads(text), None
    except RecursionError:  # a guard, should the count above ever be wrong
        return None, f"is nested too deeply; a task spec may be nested at most {MAX_DEPTH} levels"
    except ValueError as exc:  # JSONDecodeError, and ints over Python's digit limit
        # The line's text is not repeated: it may hold a credential (an Authorization header), and the
        # line number already says which it is.
        return None, f"is not JSON: {_one_line(str(exc))}"


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, brackets inside strings not counted (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _one_line(text: str, limit: int = 300) -> str:
    """A message on one line, at most ``limit`` characters: a failure report stays a list of lines."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _task_id(spec: Any) -> str | None:
    """The id a line's task will have, or None when the service picks one (or the key is unusable,
    which the spec's own check reports)."""
    from .tasks import task_id_for_key

    if not isinstance(spec, dict):
        return None
    if isinstance(spec.get("task_id"), str):
        return str(spec["task_id"])
    if isinstance(spec.get("dedup_key"), str):
        try:
            return task_id_for_key(spec["dedup_key"])
        except UnicodeEncodeError:  # a lone surrogate: TaskSpec refuses it with a clear message
            return None
    return None


def _report_failures(
    lines: list[Line], failed: dict[int, str], args: argparse.Namespace, out: TextIO
) -> None:
    failed_path = args.failed or _default_failed_path(args.file)
    with open(failed_path, "w", encoding="utf-8") as handle:
        for line in lines:
            if line.number in failed:
                handle.write(line.text + "\n")
    print(f"{len(failed)} failed; their lines are in {failed_path}:", file=out)
    numbers = sorted(failed)
    for number in numbers[:SHOWN_ERRORS]:
        print(f"  line {number}: {failed[number]}", file=out)
    if len(numbers) > SHOWN_ERRORS:
        print(f"  ... and {len(numbers) - SHOWN_ERRORS} more", file=out)


def _fail(err: TextIO, message: str, status: int) -> int:
    print(f"cloudtasks-kit enqueue: {message}", file=err)
    return status


def _read_lines(path: Path) -> list[Line]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    return [Line(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


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
