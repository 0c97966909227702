"""Task builders and validation before any I/O: good input builds the right message, bad input raises a
ValidationError naming the field, the value and the rule."""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from google.cloud import tasks_v2
from hypothesis import given
from hypothesis import strategies as st

import cloudtasks_kit as kit
from cloudtasks_kit import rules
from cloudtasks_kit.tasks import build_task

QUEUE = "projects/p/locations/us-central1/queues/q"
NOW = 1_800_000_000.0
URL = "https://worker.example.com/run"


def build(**spec: Any) -> Any:
    spec.setdefault("url", URL)
    return build_task(kit.TaskSpec(**spec), queue_name=QUEUE, now=NOW)


def test_json_body_sets_content_type_and_compact_json() -> None:
    msg = build(json={"to": "a@b.c", "n": [1, 2]})
    assert msg.http_request.body == b'{"to":"a@b.c","n":[1,2]}'
    assert msg.http_request.headers["Content-Type"] == "application/json"
    assert msg.http_request.http_method == tasks_v2.HttpMethod.POST


def test_json_keeps_a_given_content_type() -> None:
    msg = build(json=[1], headers={"content-type": "application/vnd.api+json"})
    assert dict(msg.http_request.headers) == {"content-type": "application/vnd.api+json"}


def test_json_null_is_a_body() -> None:
    assert build(json=None).http_request.body == b"null"


def test_text_and_bytes_bodies() -> None:
    assert build(text="héllo").http_request.body == "héllo".encode()
    assert build(text="x").http_request.headers["Content-Type"] == "text/plain; charset=utf-8"
    raw = build(body=b"\x00\x01", headers={"Content-Type": "application/octet-stream"})
    assert raw.http_request.body == b"\x00\x01"


def test_no_body_sets_no_content_type() -> None:
    assert dict(build(method="GET").http_request.headers) == {}


def test_delay_is_counted_from_the_transport_clock() -> None:
    msg = build(delay=timedelta(minutes=5))
    assert msg.schedule_time.seconds == NOW + 300


def test_aware_datetime_schedule() -> None:
    at = datetime(2027, 1, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    msg = build_task(kit.TaskSpec(url=URL, at=at), queue_name=QUEUE, now=at.timestamp() - 60)
    assert msg.schedule_time.seconds == int(at.timestamp())


def test_task_id_and_dedup_key_name_the_task() -> None:
    assert build(task_id="abc").name == QUEUE + "/tasks/abc"
    hashed = build(dedup_key="order-1").name.rsplit("/", 1)[1]
    assert hashed == kit.task_id_for_key("order-1")
    assert len(hashed) == 64 and set(hashed) <= set(string.hexdigits)
    assert kit.task_id_for_key("order-1") != kit.task_id_for_key("order-2")


def test_tokens_retry_and_deadline() -> None:
    msg = build(
        oidc=kit.OidcToken(service_account_email="a@p.iam.gserviceaccount.com", audience="aud"),
        deadline=timedelta(minutes=2),
        retry=kit.RetryConfig(max_attempts=3, min_backoff=timedelta(seconds=1)),
    )
    assert msg.http_request.oidc_token.service_account_email == "a@p.iam.gserviceaccount.com"
    assert msg.http_request.oidc_token.audience == "aud"
    assert msg.dispatch_deadline.seconds == 120
    assert msg.retry_config.max_attempts == 3
    oauth = build(oauth=kit.OAuthToken(service_account_email="a@p.iam.gserviceaccount.com"))
    assert oauth.http_request.oauth_token.scope == rules.CLOUD_PLATFORM_SCOPE


def test_method_is_case_insensitive() -> None:
    assert build(method="put", text="x").http_request.http_method == tasks_v2.HttpMethod.PUT


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"url": "ftp://x.example.com/"},
            "url 'ftp://x.example.com/' must start with 'http://' or 'https://'",
        ),
        ({"url": "https://"}, "must be an absolute URL with a host"),
        ({"url": "https://x.example.com/" + "a" * 2100}, "is longer than 2083 characters"),
        ({"task_id": "a b"}, "task id 'a b' may contain only letters, digits, '-' and '_' (1-500 chars)"),
        ({"task_id": "x" * 501}, "task id"),
        ({"task_id": "t", "dedup_key": "k"}, "task_id and dedup_key"),
        ({"dedup_key": ""}, "dedup_key '' must not be empty"),
        ({"method": "GET", "body": b"x"}, "method 'GET' cannot carry a body"),
        ({"method": "DELETE", "json": {}}, "method 'DELETE' cannot carry a body"),
        ({"method": "FETCH"}, "method 'FETCH' is not valid"),
        ({"body": b"x", "text": "y"}, "body and text"),
        ({"headers": {"X-CloudTasks-TaskName": "x"}}, "header 'X-CloudTasks-TaskName' is set by Cloud Tasks"),
        ({"headers": {"Host": "x"}}, "header 'Host' is set by Cloud Tasks"),
        ({"headers": {"x-google-foo": "x"}}, "x-google-foo"),
        ({"headers": {"Bad Name": "x"}}, "is not a valid HTTP header name"),
        ({"headers": {"X-A": "a\r\nb"}}, "must not contain line breaks"),
        ({"headers": {"X-Big": "v" * (81 * 1024)}}, "must total under 81920 bytes"),
        ({"body": b"x" * (1024 * 1024 + 1)}, "task size"),
        ({"at": datetime(2027, 1, 1)}, "must be timezone-aware"),
        ({"delay": timedelta(days=31)}, "schedule_time"),
        ({"delay": timedelta(seconds=-1)}, "delay"),
        ({"delay": timedelta(1), "at": datetime.now(timezone.utc)}, "delay and at"),
        (
            {"deadline": timedelta(seconds=5)},
            "dispatch_deadline 5s must be between 15 seconds and 30 minutes",
        ),
        ({"deadline": timedelta(hours=1)}, "dispatch_deadline"),
        ({"json": object()}, "is not JSON-serialisable"),
        ({"bogus": 1}, "bogus 1 is not a known field"),
        (
            {"retry": kit.RetryConfig(max_attempts=1), "oidc": None, "oauth": None, "url": 3},
            "url 3 is not valid",
        ),
    ],
)
def test_bad_specs_are_refused_before_any_io(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(kit.ValidationError) as caught:
        build(**spec)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_both_tokens_are_refused() -> None:
    account = "a@p.iam.gserviceaccount.com"
    with pytest.raises(kit.ValidationError, match="cannot both be set"):
        build(
            oidc=kit.OidcToken(service_account_email=account),
            oauth=kit.OAuthToken(service_account_email=account),
        )


def test_bad_service_account_is_refused() -> None:
    with pytest.raises(kit.ValidationError, match="service_account_email 'nobody' must be an email address"):
        kit.OidcToken(service_account_email="nobody")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"max_attempts": -2}, "retry_config.max_attempts -2 must be -1 (unlimited) or more"),
        ({"min_backoff": timedelta(seconds=-1)}, "retry_config.min_backoff '-1s' must not be negative"),
        ({"max_doublings": -1}, "max_doublings"),
        (
            {"min_backoff": timedelta(seconds=9), "max_backoff": timedelta(seconds=3)},
            "must not exceed max_backoff",
        ),
    ],
)
def test_retry_config_ranges(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(kit.ValidationError) as caught:
        kit.RetryConfig(**config)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [
        ({"max_dispatches_per_second": 501}, "rate_limits.max_dispatches_per_second 501.0 must be between 0"),
        ({"max_dispatches_per_second": -1}, "max_dispatches_per_second"),
        ({"max_concurrent_dispatches": 5001}, "rate_limits.max_concurrent_dispatches 5001"),
    ],
)
def test_rate_limit_ranges(limits: dict[str, Any], fragment: str) -> None:
    with pytest.raises(kit.ValidationError) as caught:
        kit.RateLimits(**limits)
    assert fragment in str(caught.value)


def test_queue_level_auth_needs_both_parts() -> None:
    with pytest.raises(
        kit.ValidationError, match="at queue level needs both service_account_email and audience"
    ):
        kit.QueueHttpTarget(oidc=kit.OidcToken(service_account_email="a@p.iam.gserviceaccount.com"))
    # The kit fills OAuth's documented default scope; a raw message without one is refused.
    target = kit.QueueHttpTarget(oauth=kit.OAuthToken(service_account_email="a@p.iam.gserviceaccount.com"))
    raw = target.to_pb()
    assert raw.oauth_token.scope == rules.CLOUD_PLATFORM_SCOPE
    raw.oauth_token.scope = ""
    with pytest.raises(
        kit.ValidationError, match="at queue level needs both service_account_email and scope"
    ):
        rules.check_http_target(raw)


@pytest.mark.parametrize("queue_id", ["", "a_b", "a b", "x" * 101, "ü"])
def test_bad_queue_ids(queue_id: str, fake: Any) -> None:
    with pytest.raises(kit.ValidationError, match="queue id"):
        fake.client().queue(queue_id)


def test_project_and_location_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("CLOUDSDK_CORE_PROJECT", raising=False)
    monkeypatch.delenv("CLOUDTASKS_LOCATION", raising=False)
    monkeypatch.delenv("CLOUDTASKS_EMULATOR_HOST", raising=False)
    # Looked up when first needed (see tests/test_lazy_client.py), not when the client is made.
    with pytest.raises(kit.UsageError, match="needs a project"):
        _ = kit.CloudTasks(location="us-central1").project
    with pytest.raises(kit.UsageError, match="needs a location"):
        _ = kit.CloudTasks(project="p").parent
    with pytest.raises(kit.ValidationError, match="project"):  # a value given is checked at once
        kit.CloudTasks(project="bad project", location="us-central1")


def test_unknown_transport_name_is_refused() -> None:
    with pytest.raises(kit.UsageError, match="must be 'grpc', 'rest'"):
        kit.CloudTasks(project="p", location="l", transport="carrier-pigeon")


def test_task_spec_round_trips_through_json() -> None:
    spec = kit.TaskSpec(url=URL, body=b"\x00\xff", delay=timedelta(seconds=90), dedup_key="k")
    again = kit.TaskSpec.model_validate_json(spec.model_dump_json(by_alias=True, exclude_unset=True))
    assert again == spec


# Properties.

TASK_ID_CHARS = string.ascii_letters + string.digits + "-_"


@given(st.text(TASK_ID_CHARS, min_size=1, max_size=500))
def test_every_well_formed_task_id_is_accepted(task_id: str) -> None:
    assert build(task_id=task_id).name.endswith("/tasks/" + task_id)


@given(st.text(min_size=0, max_size=600))
def test_task_ids_are_accepted_exactly_when_the_service_would(task_id: str) -> None:
    ok = 1 <= len(task_id) <= 500 and all(c in TASK_ID_CHARS for c in task_id)
    try:
        build(task_id=task_id)
    except kit.ValidationError as exc:
        assert not ok
        assert "task id" in str(exc)
    else:
        assert ok


@given(st.text(min_size=1))
def test_dedup_keys_always_give_a_valid_stable_id(key: str) -> None:
    task_id = kit.task_id_for_key(key)
    assert rules.check_task_id(task_id) == task_id
    assert kit.task_id_for_key(key) == task_id


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
def test_delays_are_accepted_up_to_thirty_days(delay: timedelta) -> None:
    try:
        msg = build(delay=delay)
    except kit.ValidationError as exc:
        assert delay > rules.MAX_SCHEDULE_AHEAD
        assert "30 days" in str(exc)
    else:
        assert delay <= rules.MAX_SCHEDULE_AHEAD
        assert (
            abs(msg.schedule_time.seconds + msg.schedule_time.nanos / 1e9 - (NOW + delay.total_seconds()))
            < 1e-6
        )


@given(st.datetimes(timezones=st.none()))
def test_naive_datetimes_are_always_refused(at: datetime) -> None:
    with pytest.raises(kit.ValidationError, match="timezone-aware"):
        kit.TaskSpec(url=URL, at=at)


HEADER_NAME = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=30)


@given(
    st.dictionaries(HEADER_NAME, st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=50))
)
def test_headers_are_kept_or_refused_as_reserved(headers: dict[str, str]) -> None:
    reserved = [name for name in headers if rules.reserved_header(name)]
    try:
        msg = build(headers=headers)
    except kit.ValidationError as exc:
        assert reserved
        assert "is set by Cloud Tasks" in str(exc)
    else:
        assert not reserved
        assert dict(msg.http_request.headers) == headers
