"""The dashboard in a real headless Chromium, used as a person would: open it, create tasks through the API
and watch them appear, fail, retry and succeed; pause a queue from the page and see delivery stop; read a
task's journey. Screenshots go to ``test-artifacts/dashboard/`` (or ``$CLOUDTASKS_KIT_ARTIFACTS``).

Needs Playwright for Python (the ``browser`` extra) and a Chromium at ``/usr/bin/chromium`` (Debian's
``chromium`` package; no browser is downloaded). Skipped when either is missing, unless
``CLOUDTASKS_KIT_BROWSER_TESTS=required`` (as ``.ci/run`` sets), which makes a missing browser a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.emulator import Emulator

from .dashboard_support import Worker

CHROMIUM = os.environ.get("CLOUDTASKS_KIT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("CLOUDTASKS_KIT_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CLOUDTASKS_KIT_BROWSER_TESTS") == "required":
        pytest.fail(f"the browser test is required here: {reason}")
    pytest.skip(reason)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[browser]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new, empty profile
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def _shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / "dashboard" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def _count(page: Any, queue: str, column: str) -> int:
    text = page.inner_text(f'tr[data-queue="{queue}"] td[data-count="{column}"]')
    return int(text.split()[0].lstrip("≥"))


def _wait_count(page: Any, queue: str, column: str, predicate: Any, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = _count(page, queue, column)
        except Exception:  # the row is being replaced by a live update
            value = None
        if value is not None and predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue} {column} stayed at {value}")
        page.wait_for_timeout(100)


@pytest.mark.slow
def test_a_developer_watches_tasks_retry_pauses_a_queue_and_reads_a_journey(page: Any) -> None:
    worker = Worker([503, 500], retry_after=2)
    try:
        with Emulator() as emulator:
            _journey_of_a_developer(page, emulator, worker)
    finally:
        worker.close()


def _journey_of_a_developer(page: Any, emulator: Emulator, worker: Worker) -> None:
    client = emulator.client()
    page.goto(emulator.dashboard_url or "")
    page.wait_for_selector('#live-status[data-state="live"]')
    assert "No queues yet" in page.inner_text("main")

    # A queue created through the API appears without a reload.
    emails = client.queue("emails")
    emails.create(
        rate_limits=kit.RateLimits(max_dispatches_per_second=20, max_concurrent_dispatches=5),
        retry=kit.RetryConfig(max_attempts=5, min_backoff=timedelta(milliseconds=500)),
    )
    page.wait_for_selector('tr[data-queue="emails"]')

    # One task meets a 503 (Retry-After 2 s), then a 500, then succeeds: the page shows it retrying.
    first = emails.create_task(f"{worker.url}/welcome", json={"user": 42})
    _wait_count(page, "emails", "retrying", lambda n: n == 1)
    _wait_count(page, "emails", "last-minute", lambda n: n == 3)
    _wait_count(page, "emails", "retrying", lambda n: n == 0)

    # More tasks, one of them failing for good, and two more queues to look at.
    for n in range(4):
        emails.create_task(f"{worker.url}/welcome", json={"user": n})
    stuck = emails.create_task(f"{worker.url}/fail/report", text="always 500", task_id="stuck-report")
    hostile = "<script>window.__pwned = 1</script>"
    emails.create_task(
        f"{worker.url}/welcome?q=<b>bold</b>",
        text=f"</pre>{hostile}<img src=x onerror='window.__pwned = 2'>",
        headers={"X-Note": "<img src=x onerror='window.__pwned = 3'>", "X-Api-Key": "do-not-show"},
        task_id="hostile-values",
    )
    reports = client.queue("reports")
    reports.create(retry=kit.RetryConfig(max_attempts=3))
    reports.pause()
    reports.create_tasks([{"url": f"{worker.url}/reports", "json": {"n": n}} for n in range(3)])
    client.queue("webhooks").create(rate_limits=kit.RateLimits(max_dispatches_per_second=1))
    client.queue("webhooks").create_task(f"{worker.url}/hook", delay=timedelta(minutes=10))
    _wait_count(page, "emails", "last-minute", lambda n: n >= 9)
    page.wait_for_selector('tr[data-queue="reports"] .state-paused')
    assert _count(page, "reports", "due") == 3 and _count(page, "webhooks", "scheduled") == 1
    queues_png = _shot(page, "queues")

    # Pause from the page: tasks created afterwards stay due, nothing reaches the worker.
    page.click('tr[data-queue="emails"] button[data-action="pause"]')
    page.wait_for_selector(".notice.ok")
    page.wait_for_selector('tr[data-queue="emails"] .state-paused')
    sent = len(worker.requests)
    emails.create_tasks([{"url": f"{worker.url}/welcome", "json": {"late": n}} for n in range(2)])
    _wait_count(page, "emails", "due", lambda n: n == 2)
    page.wait_for_timeout(1500)
    assert len([p for p in worker.requests[sent:] if not p.startswith("/fail")]) == 0
    _shot(page, "paused")
    page.click('tr[data-queue="emails"] button[data-action="resume"]')
    _wait_count(page, "emails", "due", lambda n: n == 0)

    # The stuck task, found in its queue's list by a person, explains why it is waiting.
    page.click('tr[data-queue="emails"] td a')
    page.wait_for_selector('tr[data-task="stuck-report"]')
    page.fill('input[name="task"]', "stuck")
    page.click('form.filters button[type="submit"]')
    page.wait_for_selector("text=1 task matches")
    _shot(page, "tasks")
    page.click('tr[data-task="stuck-report"] a')
    page.wait_for_selector('section.status[data-status="retrying"]')
    assert "is due at" in page.inner_text("section.status")
    assert page.locator("li.attempt.fail").count() >= 1

    # The journey of the first task: 503 with Retry-After, 500, then 200, each with its decision.
    page.goto(f"{emulator.rest_url}/dashboard/task?name={quote(first.name)}")
    page.wait_for_selector('section.status[data-status="succeeded"]')
    answers = page.locator("li.attempt .answer strong").all_inner_texts()
    assert answers == ["HTTP 503", "HTTP 500", "HTTP 200"]
    decisions = page.locator("li.attempt .decision").all_inner_texts()
    assert decisions[0].startswith("Retry-After 2 s, longer than the backoff")
    assert decisions[1].startswith("backoff 1 s: min_backoff 0.5 s doubled 1 time")
    assert "done and deleted" in decisions[2]
    page.locator("li.attempt summary").first.click()
    assert "X-CloudTasks-TaskRetryCount" in page.inner_text("li.attempt >> nth=0")
    journey_png = _shot(page, "journey")

    # Hostile values show as text and run nothing; the API key is never on the page.
    page.goto(f"{emulator.rest_url}/dashboard/task?name={quote(emails.name + '/tasks/hostile-values')}")
    page.wait_for_selector("section.status")
    page.wait_for_timeout(1200)  # a live update or two, which replace the page's live part
    assert page.evaluate("window.__pwned") is None
    content = page.content()
    assert "do-not-show" not in content
    assert hostile in page.inner_text("main")  # shown literally
    assert stuck.name  # (the stuck task keeps retrying until the emulator stops)
    print(f"\nscreenshots: {queues_png} {journey_png}")
