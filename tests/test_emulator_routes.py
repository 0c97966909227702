"""Routes and allowed hosts: a task made for production is delivered to a local worker over real HTTP
while the API keeps its URL; a host that is neither loopback, routed nor allowed is refused before any
socket is opened. Workers listen on 127.0.0.1 on ephemeral ports; nothing leaves the machine."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.cli import main
from cloudtasks_kit.drivers import CallableTarget
from cloudtasks_kit.drivers.realtime import DeliveryRefused
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.routes import Route, RouteError, Router, check_allowed_host
from cloudtasks_kit.transports.fake import FakeTransport

PRODUCTION = "https://worker-abc.a.run.app"


class Worker:
    """A local HTTP server on 127.0.0.1 recording each request (path, headers, body); answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                worker.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker() -> Iterator[Worker]:
    running = Worker()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL an emulator's HTTP client is asked to open (refused attempts must never get here). Other
    emulators of the session may be delivering meanwhile: assert on the URLs a test made, not on all.

    Only 127.0.0.1 is really opened: any other host fails as a connection error would, so a test never
    touches the network even when the rule under test lets a host through.
    """
    urls: list[str] = []
    original = aiohttp.ClientSession._request

    async def recording(self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        urls.append(str(url))
        if urlsplit(str(url)).hostname != "127.0.0.1":
            raise aiohttp.ClientConnectionError("the test lets only 127.0.0.1 be opened")
        return await original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", recording)
    return urls


# Parsing and rewriting, without sockets.


@pytest.mark.parametrize(
    ("spec", "url", "expected"),
    [
        (f"{PRODUCTION}=http://127.0.0.1:8080", f"{PRODUCTION}/tasks/email?x=1", "http://127.0.0.1:8080/tasks/email?x=1"),
        (f"{PRODUCTION}/=http://127.0.0.1:8080/", f"{PRODUCTION}", "http://127.0.0.1:8080/"),
        (f"{PRODUCTION}:443=http://localhost:8080", f"{PRODUCTION}/a", "http://localhost:8080/a"),
        (f"{PRODUCTION}/tasks=http://127.0.0.1:8080/local", f"{PRODUCTION}/tasks/email", "http://127.0.0.1:8080/local/email"),
        (f"{PRODUCTION}/tasks=http://127.0.0.1:8080/local", f"{PRODUCTION}/tasks", "http://127.0.0.1:8080/local"),
        ("https://api.example.com/a=b=http://[::1]:9000", "https://api.example.com/a=b/c", "http://[::1]:9000/c"),
        (
            "https://us-central1-p.cloudfunctions.net=http://127.0.0.1:5001/p/us-central1",
            "https://US-CENTRAL1-P.cloudfunctions.net/q",
            "http://127.0.0.1:5001/p/us-central1/q",
        ),
    ],
)  # fmt: skip
def test_a_route_rewrites_scheme_host_port_and_prefix(spec: str, url: str, expected: str) -> None:
    assert Router([spec]).resolve(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://worker-abc.a.run.app/x",  # another scheme
        "https://worker-abc.a.run.app:8443/x",  # another port
        "https://other.a.run.app/x",  # another host
    ],
)
def test_a_route_matches_only_its_origin(url: str) -> None:
    with pytest.raises(DeliveryRefused):
        Router([f"{PRODUCTION}=http://127.0.0.1:8080"]).resolve(url)


def test_a_path_prefix_matches_whole_segments_and_the_longest_wins() -> None:
    router = Router(
        {f"{PRODUCTION}/tasks": "http://127.0.0.1:1/t", f"{PRODUCTION}/tasks/email": "http://127.0.0.1:2/e"}
    )
    assert router.resolve(f"{PRODUCTION}/tasks/email/send") == "http://127.0.0.1:2/e/send"
    assert router.resolve(f"{PRODUCTION}/tasks/sms") == "http://127.0.0.1:1/t/sms"
    with pytest.raises(DeliveryRefused):
        router.resolve(f"{PRODUCTION}/tasks2")  # not under /tasks, and the host is not allowed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("worker-abc.a.run.app", "must be FROM=TO, two http(s) URLs"),
        (f"{PRODUCTION}", "must be FROM=TO"),
        (f"{PRODUCTION}=127.0.0.1:8080", "must be FROM=TO"),
        ("ftp://files.example.com=http://127.0.0.1:8080", "route source 'ftp://files.example.com' must be an http"),
        (f"{PRODUCTION}=ftp://127.0.0.1:8080", "route target 'ftp://127.0.0.1:8080' must be an http"),
        (f"{PRODUCTION}?a=1=http://127.0.0.1:8080", "may not have a query"),
        (f"{PRODUCTION}=http://127.0.0.1:8080/?x=1", "may not have a query"),
        (f"{PRODUCTION}#frag=http://127.0.0.1:8080", "may not have a fragment"),
        ("https://user:pw@a.example.com=http://127.0.0.1:8080", "may not hold a user or password"),
        (f"{PRODUCTION}=http://127.0.0.1:99999", "is not a valid URL"),
        ("https:///path=http://127.0.0.1:8080", "must name a host"),
    ],
)  # fmt: skip
def test_a_bad_route_names_the_value_and_the_rule(spec: str, message: str) -> None:
    with pytest.raises(RouteError) as raised:
        Route.parse(spec)
    assert str(raised.value).startswith(f"--route {spec!r}")
    assert message in str(raised.value)


def test_the_same_source_twice_is_refused() -> None:
    with pytest.raises(RouteError, match="routed twice"):
        Router([f"{PRODUCTION}=http://127.0.0.1:1", f"{PRODUCTION}/=http://127.0.0.1:2"])


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://127.8.9.10/", "http://[::1]:9/", "http://localhost:9/", "http://a.localhost/"]
)  # fmt: skip
def test_loopback_is_delivered_to_by_default(url: str) -> None:
    assert Router().resolve(url) == url


@pytest.mark.parametrize(
    "url", ["https://worker.invalid/x", "http://192.0.2.1/x", "http://0.0.0.0/", "http://[2001:db8::1]/", "http://2130706433/"]
)  # fmt: skip
def test_other_hosts_are_refused_by_default(url: str) -> None:
    with pytest.raises(DeliveryRefused) as raised:
        Router().resolve(url)
    host = urlsplit(url).hostname
    message = str(raised.value)
    assert f"host {host!r} is not allowed" in message
    assert "--route" in message and f"--allow-host {host}" in message and "--allow-any-host" in message


def test_allowed_hosts_and_any_host() -> None:
    router = Router(allow_hosts=["worker.invalid", "*.svc.invalid", "192.0.2.1", "[2001:db8::1]"])
    for url in ("https://WORKER.invalid/", "http://a.svc.invalid/", "http://b.c.svc.invalid:81/", "http://192.0.2.1/",
                "http://[2001:db8::1]/"):  # fmt: skip
        assert router.resolve(url) == url
    with pytest.raises(DeliveryRefused):
        router.resolve("http://svc.invalid/")  # *.domain means its subdomains
    assert Router(allow_any_host=True).resolve("https://example.invalid/") == "https://example.invalid/"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("https://worker.invalid", "not a URL"),
        ("worker.invalid:8080", "without a port"),
        ("bad_host!", "must be a host name"),
        ("*.", "must be a host name"),
        ("", "must be a host name"),
    ],
)
def test_a_bad_allowed_host_names_the_value(host: str, message: str) -> None:
    with pytest.raises(RouteError) as raised:
        check_allowed_host(host)
    assert str(raised.value).startswith(f"--allow-host {host!r}") and message in str(raised.value)


def test_a_refusal_is_logged_once_per_host(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()
    with caplog.at_level("WARNING", logger="cloudtasks_kit.emulator"):
        for _ in range(3):
            with pytest.raises(DeliveryRefused):
                router.resolve("https://worker.invalid/x")
        with pytest.raises(DeliveryRefused):
            router.resolve("http://192.0.2.1/x")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert (
        lines[0].startswith("not delivering to worker.invalid: ")
        and "--route https://worker.invalid=" in lines[0]
    )


# Over real HTTP.


def test_a_routed_task_reaches_the_local_worker_and_keeps_its_url(worker: Worker, sent: list[str]) -> None:
    with Emulator(routes={PRODUCTION: worker.url + "/local"}, history=None) as emulator:
        queue = emulator.client().queue("routed")
        queue.create()
        created = queue.create_task(
            f"{PRODUCTION}/tasks/email?lang=en",
            json={"to": "a@example.com"},
            oidc=kit.OidcToken(service_account_email="tasks@local-project.iam.gserviceaccount.com"),
        )
        assert created.url == f"{PRODUCTION}/tasks/email?lang=en"
        [attempt] = emulator.wait_for_attempts(1)
        assert attempt.status == 200
        assert attempt.url == f"{PRODUCTION}/tasks/email?lang=en"  # what Cloud Tasks would call
        assert attempt.routed_url == f"{worker.url}/local/tasks/email?lang=en"  # where it went
        path, headers, body = worker.requests[0]
        # The token is the task's: its audience is the task's own URL (the local handler is configured
        # with that audience), verified against the emulator's certificates.
        verifier = kit.TokenVerifier(
            audience=f"{PRODUCTION}/tasks/email?lang=en",
            service_accounts=["tasks@local-project.iam.gserviceaccount.com"],
            certs_url=emulator.certs_url,
        )
        verified = verifier.verify(headers["Authorization"])
        assert verified.email == "tasks@local-project.iam.gserviceaccount.com"
    assert path == "/local/tasks/email?lang=en"
    assert headers["Host"] == urlsplit(worker.url).netloc  # the local worker's, not the production host
    assert json.loads(body) == {"to": "a@example.com"}
    assert [url for url in sent if url.startswith(worker.url)] == [f"{worker.url}/local/tasks/email?lang=en"]
    assert not [url for url in sent if PRODUCTION in url]


def test_the_api_shows_the_production_url_while_it_is_routed(worker: Worker) -> None:
    with Emulator(routes=[f"{PRODUCTION}={worker.url}"]) as emulator:
        queue = emulator.client().queue("shown")
        queue.create()
        queue.pause()
        queue.create_task(f"{PRODUCTION}/later", task_id="later")
        assert queue.get_task("later").url == f"{PRODUCTION}/later"
        assert [t.url for t in queue.list_tasks()] == [f"{PRODUCTION}/later"]
        queue.resume()
        [attempt] = emulator.wait_for_attempts(1)
        assert (attempt.url, attempt.routed_url, attempt.status) == (
            f"{PRODUCTION}/later",
            f"{worker.url}/later",
            200,
        )


@pytest.mark.parametrize("url", ["http://worker.invalid/x", "http://192.0.2.1/x"])
def test_a_refused_host_fails_the_attempt_without_any_connection(url: str, sent: list[str]) -> None:
    with Emulator() as emulator:
        queue = emulator.client().queue("refused")
        queue.create(retry=kit.RetryConfig(max_attempts=1))
        queue.create_task(url)
        [attempt] = emulator.wait_for_attempts(1, timeout=5)
    assert attempt.status is None and attempt.routed_url is None
    assert attempt.error is not None and attempt.error.startswith("REFUSED: host ")
    assert "--allow-host" in attempt.error
    assert not [u for u in sent if urlsplit(u).hostname == urlsplit(url).hostname]  # no DNS, no socket


@pytest.mark.parametrize(
    "options",
    [{"allow_hosts": ["192.0.2.1"]}, {"allow_any_host": True}],
    ids=["allow-host", "allow-any-host"],
)
def test_allowed_hosts_are_sent_to(options: dict[str, Any], sent: list[str]) -> None:
    # The rule lets 192.0.2.1 (TEST-NET-1) through, so the HTTP client is asked to open it (the test's
    # recorder stops it there: no network) and the attempt fails as unreachable, not refused.
    with Emulator(**options) as emulator:
        queue = emulator.client().queue("allowed")
        queue.create(retry=kit.RetryConfig(max_attempts=1))
        queue.create_task("http://192.0.2.1:9/x")
        [attempt] = emulator.wait_for_attempts(1, timeout=5)
    assert [url for url in sent if "192.0.2.1" in url] == ["http://192.0.2.1:9/x"]
    assert attempt.error is not None and attempt.error.startswith("UNREACHABLE: ")


def test_the_fake_is_unaffected_by_routes() -> None:
    # The fake's virtual driver delivers in process to whatever target it is given: no rule applies.
    fake = FakeTransport()
    fake.deliver_to(CallableTarget(lambda attempt: 200))
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://worker.invalid/x")
    [attempt] = fake.run_until_idle()
    assert attempt.url == "https://worker.invalid/x" and attempt.routed_url is None


# The command line.


def test_bad_routes_and_hosts_on_the_command_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["emulator", "--port", "0", "--rest-port", "0"]
    assert main([*base, "--route", "worker-abc.a.run.app=127.0.0.1:8080"]) == 2
    assert "--route 'worker-abc.a.run.app=127.0.0.1:8080' must be FROM=TO" in capsys.readouterr().err
    assert main([*base, "--allow-host", "https://x.invalid"]) == 2
    assert "allow_hosts 'https://x.invalid'" in capsys.readouterr().err
    assert (
        main(
            [
                *base,
                "--route",
                f"{PRODUCTION}=http://127.0.0.1:1",
                "--route",
                f"{PRODUCTION}=http://127.0.0.1:2",
            ]
        )
        == 2
    )
    assert "routed twice" in capsys.readouterr().err


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib (or tomli on 3.10)")
def test_routes_in_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    from cloudtasks_kit.emulator.declared import ConfigError, parse_config

    text = f'allow_hosts = ["worker.internal"]\nallow_any_host = false\n[routes]\n"{PRODUCTION}" = "http://127.0.0.1:8080"\n'
    config = parse_config(tomllib.loads(text), source="emulator.toml")
    assert config.routes == ((PRODUCTION, "http://127.0.0.1:8080"),)
    assert config.allow_hosts == ("worker.internal",) and config.allow_any_host is False
    for bad, message in [
        ('[routes]\n"worker" = "http://127.0.0.1:1"', "emulator.toml: routes 'worker' = 'http://127.0.0.1:1': route source"),
        ("routes = 3", "emulator.toml: routes 3 must be a table"),
        ('[routes]\n"https://a.invalid" = 3', "both sides must be URLs"),
        ('allow_hosts = "x"', "allow_hosts 'x' must be a list"),
        ('allow_any_host = "yes"', "allow_any_host 'yes' must be true or false"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError) as raised:
            parse_config(tomllib.loads(bad), source="emulator.toml")
        assert message in str(raised.value)
    path = tmp_path / "emulator.toml"
    path.write_text('[routes]\n"https://a.invalid" = "ftp://127.0.0.1"\n')
    assert main(["emulator", "--port", "0", "--rest-port", "0", "--config", str(path)]) == 2
    assert "route target 'ftp://127.0.0.1' must be an http" in capsys.readouterr().err


def test_help_describes_routes_and_firebase(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    out = capsys.readouterr().out
    for text in ("--route", "--allow-host", "--allow-any-host", "CLOUD_TASKS_EMULATOR_HOST", "loopback"):
        assert text in out
