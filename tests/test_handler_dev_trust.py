"""A worker in development trusts the emulator's certificates: one switch, loud, refused in production.

``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` beside ``CLOUDTASKS_EMULATOR_HOST`` (or its REST host) makes a
``TaskHandler`` with default verification use the emulator's ``/certs``. See docs/local-development.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.verify import GOOGLE_CERTS_URL, GOOGLE_RUNTIME_VARIABLES, emulator_certs_url

TRUST = "CLOUDTASKS_HANDLER_TRUST_EMULATOR"
HOST = "CLOUDTASKS_EMULATOR_HOST"
REST = "CLOUDTASKS_EMULATOR_REST_HOST"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (TRUST, HOST, REST, *GOOGLE_RUNTIME_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def make_app(base_url: str = "http://127.0.0.1:8080") -> tuple[kit.TaskApp, list[str]]:
    app = kit.TaskApp(
        base_url=base_url,
        queue="emails",
        oidc=kit.OidcToken(service_account_email="tasks@my-project.iam.gserviceaccount.com"),
    )
    ran: list[str] = []

    @app.task
    def hello(name: str) -> None:
        ran.append(name)

    return app, ran


def test_off_by_default_google_certificates() -> None:
    app, _ = make_app()
    handler = kit.TaskHandler(app)
    assert handler.verifier is not None
    assert handler.verifier.certs_url == GOOGLE_CERTS_URL
    assert emulator_certs_url({}) is None


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_zero_means_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TRUST, value)
    monkeypatch.setenv(HOST, "127.0.0.1:8123")
    handler = kit.TaskHandler(make_app()[0])
    assert handler.verifier is not None
    assert handler.verifier.certs_url == GOOGLE_CERTS_URL


def test_on_uses_the_emulators_rest_certs_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TRUST, "1")
    monkeypatch.setenv(HOST, "127.0.0.1:8123")
    monkeypatch.setenv(REST, "127.0.0.1:9000")
    with caplog.at_level(logging.WARNING, logger="cloudtasks_kit.verify"):
        handler = kit.TaskHandler(make_app()[0])
    assert handler.verifier is not None
    assert handler.verifier.certs_url == "http://127.0.0.1:9000/certs"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(TRUST in m and "http://127.0.0.1:9000/certs" in m for m in warnings), warnings


def test_the_rest_address_defaults_to_the_grpc_port_plus_one() -> None:
    assert emulator_certs_url({TRUST: "1", HOST: "127.0.0.1:8123"}) == "http://127.0.0.1:8124/certs"
    assert emulator_certs_url({TRUST: "true", REST: "localhost:7000"}) == "http://localhost:7000/certs"


def test_without_the_emulators_address_it_is_refused() -> None:
    with pytest.raises(kit.UsageError, match=f"neither {REST} nor {HOST} is set"):
        emulator_certs_url({TRUST: "1"})


@pytest.mark.parametrize("runtime", GOOGLE_RUNTIME_VARIABLES)
def test_refused_on_a_google_runtime(monkeypatch: pytest.MonkeyPatch, runtime: str) -> None:
    monkeypatch.setenv(TRUST, "1")
    monkeypatch.setenv(HOST, "127.0.0.1:8123")
    monkeypatch.setenv(runtime, "worker")
    with pytest.raises(kit.UsageError, match=f"Google runtime \\({runtime} is set\\)"):
        kit.TaskHandler(make_app()[0])


def test_refused_off_this_machine() -> None:
    with pytest.raises(kit.UsageError, match="not on this machine"):
        emulator_certs_url({TRUST: "1", HOST: "emulator.internal:8123"})


def test_a_value_that_is_neither_on_nor_off_is_refused() -> None:
    with pytest.raises(kit.UsageError, match=f"{TRUST}='maybe' must be 1"):
        emulator_certs_url({TRUST: "maybe", HOST: "127.0.0.1:8123"})


def test_certificates_given_in_code_win(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TRUST, "1")
    monkeypatch.setenv(HOST, "127.0.0.1:8123")
    with caplog.at_level(logging.WARNING, logger="cloudtasks_kit.handler"):
        handler = kit.TaskHandler(make_app()[0], certs_url="http://127.0.0.1:5555/certs")
    assert handler.verifier is not None
    assert handler.verifier.certs_url == "http://127.0.0.1:5555/certs"
    assert any(f"{TRUST} is ignored" in r.getMessage() for r in caplog.records)


# End to end: the emulator delivers with its token, the handler verifies it with the emulator's keys.


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def worker() -> Iterator[Any]:
    servers: list[Any] = []

    def serve(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_task_from_the_emulator_runs_under_the_switch(
    emulator: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TRUST, "1")
    # The worker's URL is the audience, so the app is made once the server has its port.
    handler_box: list[kit.TaskHandler] = []

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        return handler_box[0].wsgi(environ, start_response)

    url = worker(application)
    app, ran = make_app(url)
    handler_box.append(kit.TaskHandler(app))
    with kit.CloudTasks(project="trust-test") as tasks:
        tasks.queue("emails").create()
        app.bind(tasks)
        task = app.tasks["hello"].enqueue("ada")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.02)
    assert ran == ["ada"]
    assert [a.status for a in emulator.attempts if a.task_name == task.name] == [200]
