"""Shared fixtures: the fake, one emulator per test session, and the contract-suite backends.

Each test on the shared emulator gets its own project id, so tests never see each other's queues.

Live mode: ``--cloudtasks-live=projects/P/locations/L`` adds the ``live-grpc`` and ``live-rest`` backends
(and ``live`` for delivery), which run the contract tests against real Cloud Tasks with the user's
credentials, under a unique queue prefix, deleting those queues afterwards. Tests whose handler must be
reached by the service need ``--cloudtasks-live-url`` (a public URL forwarded to the local receiver on
``--cloudtasks-live-listen``); without it they skip. ``--cloudtasks-live-endpoint`` talks plaintext gRPC
to another address instead of Google (REST: ``--cloudtasks-live-rest-endpoint``): that is how the mode
is tested here, against an emulator. ``--cloudtasks-record=PATH`` writes what every backend observed
(see ``tests/live_record.py``). See docs/fidelity.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cloudtasks_kit import CloudTasks
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.attempts import AttemptRecord as Delivery
from cloudtasks_kit.names import QueueName, parse_location_name
from cloudtasks_kit.transports.fake import FakeTransport

from .live_record import Observations, Recorder, RecordingTransport

# A handler answers (method, path, headers, body) with a status, or (status, headers).
Handler = Callable[[str, str, dict[str, str], bytes], Any]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cloudtasks", "contract suite against real Cloud Tasks")
    group.addoption(
        "--cloudtasks-live",
        metavar="projects/P/locations/L",
        help="also run the contract tests against Cloud Tasks in this location (your credentials)",
    )
    group.addoption(
        "--cloudtasks-live-url",
        metavar="URL",
        help="a public URL forwarded to the local receiver, for tests whose handler the service must reach",
    )
    group.addoption(
        "--cloudtasks-live-listen",
        type=int,
        default=0,
        metavar="PORT",
        help="the port the local receiver listens on (default: a free one)",
    )
    group.addoption(
        "--cloudtasks-live-endpoint",
        metavar="HOST:PORT",
        help="talk plaintext gRPC to this address instead of Google (to test the live mode on an emulator)",
    )
    group.addoption(
        "--cloudtasks-live-rest-endpoint",
        metavar="HOST:PORT",
        help="the REST address that goes with --cloudtasks-live-endpoint (default: its port + 1)",
    )
    group.addoption(
        "--cloudtasks-live-scale",
        type=float,
        default=1.0,
        help="multiply the durations of delivery tests on the live backend by this (default 1)",
    )
    group.addoption("--cloudtasks-record", metavar="PATH", help="write what each backend observed here")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--cloudtasks-record") and config.getoption("numprocesses", None):
        # Each xdist worker would write its own part over the others: the record needs one process.
        raise pytest.UsageError("--cloudtasks-record writes one file from one process: add -n0")


@pytest.fixture(scope="session")
def recorder(request: pytest.FixtureRequest) -> Iterator[Recorder | None]:
    path = request.config.getoption("--cloudtasks-record")
    if not path:
        yield None
        return
    recorder = Recorder(Path(path))
    yield recorder
    recorder.write()


def _case_name(request: pytest.FixtureRequest) -> str:
    """The test and its parameters other than the backend: the same case on every backend."""
    node = request.node
    name = f"{node.module.__name__.rsplit('.', 1)[-1]}::{node.originalname}"
    callspec = getattr(node, "callspec", None)
    if callspec is None:
        return name
    ids = callspec.id
    for key in ("backend", "delivery_backend"):
        value = callspec.params.get(key)
        if value is not None:  # its id is its value; drop it with the dash that joins it to the others
            ids = "-".join(part for part in _split_ids(ids, value) if part)
    return f"{name}[{ids}]" if ids else name


def _split_ids(ids: str, backend: str) -> list[str]:
    if ids == backend:
        return []
    if ids.startswith(backend + "-"):
        return [ids[len(backend) + 1 :]]
    head, _, tail = ids.partition("-" + backend)
    return [head, tail.removeprefix("-")]


def _record(request: pytest.FixtureRequest, harness: Harness) -> Observations | None:
    recorder: Recorder | None = request.getfixturevalue("recorder")
    if recorder is None:
        return None
    client = harness.client
    replacements = {client.parent: "{parent}", client.project: "{project}"}
    if harness.prefix:
        replacements[harness.prefix] = ""
    observations = recorder.start(_case_name(request), harness.kind, replacements)
    harness.observations = observations
    recording = RecordingTransport(client.transport, observations)
    if isinstance(client, _PrefixedCloudTasks):
        harness.client = _PrefixedCloudTasks(
            harness.prefix, client.project, client.location, transport=recording
        )
    else:
        harness.client = CloudTasks(client.project, client.location, transport=recording)
    return observations


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 that hands each request to the handler of its first path segment
    (``/<prefix>/rest``), with the prefix stripped; unknown prefixes get 404."""

    def __init__(self, port: int = 0) -> None:
        self.handlers: dict[str, Handler] = {}
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                _, prefix, rest = self.path.split("/", 2) if self.path.count("/") >= 2 else ("", "", "")
                handler = outer.handlers.get(prefix)
                headers = dict(self.headers.items())
                result = handler(self.command, "/" + rest, headers, body) if handler else 404
                status, headers = (result, {}) if isinstance(result, int) else result
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), RequestHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def local_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    server = LocalServer(request.config.getoption("--cloudtasks-live-listen") or 0)
    yield server
    server.close()


class Harness:
    """One backend of the contract suite: a client, a handler for deliveries, and a way to run the queue.

    ``scale`` multiplies every duration a delivery test uses: 1 on the fake's virtual time, small on the
    emulator's real time, so the same test checks the same schedule on both.
    """

    kind: str
    scale: float
    client: CloudTasks
    observations: Observations | None = None
    handled = False
    """Whether the test gave a handler: only then are its attempts part of what it observed."""
    prefix = ""
    """What the backend puts before each queue id a test names (the live backend's unique prefix)."""

    def queue_id(self, short: str) -> str:
        """The id of the queue a test calls ``short`` (``client.queue(short)``) on this backend."""
        return self.prefix + short

    def url(self, path: str) -> str:
        raise NotImplementedError

    def handle(self, handler: Handler) -> None:
        raise NotImplementedError

    def run_until_idle(self, timeout: float = 20.0) -> list[Delivery]:
        raise NotImplementedError

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Let attempts happen until at least ``count`` have been made; returns this test's deliveries."""
        raise NotImplementedError

    def verify_token(self, token: str, audience: str) -> Any:
        """``google.oauth2.id_token.verify_token`` with this backend's certificates."""
        raise NotImplementedError

    def engine(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(engine)`` where the backend's engine lives."""
        raise NotImplementedError

    def now(self) -> float:
        return self.client.transport.now()


class FakeHarness(Harness):
    kind = "fake"
    scale = 1.0

    def __init__(self, project: str) -> None:
        self.fake = FakeTransport()
        self.client = self.fake.client(project)

    def url(self, path: str) -> str:
        return "http://worker.test" + path

    def handle(self, handler: Handler) -> None:
        self.handled = True

        def call(dispatch: Any) -> Any:
            path = dispatch.url.split("worker.test", 1)[1]
            result = handler(dispatch.method, path, dispatch.headers, dispatch.body)
            if isinstance(result, int):
                return result
            from cloudtasks_kit.drivers.targets import TargetResponse

            return TargetResponse(result[0], result[1])

        self.fake.deliver_to(call)

    def run_until_idle(self, timeout: float = 20.0) -> list[Delivery]:
        self.fake.run_until_idle()
        return list(self.fake.deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        while len(self.fake.deliveries) < count:
            when = self.fake.engine.scheduler.next_due()
            assert when is not None, f"only {len(self.fake.deliveries)} of {count} deliveries can happen"
            self.fake.advance(max(0.0, when - self.fake.now()))
        return list(self.fake.deliveries)

    def verify_token(self, token: str, audience: str) -> Any:
        from google.oauth2 import id_token

        return id_token.verify_token(
            token, self.fake.certs_request(), audience, certs_url="https://fake.test/certs"
        )

    def engine(self, fn: Callable[[Any], Any]) -> Any:
        return fn(self.fake.engine)


class EmulatorHarness(Harness):
    scale = 0.005

    def __init__(self, emulator: Emulator, server: LocalServer, project: str, transport: str) -> None:
        self.kind = f"emulator-{transport}"
        self.emulator = emulator
        self.server = server
        self.project = project
        self.client = emulator.client(project, transport=transport)
        self._prefix = f"/{project}"

    def url(self, path: str) -> str:
        return self.server.url + self._prefix + path

    def handle(self, handler: Handler) -> None:
        self.handled = True
        self.server.handlers[self.project] = handler

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        wait_until(lambda: len(self._mine()) >= count, timeout)
        return self._mine()

    def verify_token(self, token: str, audience: str) -> Any:
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        return id_token.verify_token(token, Request(), audience, certs_url=self.emulator.certs_url)

    def engine(self, fn: Callable[[Any], Any]) -> Any:
        return self.emulator.run(fn)

    def _mine(self) -> list[Delivery]:
        marker = f"projects/{self.project}/"
        return [d for d in list(self.emulator.deliveries) if d.task_name.startswith(marker)]

    def run_until_idle(self, timeout: float = 20.0) -> list[Delivery]:
        marker = f"projects/{self.project}/"

        def pending(engine: Any) -> int:
            names = [n for n in engine.queue_names() if n.startswith(marker)]
            running = [n for n in names if engine.queue_pb(n).state == 1]
            return sum(len(engine.tasks_of(n)) for n in running)

        deadline = time.monotonic() + timeout
        while self.emulator.run(pending):
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks still pending after {timeout} s")
            time.sleep(0.01)
        return self._mine()


class _PrefixedCloudTasks(CloudTasks):
    """A client whose queue ids all start with ``prefix`` (the live backend's, unique per test)."""

    def __init__(self, prefix: str, *args: Any, **kwargs: Any) -> None:
        self.prefix = prefix
        super().__init__(*args, **kwargs)

    def _queue_id(self, queue_id: str) -> str:
        return super()._queue_id(self.prefix + queue_id)


class LiveHarness(Harness):
    """Real Cloud Tasks (or, with an endpoint, anything that speaks its API) as a contract-suite backend.

    Queues get a unique prefix and are all deleted at the end. The handler is the local receiver, which
    the service reaches through ``live_url``; without one, tests that need a handler skip.
    """

    def __init__(self, config: pytest.Config, server: LocalServer, transport: str) -> None:
        from cloudtasks_kit.transports.grpc import GrpcTransport
        from cloudtasks_kit.transports.rest import RestTransport

        self.kind = "live" if transport == "delivery" else f"live-{transport}"
        project, location = parse_location_name(config.getoption("--cloudtasks-live"))
        self.scale = float(config.getoption("--cloudtasks-live-scale"))
        self.prefix = f"ctk{uuid.uuid4().hex[:8]}-"
        self.server = server
        self._key = self.prefix.rstrip("-")
        endpoint = config.getoption("--cloudtasks-live-endpoint")
        rest_endpoint = config.getoption("--cloudtasks-live-rest-endpoint")
        if endpoint and not rest_endpoint:
            host, _, port = endpoint.rpartition(":")
            rest_endpoint = f"{host}:{int(port) + 1}"
        kind = RestTransport if transport == "rest" else GrpcTransport
        chosen = kind(emulator_host=endpoint, emulator_rest_host=rest_endpoint) if endpoint else kind()
        self.client = _PrefixedCloudTasks(self.prefix, project, location, transport=chosen)
        self._admin = self.client
        """The harness's own calls (polling, cleaning up) go here, never through a recording wrapper."""
        # An emulator standing in for the service reaches the local receiver directly.
        self._base = config.getoption("--cloudtasks-live-url") or (server.url if endpoint else None)
        self._certs_url = f"http://{rest_endpoint}/certs" if endpoint else None
        self._received: list[Delivery] = []
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        if self._base is None:
            pytest.skip("the service must reach this test's handler: give --cloudtasks-live-url")
        return f"{self._base.rstrip('/')}/{self._key}{path}"

    def handle(self, handler: Handler) -> None:
        if self._base is None:
            pytest.skip("the service must reach this test's handler: give --cloudtasks-live-url")
        self.handled = True

        def receive(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
            result = handler(method, path, headers, body)
            status = result if isinstance(result, int) else result[0]
            lowered = {k.lower(): v for k, v in headers.items()}
            queue = QueueName(self.client.project, self.client.location, lowered["x-cloudtasks-queuename"])
            record = Delivery(
                time=time.time(),
                task_name=f"{queue.path}/tasks/{lowered['x-cloudtasks-taskname']}",
                method=method,
                url=self.url(path),
                headers=headers,
                body=body,
                retry_count=int(lowered.get("x-cloudtasks-taskretrycount", "0")),
                status=status,
                error=None,
            )
            with self._lock:
                self._received.append(record)
            return result

        self.server.handlers[self._key] = receive

    def _timeout(self, timeout: float) -> float:
        # Durations are scaled for the emulator (0.005); the live backend runs them at its own scale.
        return timeout * max(1.0, self.scale / EmulatorHarness.scale)

    def run_until_idle(self, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + self._timeout(timeout)
        while self._pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks still pending after {self._timeout(timeout)} s")
            time.sleep(min(1.0, 0.05 + self.scale))
        return self.received()

    def _pending(self) -> int:
        pending = 0
        for queue in self._admin.list_queues():
            if queue.id.startswith(self.prefix) and queue.state.value == "RUNNING":
                pending += len(list(self._admin.queue(queue.id.removeprefix(self.prefix)).list_tasks()))
        return pending

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        wait_until(lambda: len(self.received()) >= count, self._timeout(timeout))
        return self.received()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)

    def verify_token(self, token: str, audience: str) -> Any:
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        if self._certs_url is None:
            return id_token.verify_oauth2_token(token, Request(), audience)
        return id_token.verify_token(token, Request(), audience, certs_url=self._certs_url)

    def engine(self, fn: Callable[[Any], Any]) -> Any:
        pytest.skip("reaches into the engine, which the live service does not have")

    def clean_up(self) -> None:
        """Delete every queue this test made (by prefix), whatever state the test left them in."""
        self.server.handlers.pop(self._key, None)
        try:
            for queue in list(self._admin.list_queues()):
                if queue.id.startswith(self.prefix):
                    # Already gone, or deleting it failed: keep cleaning up the rest.
                    with contextlib.suppress(Exception):
                        self._admin.queue(queue.id.removeprefix(self.prefix)).delete()
        finally:
            self._admin.close()


def _deliveries(harness: Harness) -> list[Delivery]:
    if isinstance(harness, FakeHarness):
        return list(harness.fake.deliveries)
    if isinstance(harness, EmulatorHarness):
        return harness._mine()
    if isinstance(harness, LiveHarness):
        return harness.received()
    return []


def _make(request: pytest.FixtureRequest, project: str, kind: str) -> Iterator[Harness]:
    """A backend of the given kind, recorded if asked, closed (and for live, cleaned up) afterwards."""
    harness: Harness
    if kind.startswith("live"):
        if not request.config.getoption("--cloudtasks-live"):
            pytest.skip("live Cloud Tasks: give --cloudtasks-live=projects/P/locations/L")
        server = request.getfixturevalue("local_server")
        harness = LiveHarness(request.config, server, kind.partition("-")[2] or "delivery")
    elif kind == "fake":
        harness = FakeHarness(project)
    else:
        emulator = request.getfixturevalue("emulator")
        server = request.getfixturevalue("local_server")
        harness = EmulatorHarness(emulator, server, project, kind.split("-", 1)[1])
    observations = _record(request, harness)
    try:
        yield harness
    finally:
        if observations is not None and harness.handled:
            for attempt in sorted(_deliveries(harness), key=lambda d: d.time):
                observations.attempt(attempt.status, attempt.headers)
        if isinstance(harness, LiveHarness):
            harness.clean_up()
        elif isinstance(harness, EmulatorHarness):
            harness.client.close()
            harness.server.handlers.pop(project, None)


BACKENDS = ["fake", "emulator-grpc", "emulator-rest", "live-grpc", "live-rest"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, project: str) -> Iterator[Harness]:
    """The contract suite's parameter: the same test on the fake and on the emulator (gRPC and REST), and
    on live Cloud Tasks with ``--cloudtasks-live``."""
    yield from _make(request, project, request.param)


@pytest.fixture(params=["fake", "emulator", "live"])
def delivery_backend(request: pytest.FixtureRequest, project: str) -> Iterator[Harness]:
    """Delivery does not depend on the API transport: the fake, the emulator over gRPC, and live."""
    kind = "emulator-grpc" if request.param == "emulator" else request.param
    yield from _make(request, project, kind)


@pytest.fixture
def ae_backend(backend: Harness) -> Harness:
    """``backend`` where App Engine tasks can be delivered: the fake and the emulator (live needs an App
    Engine app)."""
    if not isinstance(backend, (FakeHarness, EmulatorHarness)):
        pytest.skip("App Engine delivery needs an App Engine app")
    return backend


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
