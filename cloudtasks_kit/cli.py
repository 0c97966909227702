"""The ``cloudtasks-kit`` command: ``emulator``, ``demo`` and ``enqueue``.

Every problem ends as one line on standard error saying what happened and what to do, never a
traceback. Exit status: 0 done, 1 the work failed (a port in use, tasks not created), 2 a usage problem
(a bad argument, a missing file, a missing extra).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta

from . import rules
from ._version import __version__

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "fail", "main", "missing_emulator_extra"]

EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(command: str, message: str, status: int) -> int:
    """Print ``cloudtasks-kit COMMAND: MESSAGE`` on standard error; returns ``status``."""
    print(f"cloudtasks-kit {command}: {message}", file=sys.stderr)
    return status


def missing_emulator_extra() -> str | None:
    """Why the ``emulator`` extra is unusable, or None when aiohttp imports."""
    # The emulator's package imports without aiohttp (it is loaded only when a server starts), so an
    # ImportError around ``from .emulator import Emulator`` never fired: ask for aiohttp itself.
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return (
            "the emulator needs the 'emulator' extra (aiohttp), which is not installed: "
            "pip install 'cloudtasks-kit[emulator]'"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="cloudtasks-kit", description="Google Cloud Tasks, the Pythonic way."
    )
    parser.add_argument("--version", action="version", version=f"cloudtasks-kit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser(
        "emulator", help="run the local emulator (gRPC + REST, real HTTP delivery)"
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=_port, default=8123, help="gRPC port (default 8123; 0 picks one)")
    emulator.add_argument(
        "--rest-port", type=_port, default=8124, help="REST port (default 8124; 0 picks one)"
    )
    emulator.add_argument("--quiet", action="store_true", help="do not log each delivery")
    # The windows the service keeps names taken; faithful by default, shorter to try reuse locally.
    emulator.add_argument(
        "--task-tombstone",
        type=_duration,
        default=rules.DEFAULT_LIMITS.task_tombstone,
        metavar="DURATION",
        help="how long a deleted or finished task's id stays taken (default 1h; e.g. 90s, 5m)",
    )
    emulator.add_argument(
        "--queue-tombstone",
        type=_duration,
        default=rules.DEFAULT_LIMITS.queue_tombstone,
        metavar="DURATION",
        help="how long a deleted queue's name cannot be reused (default 3d; e.g. 10s, 2h)",
    )

    demo = commands.add_parser(
        "demo", help="run the demo: emulator, worker and four tasks, no Google account"
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")

    from .bulk_cli import add_enqueue_command

    add_enqueue_command(commands)

    args = parser.parse_args(argv)
    if args.command == "emulator":
        return _emulator(args)
    if args.command == "demo":
        return _demo(args)
    return int(args.run(args))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535; 0 picks a free one)")
    return port


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """``90``, ``90s``, ``5m``, ``1h`` or ``3d``: a non-negative duration."""
    number, unit = text.strip(), ""
    if number[-1:].lower() in _UNITS:
        number, unit = number[:-1], number[-1].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (a number of seconds, or with a unit: 90s, 5m, 1h, 3d)"
        )
    return timedelta(seconds=value * _UNITS[unit])


def _demo(args: argparse.Namespace) -> int:
    problem = missing_emulator_extra()
    if problem:
        return fail("demo", problem, EXIT_USAGE)
    from .demo import run_demo

    return run_demo(timeout=args.timeout)


def taken_port(host: str, ports: Sequence[int]) -> str | None:
    """A message naming the first of ``ports`` something already listens on, or None."""
    for port in ports:
        if port == 0:
            continue
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        # The servers set SO_REUSEADDR too: a port in TIME_WAIT is free for them, and so it is here.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
        finally:
            probe.close()
    return None


def _emulator(args: argparse.Namespace) -> int:
    problem = missing_emulator_extra()
    if problem:
        return fail("emulator", problem, EXIT_USAGE)
    # Checked before starting: the servers report a taken port as a RuntimeError (gRPC) or OSError
    # (aiohttp) from deep inside, and a half-started emulator then complains again at exit.
    taken = taken_port(args.host, (args.port, args.rest_port))
    if taken:
        hint = "is another emulator running? Stop it, or pick free ports with --port and --rest-port (0: any)"
        return fail("emulator", f"{taken}: {hint}", EXIT_FAILED)
    from .emulator import Emulator

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s"
    )
    limits = dataclasses.replace(
        rules.DEFAULT_LIMITS, task_tombstone=args.task_tombstone, queue_tombstone=args.queue_tombstone
    )
    emulator = Emulator(host=args.host, port=args.port, rest_port=args.rest_port, limits=limits)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await emulator.start_async()
        print(
            f"cloudtasks-kit emulator ready: gRPC {emulator.grpc_address} REST {emulator.rest_url} "
            f"(export CLOUDTASKS_EMULATOR_HOST={emulator.grpc_address} "
            f"CLOUDTASKS_EMULATOR_REST_HOST={emulator.rest_address})",
            flush=True,
        )
        await stop.wait()
        await emulator.stop_async()

    try:
        asyncio.run(serve())
    except (OSError, RuntimeError) as exc:
        # A port taken between the check and the start (a race) lands here.
        return fail("emulator", f"could not start: {exc}", EXIT_FAILED)
    print("cloudtasks-kit emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
