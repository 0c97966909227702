"""The ``cloudtasks-kit`` command: ``emulator``, ``demo`` and ``enqueue``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="cloudtasks-kit", description="Google Cloud Tasks, the Pythonic way."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser(
        "emulator", help="run the local emulator (gRPC + REST, real HTTP delivery)"
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8123, help="gRPC port (default 8123; 0 picks one)")
    emulator.add_argument("--rest-port", type=int, default=8124, help="REST port (default 8124; 0 picks one)")
    emulator.add_argument("--quiet", action="store_true", help="do not log each delivery")

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
        from .demo import run_demo

        return run_demo(timeout=args.timeout)
    return int(args.run(args))


def _emulator(args: argparse.Namespace) -> int:
    try:
        from .emulator import Emulator
    except ImportError as exc:
        print(f"the emulator needs aiohttp: pip install 'cloudtasks-kit[emulator]' ({exc})", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s"
    )
    emulator = Emulator(host=args.host, port=args.port, rest_port=args.rest_port)

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
    except OSError as exc:
        print(f"cloudtasks-kit emulator: {exc}", file=sys.stderr)
        return 1
    print("cloudtasks-kit emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
