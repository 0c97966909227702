"""Assertions on the fake with messages that show what was there instead.

    from cloudtasks_kit.testing import assert_enqueued, assert_delivered

    (task,) = assert_enqueued(fake, "emails", url="https://worker.test/send", json={"to": "ada@example.com"})
    assert_delivered(fake, url_endswith="/send", status=200, count=1)

A failure reads like::

    expected 1 task in queue 'emails' with json={'to': 'ada@example.com'}; found 0 of 2:
      #1 POST https://worker.test/send json={'to': 'bob@example.com'}
      #2 POST https://worker.test/send json={'to': 'carol@example.com'}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.attempts import AttemptRecord as Delivery
from ..tasks import Task
from ..transports.fake import FakeTransport

__all__ = ["assert_delivered", "assert_enqueued"]

_MISSING: Any = object()


def assert_enqueued(
    fake: FakeTransport,
    queue: str,
    *,
    url: str | None = None,
    method: str | None = None,
    json: Any = _MISSING,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    task_id: str | None = None,
    count: int | None = 1,
) -> list[Task]:
    """The tasks in ``queue`` matching every criterion given; fails unless there are ``count`` of them
    (any number but zero with ``count=None``)."""
    criteria: dict[str, Any] = {
        "url": url,
        "method": method,
        "body": body,
        "task_id": task_id,
        "headers": headers,
    }
    if json is not _MISSING:
        criteria["json"] = json
    tasks = fake.tasks(queue)
    tests: list[Callable[[Task], bool]] = []
    if url is not None:
        tests.append(lambda t: t.url == url)
    if method is not None:
        tests.append(lambda t: t.method == method.upper())
    if body is not None:
        tests.append(lambda t: t.body == body)
    if task_id is not None:
        tests.append(lambda t: t.id == task_id)
    if headers is not None:
        tests.append(lambda t: _has_headers(t.headers, headers))
    if json is not _MISSING:
        tests.append(lambda t: _json_of(t.body) == json)
    matching = [t for t in tasks if all(test(t) for test in tests)]
    _check(
        matching,
        tasks,
        count=count,
        what=f"task in queue {queue!r}",
        criteria=criteria,
        describe=_describe_task,
    )
    return matching


def assert_delivered(
    fake: FakeTransport,
    *,
    url: str | None = None,
    url_endswith: str | None = None,
    status: int | None = None,
    json: Any = _MISSING,
    header: tuple[str, str] | None = None,
    count: int | None = 1,
) -> list[Delivery]:
    """The attempts so far matching every criterion given; fails unless there are ``count`` of them."""
    criteria: dict[str, Any] = {"url": url, "url_endswith": url_endswith, "status": status, "header": header}
    if json is not _MISSING:
        criteria["json"] = json
    tests: list[Callable[[Delivery], bool]] = []
    if url is not None:
        tests.append(lambda d: d.url == url)
    if url_endswith is not None:
        tests.append(lambda d: d.url.endswith(url_endswith))
    if status is not None:
        tests.append(lambda d: d.status == status)
    if header is not None:
        tests.append(lambda d: d.header(header[0]) == header[1])
    if json is not _MISSING:
        tests.append(lambda d: _json_of(d.body) == json)
    deliveries = fake.deliveries
    matching = [d for d in deliveries if all(test(d) for test in tests)]
    _check(matching, deliveries, count=count, what="delivery", criteria=criteria, describe=_describe_delivery)
    return matching


def _check(
    matching: Sequence[Any],
    everything: Sequence[Any],
    *,
    count: int | None,
    what: str,
    criteria: dict[str, Any],
    describe: Callable[[Any], str],
) -> None:
    if (count is None and matching) or len(matching) == count:
        return
    wanted = ", ".join(f"{k}={v!r}" for k, v in criteria.items() if v is not None) or "any"
    expected = "at least 1" if count is None else str(count)
    plural = "" if count == 1 else "s"
    lines = [f"expected {expected} {what}{plural} with {wanted}; found {len(matching)} of {len(everything)}:"]
    lines += [f"  #{i} {describe(item)}" for i, item in enumerate(everything[:20], 1)]
    if len(everything) > 20:
        lines.append(f"  ... and {len(everything) - 20} more")
    raise AssertionError("\n".join(lines))


def _has_headers(actual: dict[str, str], wanted: dict[str, str]) -> bool:
    lowered = {k.lower(): v for k, v in actual.items()}
    return all(lowered.get(k.lower()) == v for k, v in wanted.items())


def _json_of(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else _MISSING
    except ValueError:
        return _MISSING


def _shown_body(body: bytes | None) -> str:
    decoded = _json_of(body)
    if decoded is not _MISSING:
        return f"json={decoded!r}"[:120]
    return f"body={body!r}"[:120] if body else "no body"


def _describe_task(task: Task) -> str:
    return f"{task.method} {task.url} id={task.id!r} {_shown_body(task.body)}"


def _describe_delivery(delivery: Delivery) -> str:
    result = delivery.status if delivery.status is not None else delivery.error
    return f"{delivery.method} {delivery.url} retry={delivery.retry_count} -> {result} {_shown_body(delivery.body)}"
