"""Where the emulator may deliver: routes from production URLs to local workers, and the allowed hosts.

A task made for production names its production URL (``https://worker-abc.a.run.app/tasks/email``).
A **route** ``https://worker-abc.a.run.app=http://127.0.0.1:8080`` sends its attempts to a local worker
instead: at send time the real-time driver rewrites the scheme, host and port (and, if the route names
them, a path prefix), while the task keeps its own URL in what the API answers and in the attempt
history. The OIDC token is the task's, so its audience is still the task's URL (or the task's own
audience): a local handler verifies it with that audience.

By default the emulator delivers only to loopback addresses (``127.0.0.0/8``, ``::1``, ``localhost``) and
to routed URLs, and refuses the rest before opening any socket: a development machine must not send
tasks, with their tokens, to a production service by accident. ``allow_hosts`` (``--allow-host``) adds
hosts, ``allow_any_host`` (``--allow-any-host``) lifts the rule.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, urlsplit, urlunsplit

from .._hosts import is_loopback_host
from ..drivers.realtime import DeliveryRefused

__all__ = ["Route", "RouteError", "Router", "check_allowed_host", "parse_routes"]

log = logging.getLogger("cloudtasks_kit.emulator")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# FROM=TO: the separator is the "=" right before TO's scheme, so FROM's path may itself hold a "=".
_SPEC = re.compile(r"(?P<source>.+?)=(?P<target>[A-Za-z][A-Za-z0-9+.-]*://.*)", re.DOTALL)
_EXAMPLE = "https://worker-abc.a.run.app=http://127.0.0.1:8080"


class RouteError(ValueError):
    """A route or an allowed host is malformed; the message names the field, the value and the rule."""


@dataclasses.dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    prefix: str  # "" or "/a/b" (no trailing slash)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _origin(url: str, field: str) -> _Origin:
    """``url`` checked as one side of a route: http(s), a host, no user, query or fragment."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RouteError(f"{field} {url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise RouteError(f"{field} {url!r} must be an http:// or https:// URL")
    if not parts.hostname:
        raise RouteError(f"{field} {url!r} must name a host")
    if parts.username is not None or parts.password is not None:
        raise RouteError(f"{field} {url!r} may not hold a user or password")
    if parts.query or url.rstrip().endswith("?"):
        raise RouteError(f"{field} {url!r} may not have a query (a route keeps the task's own query)")
    if parts.fragment or "#" in url:
        raise RouteError(f"{field} {url!r} may not have a fragment")
    return _Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


@dataclasses.dataclass(frozen=True)
class Route:
    """Attempts whose URL starts with ``source`` go to ``target`` instead.

    A URL matches when it has the source's scheme, host and port, and its path is the source's path or
    below it (``/tasks`` matches ``/tasks`` and ``/tasks/email``, not ``/tasks2``). The rewritten URL is
    the target's scheme, host and port, the target's path, then the rest of the task's path and its query.

    Example:
        ``Route.parse("https://us-central1-p.cloudfunctions.net=http://127.0.0.1:5001/p/us-central1")``
        sends ``https://us-central1-p.cloudfunctions.net/q`` to ``http://127.0.0.1:5001/p/us-central1/q``.
    """

    source: str
    target: str
    _from: _Origin = dataclasses.field(init=False, repr=False, compare=False)
    _to: _Origin = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_from", _origin(self.source, "route source"))
        object.__setattr__(self, "_to", _origin(self.target, "route target"))

    @classmethod
    def parse(cls, spec: str, *, field: str = "--route") -> Route:
        """A route from ``FROM=TO`` (two http(s) URLs), as ``--route`` takes it."""
        match = _SPEC.fullmatch(spec.strip())
        if match is None:
            raise RouteError(f"{field} {spec!r} must be FROM=TO, two http(s) URLs (e.g. {_EXAMPLE})")
        try:
            return cls(match.group("source"), match.group("target"))
        except RouteError as exc:
            raise RouteError(f"{field} {spec!r}: {exc}") from None

    @property
    def key(self) -> tuple[str, str, int]:
        """What a URL must have to be a candidate: scheme, host and port."""
        return self._from.scheme, self._from.host, self._from.port

    @property
    def prefix(self) -> str:
        """The source's path prefix (``""``: every path)."""
        return self._from.prefix

    @property
    def identity(self) -> tuple[str, str, int, str]:
        """What two routes from the same source share: scheme, host, port and path prefix."""
        return self._from.scheme, self._from.host, self._from.port, self._from.prefix

    def rewrite(self, parts: SplitResult) -> str | None:
        """The URL to send to, if ``parts`` (a split task URL with this route's :attr:`key`) is under the
        route's path; else None."""
        path = parts.path
        prefix = self._from.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return None
        rest = path[len(prefix) :]
        new_path = (self._to.prefix + rest) or "/"
        return urlunsplit((self._to.scheme, self._to.netloc, new_path, parts.query, ""))

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


def parse_routes(routes: Mapping[str, str] | Iterable[str | Route], *, field: str = "routes") -> list[Route]:
    """Routes from a ``{source: target}`` mapping or from ``FROM=TO`` strings (or :class:`Route` values).

    Two routes from the same source are refused: which one wins would be a guess.
    """
    if isinstance(routes, Mapping):
        items = []
        for source, target in routes.items():
            if not isinstance(source, str) or not isinstance(target, str):
                raise RouteError(f"{field} {source!r} = {target!r}: both sides must be URLs (strings)")
            try:
                items.append(Route(source, target))
            except RouteError as exc:
                raise RouteError(f"{field} {source!r} = {target!r}: {exc}") from None
    else:
        items = [r if isinstance(r, Route) else Route.parse(r, field=field) for r in routes]
    seen: dict[tuple[str, str, int, str], Route] = {}
    for route in items:
        key = route.identity
        if key in seen:
            raise RouteError(
                f"{field}: {route.source!r} is routed twice ({seen[key].target} and {route.target})"
            )
        seen[key] = route
    return items


def check_allowed_host(host: str, *, field: str = "--allow-host") -> str:
    """``host`` as an allowed host: a name, an IP address, or ``*.suffix`` for every name under a domain.

    Returns it normalised (lower case, IPv6 without brackets).
    """
    text = host.strip().lower()
    if not text or "/" in text or "@" in text or " " in text:
        raise RouteError(
            f"{field} {host!r} must be a host name or IP address (not a URL), e.g. worker.internal"
        )
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if ":" in text:
        raise RouteError(
            f"{field} {host!r} must be a host without a port (every port of an allowed host is allowed)"
        )
    name = text.removeprefix("*.")
    if (
        not name
        or "*" in name
        or not all(re.fullmatch(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?", p) for p in name.split("."))
    ):
        raise RouteError(
            f"{field} {host!r} must be a host name or IP address, or *.domain for its subdomains"
        )
    return text


class Router:
    """Decides where each attempt goes: a route's target, the URL itself if its host is allowed, or nowhere.

    Args:
        routes: a ``{source: target}`` mapping, or ``FROM=TO`` strings, or :class:`Route` values.
        allow_hosts: more hosts to deliver to unrouted (names, IP addresses, ``*.domain``); loopback
            addresses always are.
        allow_any_host: deliver to any host (routes still apply).
        app_engine_host: where App Engine tasks go (``http://127.0.0.1:8080``): an attempt whose URL is
            on ``*.appspot.com`` (the host the engine builds from the task's routing) is sent there, with
            its relative URI. None: such attempts are refused like any other production host.
    """

    def __init__(
        self,
        routes: Mapping[str, str] | Iterable[str | Route] = (),
        *,
        allow_hosts: Iterable[str] = (),
        allow_any_host: bool = False,
        app_engine_host: str | None = None,
    ) -> None:
        self.routes = parse_routes(routes)
        self.app_engine_host = app_engine_host
        if app_engine_host is not None:
            _origin(app_engine_host, "app_engine_host")
        self.allow_hosts = tuple(check_allowed_host(h, field="allow_hosts") for h in allow_hosts)
        self.allow_any_host = allow_any_host
        self._exact = {h for h in self.allow_hosts if not h.startswith("*.")}
        self._suffixes = tuple(h[1:] for h in self.allow_hosts if h.startswith("*."))
        # Routes by (scheme, host, port), longest path prefix first: a lookup does not scan them all.
        self._by_key: dict[tuple[str, str, int], list[Route]] = {}
        for route in sorted(self.routes, key=lambda r: len(r.prefix), reverse=True):
            self._by_key.setdefault(route.key, []).append(route)
        self._warned: set[str] = set()

    def allowed(self, host: str) -> bool:
        """Whether an unrouted URL on ``host`` may be delivered to."""
        host = host.lower()
        return (
            self.allow_any_host
            or is_loopback_host(host)
            or host in self._exact
            or (bool(self._suffixes) and host.endswith(self._suffixes))
        )

    def resolve(self, url: str) -> str:
        """The URL to send an attempt for ``url`` to.

        Raises:
            DeliveryRefused: the host is neither loopback, routed nor allowed (no socket was opened).
        """
        try:
            parts = urlsplit(url)
            scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
        except ValueError:
            return url  # the engine checked it; if it is still odd, the HTTP client says why it fails
        if self.app_engine_host and host.lower().endswith(".appspot.com"):
            base = self.app_engine_host.rstrip("/")
            return base + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (scheme, host, port or _DEFAULT_PORTS.get(scheme, 0))
        for route in self._by_key.get(key, ()):
            routed = route.rewrite(parts)
            if routed is not None:
                return routed
        if self.allowed(host):
            return url
        message = self.refusal(parts)
        if host not in self._warned:  # once per host: a retried task must not flood the log
            self._warned.add(host)
            log.warning("not delivering to %s: %s", host, message)
        raise DeliveryRefused(message)

    def refusal(self, parts: SplitResult) -> str:
        """What to tell the user about a refused URL: why, and the two ways out."""
        host = parts.hostname or ""
        origin = f"{parts.scheme}://{parts.netloc}"
        if host.lower().endswith(".appspot.com"):
            return (
                f"host {host!r} is an App Engine task's: name the local server App Engine tasks go to"
                " (--app-engine-host http://127.0.0.1:8080, $CLOUDTASKS_EMULATOR_APP_ENGINE_HOST or"
                " Emulator(app_engine_host=...))"
            )
        return (
            f"host {host!r} is not allowed: the emulator delivers only to loopback addresses and routed"
            f" hosts; route it to a local worker (--route {origin}=http://127.0.0.1:8080, or"
            f" Emulator(routes={{{origin!r}: ...}})) or allow it (--allow-host {host} or --allow-any-host)"
        )

    def describe(self) -> list[str]:
        """One line per rule, for the emulator's start-up log."""
        lines = [f"route {route}" for route in self.routes]
        if self.app_engine_host:
            lines.append(f"App Engine tasks (*.appspot.com) go to {self.app_engine_host}")
        if self.allow_any_host:
            lines.append("delivering to any host (--allow-any-host)")
        else:
            hosts = ", ".join(("loopback", *self.allow_hosts)) + (" and routed hosts" if self.routes else "")
            lines.append(f"delivering only to {hosts} (others: --route or --allow-host)")
        return lines
