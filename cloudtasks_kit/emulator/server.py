"""The emulator: one engine behind a gRPC server, a REST server and real HTTP delivery.

The engine belongs to one event loop, which runs REST and delivery; the gRPC server's threads reach it
as :mod:`~cloudtasks_kit.emulator.engine_access` describes.

Embedded (tests, the demo)::

    with Emulator() as emulator:               # 127.0.0.1, free ports
        tasks = emulator.client()              # CloudTasks over gRPC to it
        ...
        emulator.wait_for_attempts(3)

As a command: ``cloudtasks-kit emulator`` (see :func:`serve`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import rules
from ..drivers.history import DEFAULT_HISTORY_SIZE, History
from ..engine.attempts import AttemptRecord
from ..engine.clock import SystemClock
from ..engine.engine import Engine
from ..engine.faults import Faults
from ..engine.journal import NO_JOURNAL
from ..engine.tokens import TokenSigner

if TYPE_CHECKING:
    from ..aio import AsyncCloudTasks
    from ..client import CloudTasks
    from ..drivers.realtime import RealtimeDriver
    from .declared import QueueDeclaration
    from .persistence import SqliteJournal
    from .routes import Route

__all__ = ["Emulator"]

T = TypeVar("T")


class Emulator:
    """Cloud Tasks on your machine: the official clients talk to it unchanged, and it really delivers.

    Args:
        host: the address both servers listen on.
        port: the gRPC port (0: a free one).
        rest_port: the REST port (0: a free one).
        limits: the configurable service limits.
        signer: the key that signs OIDC tokens (a new one by default).
        seed: seeds generated task ids.
        history: how many attempts :attr:`attempts` keeps (None: every one).
        data_dir: keep queues, tasks and tombstones in this directory (made if missing) and start from
            what it holds: a restart, even a killed process, loses no acknowledged change. None: in
            memory only.
        queues: queues to have from the start (see :mod:`cloudtasks_kit.emulator.declared`): created if
            missing, given their declared settings if they have any.
        auto_create_queues: create a missing queue on the first task created in it (the service does not).
        dashboard: serve the web dashboard at the REST server's ``/`` (see docs/dashboard.md); its
            buttons act only when ``host`` is a loopback address.
        routes: send attempts for production URLs to local workers: ``{"https://worker-abc.a.run.app":
            "http://127.0.0.1:8080"}`` or ``FROM=TO`` strings (see :mod:`cloudtasks_kit.emulator.routes`).
            The task keeps its URL; only where the attempt is sent changes.
        allow_hosts: hosts to deliver to unrouted besides loopback addresses (names, IPs, ``*.domain``).
        app_engine_host: where App Engine tasks are delivered (``http://127.0.0.1:8080``); see
            :class:`~cloudtasks_kit.emulator.routes.Router`.
        allow_any_host: deliver to any host. By default an attempt for a host that is neither loopback,
            routed nor allowed fails without being sent, and the log says how to route or allow it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rest_port: int = 0,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        signer: TokenSigner | None = None,
        seed: int | None = None,
        history: int | None = DEFAULT_HISTORY_SIZE,
        data_dir: str | Path | None = None,
        queues: Iterable[QueueDeclaration] = (),
        auto_create_queues: bool = False,
        dashboard: bool = True,
        routes: Mapping[str, str] | Iterable[str | Route] = (),
        allow_hosts: Iterable[str] = (),
        allow_any_host: bool = False,
        app_engine_host: str | None = None,
    ) -> None:
        from .routes import Router

        # Checked first: a bad route must not leave a data directory open.
        self.router = Router(
            routes, allow_hosts=allow_hosts, allow_any_host=allow_any_host, app_engine_host=app_engine_host
        )
        """Where attempts go: the routes and the allowed hosts."""
        self.host = host
        self._dashboard = dashboard
        self._ports = (port, rest_port)
        self.engine = Engine(
            SystemClock(),
            limits=limits,
            signer=signer or TokenSigner(),
            seed=seed,
            auto_create_queues=auto_create_queues,
        )
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._store: SqliteJournal | None = None
        self.restored = (0, 0)
        """How many queues and tasks came back from the data directory."""
        if self.data_dir is not None:
            from .persistence import open_data_dir

            self._store, *counts = open_data_dir(self.engine, self.data_dir)
            self.restored = (counts[0], counts[1])
        self.declared: list[tuple[str, str]] = []
        """The declared queues and what starting did to each (created, updated or kept)."""
        if queues:
            from .declared import declare_queues

            try:
                self.declared = declare_queues(self.engine, queues)
            except BaseException:
                self.close()
                raise
        self.faults: Faults = self.engine.faults
        self.port = 0
        self.rest_port = 0
        self.attempts = History(history)
        """The attempts made, oldest first (the last ``history`` of them)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: Callable[[float], Any] | None = None
        self._driver: RealtimeDriver | None = None

    @property
    def state_description(self) -> str:
        """Where the state is kept, for the start-up line."""
        if self._store is None:
            return "in memory (pass --data-dir to keep it across restarts)"
        queues, tasks = self.restored
        return f"{self._store.path} ({queues} queues and {tasks} tasks restored)"

    def close(self) -> None:
        """Close the data directory's database (after :meth:`stop`; stopping does it too)."""
        if self._store is not None:
            self.engine.journal = NO_JOURNAL  # the engine stays usable (in memory) once the store is shut
            self._store.close()
            self._store = None

    # Addresses.

    @property
    def grpc_address(self) -> str:
        """``host:port`` for ``CLOUDTASKS_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    @property
    def rest_address(self) -> str:
        """``host:port`` of the REST server (``CLOUDTASKS_EMULATOR_REST_HOST``)."""
        return f"{self.host}:{self.rest_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.rest_address}"

    @property
    def dashboard_url(self) -> str | None:
        """The web dashboard's address (None when it is off)."""
        return f"{self.rest_url}/" if self._dashboard else None

    @property
    def certs_url(self) -> str:
        """Where the certificates of the emulator's OIDC tokens are (``{kid: PEM}``)."""
        return f"{self.rest_url}/certs"

    def environment(self) -> dict[str, str]:
        """The environment variables that point the kit at this emulator."""
        return {
            "CLOUDTASKS_EMULATOR_HOST": self.grpc_address,
            "CLOUDTASKS_EMULATOR_REST_HOST": self.rest_address,
        }

    def firebase_environment(self) -> dict[str, str]:
        """The variable that points firebase-admin's task queues at this emulator's REST port (where it
        speaks their dialect: see :mod:`cloudtasks_kit.emulator.firebase`). The kit never reads it."""
        return {"CLOUD_TASKS_EMULATOR_HOST": self.rest_address}

    # Running on the current event loop.

    async def start_async(self) -> None:
        """Start both servers and delivery on the running loop.

        On a loop the emulator did not make (:meth:`start` and the command make their own), the gRPC
        server's threads hand every call to the loop, which costs a thread switch per call."""
        from aiohttp import web

        from ..drivers.realtime import RealtimeDriver
        from .grpc_server import start_grpc_server
        from .rest_server import make_rest_app

        grpc_server, self.port = await start_grpc_server(self.engine, self.host, self._ports[0])
        max_body = self.engine.limits.max_task_bytes * 2 + 64 * 1024
        routes = None
        if self._dashboard:
            try:
                from .dashboard import Dashboard, is_loopback
            except ImportError as exc:  # Jinja2 missing (an older install of the extra): serve the API alone
                logging.getLogger("cloudtasks_kit.emulator").warning("no dashboard: %s", exc)
                self._dashboard = False
            else:
                routes = Dashboard(self.engine, self.attempts, writable=is_loopback(self.host)).add_routes
        app = make_rest_app(self.engine, max_body=max_body, routes=routes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._ports[1])
        await site.start()
        self.rest_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        driver = RealtimeDriver(self.engine, on_attempt=self.attempts.append, resolve=self.router.resolve)
        self._driver = driver
        delivering = asyncio.create_task(driver.run())

        async def stop(grace: float) -> None:
            # Stop accepting calls first, then let running attempts finish within the grace period:
            # an attempt cut short is not finished, so its task is simply due again at the next start.
            await runner.cleanup()
            await grpc_server.stop(min(grace, 0.5))
            await driver.drain(grace)
            try:
                await asyncio.wait_for(asyncio.shield(delivering), 5)
            except asyncio.TimeoutError:
                delivering.cancel()
            await asyncio.gather(delivering, return_exceptions=True)
            self.close()

        self._stop = stop

    async def stop_async(self, grace: float = 0.0) -> None:
        """Stop serving; attempts still running after ``grace`` seconds are abandoned (due again later)."""
        if self._stop is not None:
            stop, self._stop = self._stop, None
            await stop(grace)
        else:
            self.close()

    @property
    def in_flight(self) -> int:
        """Attempts being delivered right now."""
        return 0 if self._driver is None else self._driver.in_flight

    @property
    def deliveries(self) -> History:
        """The former name of :attr:`attempts`."""
        return self.attempts

    # Running in a background thread.

    def start(self) -> Emulator:
        """Start in a background thread with its own event loop; returns once both servers listen."""
        from .engine_access import new_loop

        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        loop = new_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def main() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                try:
                    await self.start_async()
                except BaseException as exc:
                    started.set_exception(exc)
                    raise
                started.set_result(None)

            loop.run_until_complete(boot())
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name="cloudtasks-kit-emulator", daemon=True)
        self._thread.start()
        try:
            started.result(timeout=30)
        except BaseException:
            self._thread.join(timeout=5)
            self._thread = None
            raise
        return self

    def stop(self) -> None:
        """Stop the servers and delivery, and the background thread."""
        if self._thread is None or self._loop is None:
            self.close()
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def run(self, fn: Callable[[Engine], T]) -> T:
        """Run ``fn(engine)`` on the emulator's loop and return its result (the engine is not thread-safe)."""
        if self._loop is None or self._thread is None:
            return fn(self.engine)

        async def call() -> T:
            return fn(self.engine)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def wait_for_attempts(self, count: int, *, timeout: float = 10.0) -> list[AttemptRecord]:
        """Block until at least ``count`` attempts have been made in all; returns those kept."""
        deadline = time.monotonic() + timeout
        history = self.attempts
        with history.changed:
            while history.total < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{history.total} of {count} attempts after {timeout} s")
                history.changed.wait(left)
        return list(history)

    def wait_for_deliveries(self, count: int, *, timeout: float = 10.0) -> list[AttemptRecord]:
        """The former name of :meth:`wait_for_attempts`."""
        return self.wait_for_attempts(count, timeout=timeout)

    # Clients.

    def client(
        self,
        project: str = "local-project",
        location: str = "us-central1",
        *,
        transport: str = "grpc",
        **options: Any,
    ) -> CloudTasks:
        """A :class:`~cloudtasks_kit.CloudTasks` talking to this emulator (``transport``: grpc or rest)."""
        from ..client import CloudTasks
        from ..transports.grpc import GrpcTransport
        from ..transports.rest import RestTransport

        kind = {"grpc": GrpcTransport, "rest": RestTransport}[transport]
        return CloudTasks(
            project,
            location,
            transport=kind(emulator_host=self.grpc_address, emulator_rest_host=self.rest_address),
            **options,
        )

    def async_client(
        self, project: str = "local-project", location: str = "us-central1", **options: Any
    ) -> AsyncCloudTasks:
        """An :class:`~cloudtasks_kit.AsyncCloudTasks` talking to this emulator over gRPC."""
        from ..aio import AsyncCloudTasks
        from ..transports.grpc import AsyncGrpcTransport

        transport = AsyncGrpcTransport(emulator_host=self.grpc_address, emulator_rest_host=self.rest_address)
        return AsyncCloudTasks(project, location, transport=transport, **options)
