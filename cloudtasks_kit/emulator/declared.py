"""Queues declared when the emulator starts: ``--queue NAME`` and the ``--config FILE`` (TOML).

A declared queue is created at start if it is missing, so a fresh emulator is ready for the app. With
settings (rate limits, retry config, queue-level HTTP target), the queue is made to have exactly those
settings each start (the rest at the service's defaults), whatever it had in the data directory; a
queue declared by name alone is left as it is. Either way its state (paused or running) is kept.

The file::

    project = "local-project"          # for short queue ids (--project wins)
    location = "us-central1"           # (--location wins)
    auto_create_queues = false         # (--auto-create-queues wins)
    allow_hosts = ["worker.internal"]  # deliver there unrouted too (with --allow-host)
    allow_any_host = false             # (--allow-any-host wins)

    [routes]                           # production base URL = local worker (with --route; see routes.py)
    "https://worker-abc.a.run.app" = "http://127.0.0.1:8080"

    [queues.emails]                    # a short id, or a full name: [queues."projects/p/locations/l/queues/q"]
    rate_limits = { max_dispatches_per_second = 5, max_concurrent_dispatches = 2 }
    retry_config = { max_attempts = 5, min_backoff = 1, max_backoff = 60, max_doublings = 3 }

    [queues.emails.http_target]
    uri_override = { scheme = "http", host = "127.0.0.1", port = 8000, path = "/tasks/email" }
    method = "POST"
    headers = { X-Env = "local" }
    oidc = { service_account_email = "tasks@local-project.iam.gserviceaccount.com", audience = "local" }

Durations are seconds (or ISO 8601 like ``"PT1M"``). The sections are the kit's own
:class:`~cloudtasks_kit.RateLimits`, :class:`~cloudtasks_kit.RetryConfig` and
:class:`~cloudtasks_kit.QueueHttpTarget`, checked by the same rules; every error names the key, the value
and the rule.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from google.api_core import exceptions as core
from google.cloud import tasks_v2

from ..engine.engine import Engine
from ..errors import ValidationError
from ..names import location_of_queue, parse_queue_name
from ..queues import QueueHttpTarget, RateLimits, RetryConfig, build_queue_pb
from ..rules import check_location_id, check_project_id, check_queue_id

__all__ = [
    "DEFAULT_LOCATION",
    "DEFAULT_PROJECT",
    "ConfigError",
    "EmulatorConfig",
    "QueueDeclaration",
    "declare_queues",
    "load_config",
    "merge",
    "parse_config",
    "queue_name",
]

DEFAULT_PROJECT = "local-project"
DEFAULT_LOCATION = "us-central1"

_TOP_KEYS = ("project", "location", "auto_create_queues", "allow_hosts", "allow_any_host", "routes", "queues")
_SECTIONS: dict[str, type[RateLimits | RetryConfig | QueueHttpTarget]] = {
    "rate_limits": RateLimits,
    "retry_config": RetryConfig,
    "http_target": QueueHttpTarget,
}


class ConfigError(ValueError):
    """A declared queue or the config file is wrong; the message names the key, the value and the rule."""


@dataclasses.dataclass(frozen=True)
class QueueDeclaration:
    """A queue to have at start: its full name and, if given, its settings."""

    name: str
    rate_limits: RateLimits | None = None
    retry_config: RetryConfig | None = None
    http_target: QueueHttpTarget | None = None

    @property
    def has_settings(self) -> bool:
        return any(x is not None for x in (self.rate_limits, self.retry_config, self.http_target))

    def to_pb(self) -> Any:
        """The ``Queue`` protobuf to create or update it with."""
        pb, _ = build_queue_pb(self.name, self.rate_limits, self.retry_config, self.http_target)
        return pb


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """What a config file says (None where it says nothing)."""

    project: str | None = None
    location: str | None = None
    auto_create_queues: bool | None = None
    queues: tuple[QueueDeclaration, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    """``[routes]``: (production base URL, local URL) pairs, checked."""
    allow_hosts: tuple[str, ...] = ()
    allow_any_host: bool | None = None


def queue_name(text: str, project: str, location: str, *, field: str = "--queue") -> str:
    """The full name of a queue given as a short id or as ``projects/P/locations/L/queues/Q``."""
    try:
        if "/" in text:
            return parse_queue_name(text, field=field).path
        check_project_id(project)
        check_location_id(location)
        check_queue_id(text)
    except ValidationError as exc:
        raise ConfigError(f"{field} {text!r}: {exc}") from None
    return f"projects/{project}/locations/{location}/queues/{text}"


def _toml() -> Any:
    # tomllib is in the standard library from 3.11; on 3.10 the emulator extra brings tomli, its original.
    for module in ("tomllib", "tomli"):
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError:
            continue
    raise ConfigError(
        "--config needs tomllib (Python 3.11+) or, on Python 3.10, tomli: pip install 'cloudtasks-kit[emulator]'"
    )


def load_config(path: str | Path) -> Mapping[str, Any]:
    """Read a TOML config file (not yet checked: see :func:`parse_config`)."""
    toml = _toml()
    try:
        with open(path, "rb") as handle:
            data: Mapping[str, Any] = toml.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config {str(path)!r}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"--config {str(path)!r}: {exc.strerror or exc}") from None
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return data


def parse_config(
    data: Mapping[str, Any], *, source: str, project: str | None = None, location: str | None = None
) -> EmulatorConfig:
    """Check a config file's contents; short queue ids use ``project``/``location`` if given (the command
    line's), else the file's, else ``local-project``/``us-central1``."""
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{source}: key {key!r} is not known (known: {', '.join(_TOP_KEYS)})")
    own_project = _string(data, "project", source)
    own_location = _string(data, "location", source)
    auto = _flag(data, "auto_create_queues", source)
    allow_any = _flag(data, "allow_any_host", source)
    routes, allow_hosts = _delivery(data, source)
    project = project or own_project or DEFAULT_PROJECT
    location = location or own_location or DEFAULT_LOCATION
    queues = data.get("queues", {})
    if not isinstance(queues, Mapping):
        raise ConfigError(f"{source}: queues {queues!r} must be a table of queues ([queues.NAME])")
    declared = tuple(
        _queue(key, value, source=source, project=project, location=location) for key, value in queues.items()
    )
    return EmulatorConfig(own_project, own_location, auto, declared, routes, allow_hosts, allow_any)


def _flag(data: Mapping[str, Any], key: str, source: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{source}: {key} {value!r} must be true or false")
    return value


def _delivery(data: Mapping[str, Any], source: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The ``[routes]`` table and ``allow_hosts`` list, each entry checked as the emulator will use it."""
    from .routes import RouteError, check_allowed_host, parse_routes

    table = data.get("routes", {})
    if not isinstance(table, Mapping):
        raise ConfigError(
            f'{source}: routes {table!r} must be a table ([routes] "https://..." = "http://...")'
        )
    hosts = data.get("allow_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{source}: allow_hosts {hosts!r} must be a list of host names")
    try:
        parse_routes(table, field="routes")
        for host in hosts:
            check_allowed_host(host, field="allow_hosts")
    except RouteError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return tuple(table.items()), tuple(hosts)


def _string(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{source}: {key} {value!r} must be a string")
    return value


def _queue(key: str, value: Any, *, source: str, project: str, location: str) -> QueueDeclaration:
    where = f"queues.{key}" if "/" not in key else f'queues."{key}"'
    name = queue_name(key, project, location, field=f"{source}: {where}")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {where} {value!r} must be a table ([{where}])")
    settings: dict[str, Any] = {}
    for section, body in value.items():
        model = _SECTIONS.get(section)
        if model is None:
            known = ", ".join(_SECTIONS)
            raise ConfigError(f"{source}: {where}.{section} is not a queue setting (known: {known})")
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: {where}.{section} {body!r} must be a table")
        try:
            settings[section] = model.model_validate(dict(body))
        except ValidationError as exc:
            field = exc.field if exc.field.startswith(section) else f"{section}.{exc.field}"
            raise ConfigError(f"{source}: {where}.{field} {_show(exc.value)} {exc.rule}") from None
    declaration = QueueDeclaration(name, **settings)
    try:
        declaration.to_pb()  # rules across sections (a queue's whole config)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None
    return declaration


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"...' ({len(text)} chars)"


def merge(
    names: Iterable[str], config: EmulatorConfig, *, project: str, location: str
) -> list[QueueDeclaration]:
    """The ``--queue`` names and the file's queues as one list, in that order; the file's settings win."""
    out: dict[str, QueueDeclaration] = {}
    for text in names:
        full = queue_name(text, project, location)
        out.setdefault(full, QueueDeclaration(full))
    for declaration in config.queues:
        out[declaration.name] = declaration
    return list(out.values())


def declare_queues(engine: Engine, declarations: Iterable[QueueDeclaration]) -> list[tuple[str, str]]:
    """Create or update each declared queue through the engine's own calls (so a data dir keeps them).

    Returns ``(name, what happened)`` pairs: created, updated or kept.
    """
    done: list[tuple[str, str]] = []
    for declaration in declarations:
        existed = declaration.name in engine.queue_names()
        try:
            if declaration.has_settings:
                request = tasks_v2.UpdateQueueRequest.pb()()
                request.queue.CopyFrom(declaration.to_pb())
                engine.call("update_queue", request)  # no mask: exactly the declared settings
                done.append((declaration.name, "updated" if existed else "created"))
            elif not existed:
                request = tasks_v2.CreateQueueRequest.pb()(parent=location_of_queue(declaration.name))
                request.queue.name = declaration.name
                engine.call("create_queue", request)
                done.append((declaration.name, "created"))
            else:
                done.append((declaration.name, "kept"))
        except core.GoogleAPICallError as exc:
            raise ConfigError(f"cannot declare queue {declaration.name}: {exc.message}") from None
    return done
