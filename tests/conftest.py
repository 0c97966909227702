"""Shared fixtures: the fake, one emulator per test session, and the contract-suite backends.

Each test on the shared emulator gets its own project id, so tests never see each other's queues.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cloudtasks_kit import CloudTasks
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.attempts import AttemptRecord as Delivery
from cloudtasks_kit.transports.fake import FakeTransport

# A handler answers (method, path, headers, body) with a status, or (status, headers).
Handler = Callable[[str, str, dict[str, str], bytes], Any]


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

    def __init__(self) -> None:
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
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


BACKENDS = ["fake", "emulator-grpc", "emulator-rest"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, project: str) -> Iterator[Harness]:
    """The contract suite's parameter: the same test on the fake and on the emulator (gRPC and REST)."""
    if request.param == "fake":
        yield FakeHarness(project)
        return
    emulator = request.getfixturevalue("emulator")
    server = request.getfixturevalue("local_server")
    harness = EmulatorHarness(emulator, server, project, request.param.split("-", 1)[1])
    yield harness
    harness.client.close()
    server.handlers.pop(project, None)


@pytest.fixture(params=["fake", "emulator"])
def delivery_backend(request: pytest.FixtureRequest, project: str) -> Iterator[Harness]:
    """Delivery does not depend on the API transport: the fake, and the emulator over gRPC."""
    if request.param == "fake":
        yield FakeHarness(project)
        return
    emulator = request.getfixturevalue("emulator")
    server = request.getfixturevalue("local_server")
    harness = EmulatorHarness(emulator, server, project, "grpc")
    yield harness
    harness.client.close()
    server.handlers.pop(project, None)


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
