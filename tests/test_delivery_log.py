"""The emulator's delivery log: a line per attempt while quiet, one summary per interval when busy (issue
15: per-delivery logging cost about 5% of delivery throughput)."""

from __future__ import annotations

import logging

import pytest

from cloudtasks_kit.drivers.delivery_log import DeliveryLog
from cloudtasks_kit.engine.attempts import AttemptRequest, AttemptResult
from cloudtasks_kit.engine.clock import ManualClock

LOGGER = "cloudtasks_kit.emulator"


def attempt(n: int) -> AttemptRequest:
    return AttemptRequest(
        queue_name="projects/p/locations/l/queues/q",
        task_name=f"projects/p/locations/l/queues/q/tasks/t{n}",
        url="https://worker.test/run",
        method="POST",
        headers={},
        body=b"",
        deadline=10.0,
        retry_count=0,
        schedule_time=100.0,
        dispatch_time=100.0,
    )


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_quiet_emulator_logs_every_attempt_in_full(caplog: pytest.LogCaptureFixture) -> None:
    log = DeliveryLog(interval=5, full_lines=3, clock=ManualClock(100.0).now)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for n in range(3):
            log.record(attempt(n), AttemptResult(200), "https://worker.test/run", 12.0)
        log.flush(force=True)
    assert lines(caplog) == [
        f"POST https://worker.test/run task=t{n} retry=0 -> 200 (12 ms)" for n in range(3)
    ]


def test_a_busy_interval_ends_with_one_summary_of_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(100.0)
    log = DeliveryLog(interval=5, full_lines=2, clock=clock.now)
    results = (
        [AttemptResult(200)] * 6 + [AttemptResult(503)] * 3 + [AttemptResult(None, error="UNREACHABLE: x")]
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for n, result in enumerate(results):
            log.record(attempt(n), result, "https://worker.test/run", 1.0)
        assert len(lines(caplog)) == 2  # the rest wait for the interval's end
        assert log.summary_due() == 105.0
        clock.set(105.5)
        log.flush()
        log.record(attempt(99), AttemptResult(200), "https://worker.test/run", 1.0)  # a new interval
    shown = lines(caplog)
    assert len(shown) == 4
    assert shown[2] == (
        "busy: 8 more attempts in the last 6 s not logged one by one (200 x4, 503 x3, UNREACHABLE x1); "
        "every line at DEBUG"
    )
    assert shown[3].endswith("task=t99 retry=0 -> 200 (1 ms)")
    assert not log.pending


def test_at_debug_every_attempt_still_gets_its_line(caplog: pytest.LogCaptureFixture) -> None:
    log = DeliveryLog(interval=5, full_lines=1, clock=ManualClock(100.0).now)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for n in range(4):
            log.record(attempt(n), AttemptResult(200), "http://127.0.0.1:9/run", 1.0)
    assert len(lines(caplog, logging.INFO)) == 1
    debug = lines(caplog, logging.DEBUG)
    assert len(debug) == 3
    assert (
        debug[0]
        == "POST https://worker.test/run (routed to http://127.0.0.1:9/run) task=t1 retry=0 -> 200 (1 ms)"
    )


def test_nothing_is_worked_out_when_the_log_is_off(caplog: pytest.LogCaptureFixture) -> None:
    log = DeliveryLog(interval=5, full_lines=1, clock=ManualClock(100.0).now)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for n in range(3):
            log.record(attempt(n), AttemptResult(200), "https://worker.test/run", 1.0)
        log.flush(force=True)
    assert caplog.records == []
