"""The ``cloudtasks-kit`` command: ``emulator``, ``demo`` and ``enqueue``.

Every problem ends as one line on standard error saying what happened and what to do, never a
traceback. Exit status: 0 done, 1 the work failed (a port in use, tasks not created), 2 a usage problem
(a bad argument, a missing file, a missing extra).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "fail", "main", "missing_emulator_extra", "port_number", "taken_port"]

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

    from .emulator_cli import add_emulator_command

    add_emulator_command(commands)

    demo = commands.add_parser(
        "demo", help="run the demo: emulator, worker and four tasks, no Google account"
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")

    from .bulk_cli import add_enqueue_command

    add_enqueue_command(commands)

    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return int(args.run(args))


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535; 0 picks a free one)")
    return port


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


if __name__ == "__main__":
    sys.exit(main())
