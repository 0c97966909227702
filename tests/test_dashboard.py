"""The emulator's dashboard over HTTP (the browser test is test_dashboard_browser.py): what the pages say,
that hostile values are escaped and secrets never shown, and that actions are guarded and go through
the engine's calls."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web

import cloudtasks_kit as kit
from cloudtasks_kit.drivers.history import History
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.dashboard import Dashboard, is_loopback, views
from cloudtasks_kit.errors import StatusCode
from cloudtasks_kit.transports.fake import FakeTransport

from .dashboard_support import HOSTILE, csrf_token, fetch, first_event, worker


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def _task_url(emulator: Emulator, name: str) -> str:
    return f"{emulator.rest_url}/dashboard/task?name={quote(name)}"


def _queue_url(emulator: Emulator, name: str, **query: str) -> str:
    return f"{emulator.rest_url}/dashboard/queue?" + urlencode({"name": name, **query})


def test_the_queue_list_is_at_the_rest_ports_root(emulator: Emulator) -> None:
    client = emulator.client()
    queue = client.queue("emails")
    queue.create(rate_limits=kit.RateLimits(max_dispatches_per_second=5, max_concurrent_dispatches=2))
    queue.pause()
    queue.create_task("http://127.0.0.1:9/x")
    queue.create_task("http://127.0.0.1:9/x", delay=timedelta(hours=1))
    assert emulator.dashboard_url == emulator.rest_url + "/"
    status, headers, page = fetch(emulator.rest_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert 'data-queue="emails"' in page and "PAUSED" in page
    assert "5/s, burst 5, 2 concurrent" in page
    assert '<td class="num" data-count="due">1</td>' in page
    assert '<td class="num" data-count="scheduled">1</td>' in page
    assert 'data-action="resume"' in page and 'data-action="purge"' in page


def test_hostile_values_are_escaped_and_secrets_never_shown(emulator: Emulator) -> None:
    # A worker answering 503 then 200, and a task whose URL, header values and body carry markup.
    with worker([503]) as w:
        queue = emulator.client().queue("q")
        queue.create(retry=kit.RetryConfig(min_backoff=timedelta(milliseconds=100)))
        task = queue.create_task(
            f"{w.url}/h?q={quote(HOSTILE)}&token=url-secret",
            text=f"</pre>{HOSTILE}",
            headers={"X-Note": HOSTILE, "X-Api-Key": "key-secret", "X-Auth-Token": "header-secret"},
            oidc=kit.OidcToken(service_account_email="sa@p.iam.gserviceaccount.com"),
        )
        emulator.wait_for_attempts(2)
    pages = [
        fetch(emulator.rest_url + "/")[2],
        fetch(_queue_url(emulator, queue.name))[2],
        fetch(_task_url(emulator, task.name))[2],
        first_event(f"{emulator.rest_url}/dashboard/events?view=task&name={quote(task.name)}"),
    ]
    journey = pages[2]
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in journey  # shown, as text
    for page in pages:
        assert "<script>alert" not in page
        for secret in ("key-secret", "header-secret", "url-secret", "Bearer ey"):
            assert secret not in page
    assert "X-Api-Key</th><td>***" in journey and "Authorization</th><td>***" in journey


def test_a_tasks_journey_shows_each_attempt_and_the_decision(emulator: Emulator) -> None:
    with worker([503, 500], retry_after=1) as w:
        queue = emulator.client().queue("q")
        queue.create(retry=kit.RetryConfig(min_backoff=timedelta(milliseconds=100)))
        task = queue.create_task(f"{w.url}/work", json={"n": 1})
        emulator.wait_for_attempts(3)
    page = fetch(_task_url(emulator, task.name))[2]
    assert 'data-status="succeeded"' in page
    assert page.count('class="attempt fail"') == 2 and page.count('class="attempt ok"') == 1
    assert "<strong>HTTP 503</strong> in " in page and "Retry-After 1 s" in page
    assert "Retry-After 1 s, longer than the backoff" in page
    assert "backoff 0.2 s: min_backoff 0.1 s doubled 1 time" in page
    assert "next attempt at <time" in page
    assert "X-CloudTasks-TaskPreviousResponse</th><td>503" in page


def test_actions_need_the_pages_token_and_the_same_origin(emulator: Emulator) -> None:
    queue = emulator.client().queue("q")
    queue.create()
    page = fetch(emulator.rest_url + "/")[2]
    token = csrf_token(page)
    action = f"{emulator.rest_url}/dashboard/action"
    form = {"action": "pause", "name": queue.name, "back": "/", "csrf": token}
    origin = {"Origin": emulator.rest_url}
    assert fetch(action, data={**form, "csrf": "guess"}, headers=origin)[0] == 403
    assert fetch(action, data={k: v for k, v in form.items() if k != "csrf"}, headers=origin)[0] == 403
    assert fetch(action, data=form, headers={"Origin": "http://evil.example"})[0] == 403
    assert fetch(action, data=form, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert fetch(action, data=form, headers={"Referer": "http://evil.example/"})[0] == 403
    # A DNS-rebinding page reaches the port under its own name: no token on the page, no action.
    rebound = {"Host": f"evil.example:{emulator.rest_port}"}
    assert 'name="csrf"' not in fetch(emulator.rest_url + "/", headers=rebound)[2]
    assert fetch(action, data=form, headers=rebound)[0] == 403
    assert queue.get().state is kit.QueueState.RUNNING
    status, headers, _ = fetch(action, data=form, headers=origin)
    assert status == 303 and headers["Location"].startswith("/?notice=")
    assert queue.get().state is kit.QueueState.PAUSED
    notice = fetch(emulator.rest_url + headers["Location"])[2]
    assert "pause: q done" in notice
    assert fetch(emulator.rest_url + headers["Location"])[2].count("pause: q done") == 0  # shown once


def test_an_action_is_the_apis_call_with_its_faults_and_errors(emulator: Emulator) -> None:
    queue = emulator.client().queue("q")
    queue.create()
    token = csrf_token(fetch(emulator.rest_url + "/")[2])
    emulator.faults.fail("pause_queue", StatusCode.PERMISSION_DENIED, message="no pausing today")
    action = f"{emulator.rest_url}/dashboard/action"
    form = {"action": "pause", "name": queue.name, "back": "//evil.example/", "csrf": token}
    status, headers, _ = fetch(action, data=form)
    assert status == 303 and headers["Location"].startswith("/?notice=")  # never off the site
    assert "pause q failed: no pausing today" in fetch(emulator.rest_url + headers["Location"])[2]
    assert queue.get().state is kit.QueueState.RUNNING
    # Run now, delete and purge: the same calls as RunTask, DeleteTask and PurgeQueue.
    queue.pause()
    task = queue.create_task("http://127.0.0.1:9/x")
    other = queue.create_task("http://127.0.0.1:9/y")
    fetch(action, data={**form, "action": "delete", "name": task.name})
    assert [t.name for t in queue.list_tasks()] == [other.name]
    fetch(action, data={**form, "action": "run", "name": other.name})
    emulator.wait_for_attempts(1)
    fetch(action, data={**form, "action": "purge", "name": queue.name})
    assert list(queue.list_tasks()) == []
    assert fetch(action, data={**form, "action": "drop_database"})[0] == 400


def test_read_only_when_the_emulator_is_not_on_loopback() -> None:
    # Dashboard(writable=False) is what an emulator on 0.0.0.0 gets; served here on 127.0.0.1.
    fake = FakeTransport()
    fake.client().queue("q").create()
    dashboard = Dashboard(fake.engine, History(), writable=False)
    loop = asyncio.new_event_loop()
    app = web.Application()
    dashboard.add_routes(app)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        page = fetch(f"http://127.0.0.1:{port}/")[2]
        assert "Read-only" in page and "<form" not in page and 'data-queue="q"' in page
        form = {"action": "pause", "name": "projects/local-project/locations/us-central1/queues/q"}
        status, _, body = fetch(f"http://127.0.0.1:{port}/dashboard/action", data={**form, "csrf": ""})
        assert status == 403 and "read-only" in body
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False)],
)  # fmt: skip
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_tasks_are_paginated_and_filtered(emulator: Emulator) -> None:
    queue = emulator.client().queue("q")
    queue.create()
    queue.pause()
    queue.create_tasks([{"url": f"http://127.0.0.1:9/{'a' if i % 3 else 'b'}/{i}"} for i in range(120)])
    queue.create_task("http://127.0.0.1:9/later", delay=timedelta(hours=1), task_id="the-later-one")
    page = fetch(_queue_url(emulator, queue.name))[2]
    assert "121 tasks, page 1 of 3" in page and page.count("<tr data-task=") == 50
    assert 'rel="next"' in page and 'rel="prev"' not in page
    assert fetch(_queue_url(emulator, queue.name, page="3"))[2].count("<tr data-task=") == 21
    assert "40 tasks match" in fetch(_queue_url(emulator, queue.name, url="/b/"))[2]
    scheduled = fetch(_queue_url(emulator, queue.name, state="scheduled"))[2]
    assert "1 task matches" in scheduled and 'data-task="the-later-one"' in scheduled
    assert "1 task matches" in fetch(_queue_url(emulator, queue.name, task="later"))[2]


def test_the_live_stream_sends_the_page_part_and_ends_with_the_emulator() -> None:
    emulator = Emulator().start()
    emulator.client().queue("q").create()
    fragment = first_event(f"{emulator.rest_url}/dashboard/events?view=queues")
    assert 'data-queue="q"' in fragment and "<html" not in fragment
    opened = threading.Event()

    def listen() -> None:
        import urllib.request

        with urllib.request.urlopen(
            f"{emulator.rest_url}/dashboard/events?view=queues", timeout=30
        ) as stream:
            opened.set()
            while stream.readline():
                pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    started = time.monotonic()
    emulator.stop()  # an open page must not hold the stop
    assert time.monotonic() - started < 5
    listener.join(5)
    assert not listener.is_alive()


def test_missing_queue_or_task_and_a_dashboard_that_is_off(emulator: Emulator) -> None:
    status, _, page = fetch(_queue_url(emulator, "projects/p/locations/l/queues/" + quote(HOSTILE)))
    assert status == 404 and "No such queue" in page and "<script>alert" not in page
    assert fetch(_task_url(emulator, "projects/p/locations/l/queues/q/tasks/t"))[0] == 404
    with Emulator(dashboard=False) as plain:
        assert plain.dashboard_url is None
        status, _, body = fetch(plain.rest_url + "/")
        assert status == 404 and '"NOT_FOUND"' in body


def test_templates_and_static_files_ship_in_the_package() -> None:
    package = resources.files("cloudtasks_kit.emulator.dashboard")
    for name in (
        "templates/base.html",
        "templates/_task.html",
        "static/dashboard.js",
        "static/dashboard.css",
    ):
        assert package.joinpath(name).is_file(), name


# Why a task is not running: the explanations, on virtual time.


def _fake_queue(**options: Any) -> tuple[FakeTransport, Any]:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create(**options)
    return fake, queue


def _status(fake: FakeTransport, task_name: str) -> tuple[str, str]:
    journey = views.journey(fake.engine, fake.attempts, task_name)
    assert journey is not None
    return journey.status, journey.explanation


def test_why_a_task_does_not_run_paused_scheduled_or_rate_limited() -> None:
    fake, queue = _fake_queue(rate_limits=kit.RateLimits(max_dispatches_per_second=1))
    fake.deliver_to(lambda d: 200)
    queue.pause()
    task = queue.create_task("https://w.test/x")
    assert _status(fake, task.name) == (
        "blocked",
        "the queue is PAUSED: none of its tasks run until it is resumed (Run now still runs one)",
    )
    queue.resume()
    later = queue.create_task("https://w.test/x", delay=timedelta(seconds=30))
    assert _status(fake, later.name)[0] == "scheduled"
    assert _status(fake, task.name) == ("due", "due now: the next dispatch of its queue starts it")
    second = queue.create_task("https://w.test/y")
    fake.driver.run_due()  # the one token this second goes to the first task
    status, why = _status(fake, second.name)
    assert status == "rate limited" and why.startswith("max_dispatches_per_second 1: the next dispatch")


def test_why_a_task_will_not_run_again() -> None:
    fake, queue = _fake_queue(
        retry=kit.RetryConfig(
            max_attempts=2, min_backoff=timedelta(seconds=10), max_retry_duration=timedelta(seconds=30)
        )
    )
    fake.deliver_to(lambda d: 500)
    task = queue.create_task("https://w.test/x")
    fake.driver.run_due()
    status, why = _status(fake, task.name)
    assert status == "retrying" and why.startswith("attempt 2 is due at ")
    fake.run_until_idle()
    status, why = _status(fake, task.name)
    assert status == "gave up"
    assert "max_attempts 2 reached" in why and "past max_retry_duration 30 s" in why
