"""Secrets out of sight: reprs and log lines show no credential values, and nothing huge."""

from __future__ import annotations

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit._redact import is_secret_name, redact_headers, redact_url, shorten

SECRET = "s3cr3t-value-that-must-not-show"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "x-goog-api-key",
        "api_key",
        "X-Auth-Token",
        "X-Client-Secret",
        "X-Hub-Signature",
        "password",
        "key",
        "X-Session-Id",
    ],
)
def test_credential_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["Content-Type", "X-CloudTasks-TaskName", "User-Agent", "X-Request-Id", "Accept", "X-Trace", "Monkey"],
)
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_secret_name(name)


def test_header_values_are_redacted_or_truncated() -> None:
    shown = redact_headers({"X-Api-Key": SECRET, "Cookie": SECRET, "X-Trace": "t" * 500, "Accept": "*/*"})
    assert shown["X-Api-Key"] == shown["Cookie"] == "***"
    assert shown["Accept"] == "*/*"
    assert len(shown["X-Trace"]) < 80 and "+460 chars" in shown["X-Trace"]


def test_urls_lose_user_info_and_credential_query_values() -> None:
    shown = redact_url(f"https://user:{SECRET}@api.test/path?key={SECRET}&page=2&access_token={SECRET}")
    assert SECRET not in shown
    assert "page=2" in shown and "api.test/path" in shown


def test_shorten_never_writes_a_megabyte() -> None:
    assert len(shorten("x" * 1_000_000)) < 120
    assert len(shorten(b"x" * 1_000_000)) < 120
    assert len(shorten(["x" * 1000] * 1000)) < 120
    assert shorten("short") == "'short'"


def test_task_spec_repr_shows_no_header_secrets() -> None:
    spec = kit.TaskSpec(
        url=f"https://worker.test/run?api_key={SECRET}",
        headers={"X-Api-Key": SECRET, "Authorization": f"Bearer {SECRET}", "X-Tenant": "acme"},
        json={"big": "b" * 10_000},
        dedup_key="order-42",
    )
    for shown in (repr(spec), str(spec)):
        assert SECRET not in shown
        assert "X-Api-Key" in shown and "'acme'" in shown and "order-42" in shown
        assert len(shown) < 600


def test_task_spec_repr_summarises_the_body() -> None:
    spec = kit.TaskSpec(url="https://worker.test/run", body=SECRET.encode() * 1000)
    assert SECRET not in repr(spec)
    assert f"<{len(SECRET) * 1000} bytes>" in repr(spec)


def test_task_spec_repr_still_names_its_fields() -> None:
    spec = kit.TaskSpec(url="https://worker.test/run", task_id="t-1", method="PUT", text="hello")
    shown = repr(spec)
    assert shown.startswith("TaskSpec(url='https://worker.test/run'")
    assert "task_id='t-1'" in shown and "method='PUT'" in shown and "text='hello'" in shown


def test_task_repr_hides_credential_query_values() -> None:
    from cloudtasks_kit.transports.fake import FakeTransport

    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    task = queue.create_task(f"https://worker.test/run?token={SECRET}")
    assert SECRET not in repr(task)


@pytest.mark.parametrize("name", ["Authorization", "Cookie", "X-Api-Key", "X-Goog-Api-Key", "X-Auth-Token"])
@pytest.mark.parametrize(
    "value", [f"Bearer {SECRET}\r\nX-Evil: 1", f"{SECRET}\ud800", 12345], ids=["newline", "surrogate", "int"]
)
def test_errors_about_credential_headers_never_show_their_values(name: str, value: object) -> None:
    with pytest.raises(kit.ValidationError) as caught:
        kit.TaskSpec(url="https://worker.test/run", headers={name: value})
    error = caught.value
    shown = str(error)
    assert SECRET not in shown and "12345" not in shown and SECRET not in repr(error.value)
    assert name in shown and "'***'" in shown  # the field and the rule are still named


def test_errors_about_other_headers_still_show_their_values() -> None:
    with pytest.raises(
        kit.ValidationError, match="X-Trace' value 'abc\\\\ndef' must not contain line breaks"
    ):
        kit.TaskSpec(url="https://worker.test/run", headers={"X-Trace": "abc\ndef"})


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://worker.test/run?api_key={SECRET}",
        f"https://worker.test/ run?token={SECRET}",
        f"ftp://user:{SECRET}@worker.test/run",
        f"https://worker.test/run?key={SECRET}&x=" + "a" * 3000,
    ],
)
def test_errors_about_urls_hide_their_credentials(url: str) -> None:
    with pytest.raises(kit.ValidationError) as caught:
        kit.TaskSpec(url=url)
    assert SECRET not in str(caught.value) and "url" in str(caught.value)
