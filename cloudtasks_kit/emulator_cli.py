"""``cloudtasks-kit emulator``: the local emulator as a command you can leave running all day.

It keeps its state in a data directory if given one (``--data-dir``), has the declared queues ready at
start (``--queue``, ``--config``), and on SIGTERM or Ctrl-C stops accepting calls, lets running
deliveries finish for up to ``--grace`` seconds, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import rules

if TYPE_CHECKING:
    from .emulator.routes import Route

__all__ = ["add_emulator_command", "run_emulator"]

_EPILOG = """\
state:
  Without --data-dir everything is in memory and gone when the emulator stops. With it, queues, tasks
  (with their retry counts) and recently used names are kept in DIR/cloudtasks.sqlite3; each change is
  committed before the call that made it answers, so a restart, even after kill -9, loses nothing that
  was acknowledged. A delivery cut off by the stop is simply due again.

declared queues:
  --queue emails --queue projects/p/locations/europe-west1/queues/reports
  --config emulator.toml, for example:

    project = "local-project"
    location = "us-central1"

    [queues.emails]
    rate_limits = { max_dispatches_per_second = 5, max_concurrent_dispatches = 2 }
    retry_config = { max_attempts = 5, min_backoff = 1, max_backoff = 60 }

    [queues.emails.http_target]
    uri_override = { scheme = "http", host = "127.0.0.1", port = 8000, path = "/tasks/email" }

  A declared queue is created if missing; one with settings gets exactly those settings at each start.

routes and allowed hosts:
  --route https://worker-abc.a.run.app=http://127.0.0.1:8080    (repeatable; or a [routes] table)
  Attempts for tasks made for production URLs go to your local worker: scheme, host and port (and a
  path prefix, if the route names one) are rewritten when the attempt is sent; the task keeps its URL
  in the API, and its OIDC token keeps the task's audience (configure your handler with it). By
  default the emulator delivers only to loopback addresses and routed hosts; an attempt for any other
  host fails without being sent, and the log says so once per host. --allow-host HOST (repeatable;
  *.domain for its subdomains) or --allow-any-host lift that.

firebase-admin task queues:
  export CLOUD_TASKS_EMULATOR_HOST=127.0.0.1:8124   (the REST port; firebase-admin's own variable)
  functions.task_queue("fn").enqueue(...) then creates real tasks here, delivered to
  https://LOCATION-PROJECT.cloudfunctions.net/fn unless routed, e.g.
  --route https://us-central1-my-project.cloudfunctions.net=http://127.0.0.1:5001/my-project/us-central1
  The queue must exist: --queue fn, or --auto-create-queues.

See docs/local-development.md.
"""


def add_emulator_command(commands: Any) -> None:
    """Add ``emulator`` to the ``cloudtasks-kit`` subcommands."""
    from .cli import port_number

    parser = commands.add_parser(
        "emulator",
        help="run the local emulator (gRPC + REST, real HTTP delivery)",
        description="Run Cloud Tasks locally: the gRPC and REST APIs, delivering tasks over real HTTP.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8123, help="gRPC port (default 8123; 0 picks one)"
    )
    parser.add_argument(
        "--rest-port", type=port_number, default=8124, help="REST port (default 8124; 0 picks one)"
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="do not log each delivery")
    verbosity.add_argument(
        "--debug",
        action="store_true",
        help="log every delivery in full even when busy (by default, past 50 lines in 5 s a summary "
        "line stands for the rest)",
    )
    parser.add_argument(
        "--no-dashboard",
        dest="dashboard",
        action="store_false",
        help="do not serve the web dashboard at the REST port's / (read-only unless --host is loopback)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep queues, tasks and tombstones in DIR across restarts (default: in memory only)",
    )
    parser.add_argument(
        "--grace",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, let running deliveries finish for this long (default 5)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME",
        help="have this queue at start: a short id or projects/P/locations/L/queues/Q (repeatable)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="a TOML file of queues with their settings"
    )
    parser.add_argument(
        "--project", help="the project of short queue ids (default: the config's, else local-project)"
    )
    parser.add_argument(
        "--location", help="the location of short queue ids (default: the config's, else us-central1)"
    )
    parser.add_argument(
        "--auto-create-queues",
        action="store_true",
        default=None,
        help="create a missing queue on the first task created in it (the service never does)",
    )
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="send attempts for the production base URL FROM to the local URL TO, e.g. "
        "https://worker-abc.a.run.app=http://127.0.0.1:8080 (repeatable)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also deliver to HOST unrouted (default: loopback addresses and routed hosts only; "
        "*.domain for its subdomains; repeatable)",
    )
    parser.add_argument(
        "--app-engine-host",
        default=os.environ.get("CLOUDTASKS_EMULATOR_APP_ENGINE_HOST") or None,
        metavar="URL",
        help="deliver App Engine tasks to this local server, e.g. http://127.0.0.1:8080 "
        "(default: $CLOUDTASKS_EMULATOR_APP_ENGINE_HOST; unset: App Engine attempts are refused)",
    )
    parser.add_argument(
        "--allow-any-host",
        action="store_true",
        default=None,
        help="deliver to any host, even production ones (routes still apply)",
    )
    # The windows the service keeps names taken; faithful by default, shorter to try reuse locally.
    parser.add_argument(
        "--task-tombstone",
        type=_duration,
        default=rules.DEFAULT_LIMITS.task_tombstone,
        metavar="DURATION",
        help="how long a deleted or finished task's id stays taken (default 1h; e.g. 90s, 5m)",
    )
    parser.add_argument(
        "--queue-tombstone",
        type=_duration,
        default=rules.DEFAULT_LIMITS.queue_tombstone,
        metavar="DURATION",
        help="how long a deleted queue's name cannot be reused (default 3d; e.g. 10s, 2h)",
    )
    parser.set_defaults(run=run_emulator)


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is out of range (0 to 3600 seconds)")
    return value


def _routes(specs: list[str], table: tuple[tuple[str, str], ...]) -> list[Route]:
    """The config file's routes, then ``--route``'s; a ``--route`` from the same source wins."""
    from .emulator.routes import Route, RouteError

    chosen: dict[tuple[str, str, int, str], Route] = {}
    for source, target in table:
        route = Route(source, target)
        chosen[route.identity] = route
    given: set[tuple[str, str, int, str]] = set()
    for spec in specs:
        route = Route.parse(spec)
        key = route.identity
        if key in given:
            raise RouteError(f"--route {spec!r}: {route.source} is routed twice")
        given.add(key)
        chosen[key] = route
    return list(chosen.values())


def _run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` on the emulator's own kind of loop, whose gRPC threads reach the engine without a
    hop while it is idle (emulator/engine_access.py); Python 3.10 has no loop factory, and hops."""
    if sys.version_info >= (3, 11):
        from .emulator.engine_access import new_loop

        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)


def run_emulator(args: argparse.Namespace) -> int:
    """Run the emulator until SIGTERM or SIGINT; returns the exit status."""
    from .cli import EXIT_FAILED, EXIT_USAGE, fail, missing_emulator_extra, taken_port

    problem = missing_emulator_extra()
    if problem:
        return fail("emulator", problem, EXIT_USAGE)
    from .emulator import Emulator
    from .emulator.declared import (
        DEFAULT_LOCATION,
        DEFAULT_PROJECT,
        ConfigError,
        EmulatorConfig,
        load_config,
        merge,
        parse_config,
    )
    from .emulator.persistence import DataDirError
    from .emulator.routes import RouteError, Router

    try:
        config = EmulatorConfig()
        if args.config is not None:
            data = load_config(args.config)
            config = parse_config(data, source=str(args.config), project=args.project, location=args.location)
        project = args.project or config.project or DEFAULT_PROJECT
        location = args.location or config.location or DEFAULT_LOCATION
        declared = merge(args.queue, config, project=project, location=location)
        routes = _routes(args.route, config.routes)
        allow_hosts = [*config.allow_hosts, *args.allow_host]
        # every host checked before anything starts
        Router(routes, allow_hosts=allow_hosts, app_engine_host=args.app_engine_host)
    except (ConfigError, RouteError) as exc:
        return fail("emulator", str(exc), EXIT_USAGE)
    auto_create = bool(args.auto_create_queues or config.auto_create_queues)
    allow_any_host = bool(args.allow_any_host or config.allow_any_host)

    # Checked before starting: the servers report a taken port as a RuntimeError (gRPC) or OSError
    # (aiohttp) from deep inside, and a half-started emulator then complains again at exit.
    taken = taken_port(args.host, (args.port, args.rest_port))
    if taken:
        hint = "is another emulator running? Stop it, or pick free ports with --port and --rest-port (0: any)"
        return fail("emulator", f"{taken}: {hint}", EXIT_FAILED)

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s"
    )
    log = logging.getLogger("cloudtasks_kit.emulator")
    if args.debug:  # the kit's own loggers only: aiohttp's and grpc's debug output is not wanted here
        logging.getLogger("cloudtasks_kit").setLevel(logging.DEBUG)
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            rest_port=args.rest_port,
            data_dir=args.data_dir,
            limits=dataclasses.replace(
                rules.DEFAULT_LIMITS, task_tombstone=args.task_tombstone, queue_tombstone=args.queue_tombstone
            ),
            queues=declared,
            auto_create_queues=auto_create,
            dashboard=args.dashboard,
            routes=routes,
            allow_hosts=allow_hosts,
            allow_any_host=allow_any_host,
            app_engine_host=args.app_engine_host,
        )
    except DataDirError as exc:
        return fail("emulator", str(exc), EXIT_FAILED)
    except ConfigError as exc:
        return fail("emulator", str(exc), EXIT_FAILED)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await emulator.start_async()
        print(
            f"cloudtasks-kit emulator ready: gRPC {emulator.grpc_address} REST {emulator.rest_url} "
            f"(export CLOUDTASKS_EMULATOR_HOST={emulator.grpc_address} "
            f"CLOUDTASKS_EMULATOR_REST_HOST={emulator.rest_address}); state: {emulator.state_description}"
            + (f"; dashboard {emulator.dashboard_url}" if emulator.dashboard_url else ""),
            flush=True,
        )
        for name, what in emulator.declared:
            log.warning("queue %s %s", name, what)
        if auto_create:
            log.warning("queues are created on their first task (--auto-create-queues)")
        for line in emulator.router.describe():
            log.warning("%s", line)
        log.info("firebase-admin task queues: export CLOUD_TASKS_EMULATOR_HOST=%s", emulator.rest_address)
        await stop.wait()
        running = emulator.in_flight
        if running:
            print(f"cloudtasks-kit emulator stopping: {running} deliveries running (up to {args.grace:g} s)")
        await emulator.stop_async(grace=args.grace)

    try:
        _run(serve())
    except (OSError, RuntimeError) as exc:
        # A port taken between the check and the start (a race) lands here.
        emulator.close()
        return fail("emulator", f"could not start: {exc}", EXIT_FAILED)
    print("cloudtasks-kit emulator stopped", flush=True)
    return 0
