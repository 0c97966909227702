"""Declared queues and the emulator's TOML config: good files give the queues they say, bad ones one
line naming the key, the value and the rule."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from cloudtasks_kit import NotFound
from cloudtasks_kit.cli import main
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.declared import (
    ConfigError,
    QueueDeclaration,
    declare_queues,
    load_config,
    merge,
    parse_config,
    queue_name,
)
from cloudtasks_kit.engine.engine import Engine

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib (or tomli on 3.10)")

GOOD = """
project = "proj"
location = "europe-west1"
auto_create_queues = true

[queues.emails]
rate_limits = { max_dispatches_per_second = 5, max_concurrent_dispatches = 2 }
retry_config = { max_attempts = 5, min_backoff = 1, max_backoff = "PT1M", max_doublings = 3 }

[queues.emails.http_target]
uri_override = { scheme = "http", host = "127.0.0.1", port = 8000, path = "/tasks/email" }
method = "put"
headers = { X-Env = "local" }
oidc = { service_account_email = "tasks@proj.iam.gserviceaccount.com", audience = "local" }

[queues."projects/other/locations/us-east1/queues/reports"]
"""


def parse(text: str, **names: str) -> object:
    import tomllib

    return parse_config(tomllib.loads(text), source="emulator.toml", **names)


def test_a_good_file_declares_its_queues_with_their_settings(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(GOOD)
    config = parse_config(load_config(path), source=str(path))
    assert (config.project, config.location, config.auto_create_queues) == ("proj", "europe-west1", True)
    emails, reports = config.queues
    assert emails.name == "projects/proj/locations/europe-west1/queues/emails"
    assert reports.name == "projects/other/locations/us-east1/queues/reports" and not reports.has_settings
    assert emails.retry_config is not None and emails.retry_config.max_backoff == timedelta(minutes=1)
    engine = Engine()
    assert declare_queues(engine, config.queues) == [(emails.name, "created"), (reports.name, "created")]
    pb = engine.queue_pb(emails.name)
    assert pb.rate_limits.max_dispatches_per_second == 5
    assert pb.retry_config.max_attempts == 5
    assert pb.http_target.uri_override.path_override.path == "/tasks/email"
    assert pb.http_target.http_method == 4  # PUT
    assert pb.http_target.oidc_token.audience == "local"
    assert declare_queues(engine, config.queues) == [(emails.name, "updated"), (reports.name, "kept")]


def test_command_line_project_and_location_win_for_short_ids() -> None:
    config = parse(GOOD, project="cli-proj", location="asia-east1")
    assert config.queues[0].name == "projects/cli-proj/locations/asia-east1/queues/emails"  # type: ignore[attr-defined]


def test_queue_names_short_and_full() -> None:
    assert queue_name("q", "p", "l1") == "projects/p/locations/l1/queues/q"
    assert queue_name("projects/a/locations/b/queues/c", "p", "l") == "projects/a/locations/b/queues/c"
    with pytest.raises(ConfigError, match=r"--queue 'bad_id'.*queue id"):
        queue_name("bad_id", "p", "l")
    with pytest.raises(
        ConfigError, match="must look like 'projects/PROJECT/locations/LOCATION/queues/QUEUE'"
    ):
        queue_name("projects/p/queues/q", "p", "l")


def test_merge_keeps_command_line_queues_and_lets_the_file_set_their_settings() -> None:
    config = parse(GOOD)
    merged = merge(["emails", "extra"], config, project="proj", location="europe-west1")  # type: ignore[arg-type]
    assert [d.name.rpartition("/")[2] for d in merged] == ["emails", "extra", "reports"]
    assert merged[0].has_settings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "key 'colour' is not known"),
        ("project = 3", "project 3 must be a string"),
        ('auto_create_queues = "yes"', "auto_create_queues 'yes' must be true or false"),
        ("queues = 3", "queues 3 must be a table"),
        ("[queues.bad_id]", "queues.bad_id 'bad_id'"),
        ("[queues.q]\nspeed = 3", "queues.q.speed is not a queue setting"),
        ("[queues.q]\nrate_limits = 3", "queues.q.rate_limits 3 must be a table"),
        (
            "[queues.q]\nrate_limits = { max_dispatches_per_second = 1000 }",
            "queues.q.rate_limits.max_dispatches_per_second 1000.0",
        ),
        ("[queues.q]\nretry_config = { max_attempts = -2 }", "queues.q.retry_config.max_attempts -2"),
        (
            "[queues.q]\nretry_config = { max_attemps = 5 }",
            "queues.q.retry_config.max_attemps 5 is not a known field",
        ),
        (
            "[queues.q]\nretry_config = { min_backoff = 10, max_backoff = 1 }",
            "queues.q.retry_config",
        ),
        ('[queues.q]\nretry_config = { min_backoff = "soon" }', "queues.q.retry_config.min_backoff 'soon'"),
        ('[queues.q.http_target]\nmethod = "FETCH"', "queues.q.http_target.method 'FETCH'"),
        ('[queues.q.http_target]\nuri_override = { scheme = "ftp" }', "scheme 'ftp'"),
        (
            '[queues.q.http_target]\noidc = { service_account_email = "a@b.c" }',
            "queues.q.http_target",
        ),
    ],
)
def test_bad_config_names_the_key_and_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert str(raised.value).startswith("emulator.toml: ")
    assert message in str(raised.value)


def test_a_missing_or_malformed_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("[queues.q\n")
    assert main(["emulator", "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cloudtasks-kit emulator: ") and "not valid TOML" in err and err.count("\n") == 1


def test_bad_config_on_the_command_line_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text("[queues.q]\nrate_limits = { max_concurrent_dispatches = 99999 }\n")
    assert main(["emulator", "--port", "0", "--rest-port", "0", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "queues.q.rate_limits.max_concurrent_dispatches 99999" in err
    assert main(["emulator", "--port", "0", "--rest-port", "0", "--queue", "no good"]) == 2
    assert "--queue 'no good'" in capsys.readouterr().err


@pytest.mark.parametrize("grace", ["-1", "soon", "9999"])
def test_a_bad_grace_is_a_usage_error(grace: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--grace", grace])
    assert exited.value.code == 2
    assert "--grace" in capsys.readouterr().err


def test_a_queue_deleted_recently_cannot_be_declared(tmp_path: Path) -> None:
    with Emulator(data_dir=tmp_path) as emulator:
        queue = emulator.client().queue("gone")
        queue.create()
        queue.delete()
    name = "projects/local-project/locations/us-central1/queues/gone"
    with pytest.raises(ConfigError, match=f"cannot declare queue {name}"):
        Emulator(data_dir=tmp_path, queues=[QueueDeclaration(name)])
    Emulator(data_dir=tmp_path).close()  # the refused start let go of the data directory


def test_auto_create_queues_in_the_emulator() -> None:
    with Emulator(auto_create_queues=True) as emulator:
        task = emulator.client().queue("fresh").create_task("http://127.0.0.1:9/x")
        assert task.name.startswith("projects/local-project/locations/us-central1/queues/fresh/tasks/")
    with Emulator() as emulator, pytest.raises(NotFound):
        emulator.client().queue("fresh").create_task("http://127.0.0.1:9/x")


def test_help_describes_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--data-dir",
        "--grace",
        "--queue",
        "--config",
        "--project",
        "--location",
        "--auto-create-queues",
    ):
        assert option in out
    assert "kill -9" in out and "[queues.emails]" in out
