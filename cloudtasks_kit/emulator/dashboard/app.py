"""The dashboard's routes on the emulator's REST app: server-rendered pages, their live updates as
server-sent events, and the actions (pause, resume, purge, run now, delete).

Safety, in the order a request meets it:

- **Read-only unless on loopback.** Actions exist only when the emulator listens on a loopback address
  *and* the request names a loopback host (a DNS-rebinding page under another name cannot act).
- **CSRF.** Actions are POSTs carrying a per-process random token that only the pages hold; a request
  whose ``Origin`` (or ``Sec-Fetch-Site``, or ``Referer``) says another site sent it is refused too.
- **One code path.** An action is ``engine.call(name, request)``, the same call the gRPC and REST
  servers make, with the same faults, journal and errors.
- **Escaping.** Jinja2 with autoescape on renders every value; the Content-Security-Policy allows
  scripts from the dashboard's own static files only, so even a value that slipped through could not run.
- **Secrets.** Headers and URLs pass through :mod:`cloudtasks_kit._redact` before any template sees them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import hmac
import ipaddress
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web
from google.api_core import exceptions as core

from ...drivers.history import History
from ...engine.engine import Engine
from ...errors import ValidationError
from ...names import short_id
from ...transports.calls import RPCS
from . import views

__all__ = ["ACTIONS", "Dashboard", "is_loopback"]

HERE = Path(__file__).parent
PAGE_SIZE = 50

ACTIONS = {
    "pause": "pause_queue",
    "resume": "resume_queue",
    "purge": "purge_queue",
    "run": "run_task",
    "delete": "delete_task",
}
"""Each button and the engine call it makes (the API's own)."""

_HEADERS = {
    # No inline script or style: what the templates escape could not run even if escaping failed.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for 0.0.0.0 and the rest."""
    host = host.strip("[]")
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    """The host part of a ``Host`` header (``127.0.0.1:8124``, ``[::1]:8124``, ``localhost``)."""
    return urlsplit(f"//{host_header}").hostname or ""


def _when(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _iso(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: task names, URLs, headers and bodies are hostile
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.filters["short"] = short_id
    env.globals["task_states"] = views.TASK_STATES
    return env


class Dashboard:
    """The emulator's web dashboard, on the REST server's aiohttp app.

    Args:
        engine: the emulator's engine (read on the event loop, as every call is).
        history: the emulator's bounded History of attempts (where a task's timeline comes from).
        writable: whether the action buttons work (the emulator listens on loopback).
        interval: seconds between live updates of an open page.
    """

    def __init__(self, engine: Engine, history: History, *, writable: bool, interval: float = 1.0) -> None:
        self.engine = engine
        self.history = history
        self.writable = writable
        self.interval = interval
        self.token = secrets.token_urlsafe(32)
        self._env = _environment()
        self._closing = asyncio.Event()
        # What the last few actions did, shown once after their redirect: by a random key, so a link
        # cannot make the page say something it did not do. Bounded: the oldest are forgotten.
        self._notices: collections.OrderedDict[str, tuple[bool, str]] = collections.OrderedDict()

    def add_routes(self, app: web.Application) -> None:
        """Register the pages, the live updates, the actions and the static files on ``app``."""
        app.router.add_get("/", self.queues_page)
        app.router.add_get("/dashboard", self.queues_page)
        app.router.add_get("/dashboard/queue", self.queue_page)
        app.router.add_get("/dashboard/task", self.task_page)
        app.router.add_get("/dashboard/events", self.events)
        app.router.add_post("/dashboard/action", self.action)
        app.router.add_static("/dashboard/static", HERE / "static")
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, _: web.Application) -> None:
        # Open event streams end at once rather than holding the emulator's stop.
        self._closing.set()

    # Rendering.

    def _can_act(self, request: web.Request) -> bool:
        return self.writable and is_loopback(_hostname(request.host))

    def _render(self, template: str, request: web.Request, *, back: str = "", **context: Any) -> str:
        notice = self._notices.pop(request.query.get("notice", ""), None)
        return self._env.get_template(template).render(
            can_act=self._can_act(request),
            writable=self.writable,
            token=self.token if self._can_act(request) else "",
            back=back or request.path_qs,
            notice=notice,
            now=self.engine.clock.now(),
            **context,
        )

    def _page(self, text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)

    def _queues_context(self) -> dict[str, Any]:
        return {
            "queues": views.queue_views(self.engine, self.history),
            "events": "/dashboard/events?view=queues",
        }

    def _queue_context(self, request: web.Request) -> dict[str, Any] | None:
        name = request.query.get("name", "")
        record = self.engine.state.queues.get(name)
        if record is None:
            return None
        filters = {key: request.query.get(key, "")[:200] for key in ("state", "url", "task")}
        if filters["state"] not in views.TASK_STATES:
            filters["state"] = ""
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        rows, matched = views.task_rows(
            self.engine,
            record,
            state=filters["state"],
            url=filters["url"],
            name=filters["task"],
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        (queue,) = [q for q in views.queue_views(self.engine, self.history) if q.name == name]
        pages = max(1, -(-matched // PAGE_SIZE))
        query = {k: v for k, v in filters.items() if v}

        def page_link(number: int) -> str:
            return "/dashboard/queue?" + urlencode({"name": name, **query, "page": number})

        return {
            "queue": queue,
            "tasks": rows,
            "matched": matched,
            "page": page,
            "pages": pages,
            "filters": filters,
            "prev_link": page_link(page - 1) if page > 1 else "",
            "next_link": page_link(page + 1) if page < pages else "",
            "events": "/dashboard/events?"
            + urlencode({"view": "queue", "name": name, **query, "page": page}),
        }

    def _task_context(self, request: web.Request) -> dict[str, Any] | None:
        name = request.query.get("name", "")
        journey = views.journey(self.engine, self.history, name)
        if journey is None:
            return None
        return {
            "journey": journey,
            "history_size": self.history.size,
            "events": "/dashboard/events?" + urlencode({"view": "task", "name": name}),
        }

    async def queues_page(self, request: web.Request) -> web.Response:
        return self._page(self._render("queues.html", request, **self._queues_context()))

    async def queue_page(self, request: web.Request) -> web.Response:
        context = self._queue_context(request)
        if context is None:
            return self._not_found(request, "queue")
        return self._page(self._render("queue.html", request, **context))

    async def task_page(self, request: web.Request) -> web.Response:
        context = self._task_context(request)
        if context is None:
            return self._not_found(request, "task")
        return self._page(self._render("task.html", request, **context))

    def _not_found(self, request: web.Request, kind: str) -> web.Response:
        text = self._render("missing.html", request, kind=kind, name=request.query.get("name", ""))
        return self._page(text, status=404)

    # Live updates.

    def _fragment(self, request: web.Request) -> str | None:
        """The live part of the page the event stream is for, rendered now (None: it no longer exists)."""
        view = request.query.get("view")
        # The forms in the fragment send the browser back to the page, not to this stream.
        page = {k: v for k, v in request.query.items() if k != "view"}
        if view == "queues":
            return self._render("_queues.html", request, back="/", **self._queues_context())
        if view == "queue":
            context = self._queue_context(request)
            back = "/dashboard/queue?" + urlencode(page)
            return None if context is None else self._render("_queue.html", request, back=back, **context)
        if view == "task":
            context = self._task_context(request)
            back = "/dashboard/task?" + urlencode(page)
            return None if context is None else self._render("_task.html", request, back=back, **context)
        return None

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the page's live part, sent again only when it changed.

        One render per open page per ``interval``, on the event loop between deliveries; nothing is sent
        while nothing changes but a comment line, which is how a closed page is noticed.
        """
        if request.query.get("view") not in ("queues", "queue", "task"):
            raise web.HTTPNotFound()
        response = web.StreamResponse(
            headers={**_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        last: str | None = None
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while not self._closing.is_set():
                fragment = self._fragment(request)
                if fragment is None:
                    await response.write(b"event: gone\ndata: \n\n")
                    break
                if fragment != last:
                    data = "".join(f"data: {line}\n" for line in fragment.splitlines())
                    await response.write(f"event: update\n{data}\n".encode())
                    last = fragment
                else:
                    await response.write(b": idle\n\n")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.interval)
        return response

    # Actions.

    def _refusal(self, request: web.Request, form: Any) -> str | None:
        """Why this action request is refused, or None."""
        if not self.writable:
            return "the dashboard is read-only: the emulator does not listen on a loopback address"
        if not is_loopback(_hostname(request.host)):
            return "actions are only taken from a loopback host name (127.0.0.1, ::1, localhost)"
        if not hmac.compare_digest(str(form.get("csrf", "")), self.token):
            return "the form's token is missing or stale: reload the page"
        origin = f"http://{request.host}"
        sender = request.headers.get("Origin")
        if sender is not None and sender != origin:
            return "the request came from another site"
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return "the request came from another site"
        referer = request.headers.get("Referer")
        if sender is None and referer is not None and not referer.startswith(origin + "/"):
            return "the request came from another site"
        return None

    async def action(self, request: web.Request) -> web.Response:
        form = await request.post()
        refusal = self._refusal(request, form)
        if refusal is not None:
            return web.Response(text=f"Forbidden: {refusal}\n", status=403, headers=_HEADERS)
        verb = str(form.get("action", ""))
        name = str(form.get("name", ""))
        call = ACTIONS.get(verb)
        if call is None:
            return web.Response(text=f"Unknown action {verb[:40]!r}\n", status=400, headers=_HEADERS)
        message = RPCS[call].wire_request()
        message.name = name
        try:
            self.engine.call(call, message)  # the API's own call: same rules, faults, journal and errors
        except core.GoogleAPICallError as exc:
            ok, text = False, f"{verb} {short_id(name)} failed: {exc.message}"
        except ValidationError as exc:
            ok, text = False, f"{verb} {short_id(name)} failed: {exc}"
        else:
            ok, text = True, f"{verb}: {short_id(name)} done"
        return self._back(str(form.get("back", "/")), ok, text)

    def _back(self, back: str, ok: bool, text: str) -> web.Response:
        key = secrets.token_urlsafe(8)
        self._notices[key] = (ok, text)
        while len(self._notices) > 32:
            self._notices.popitem(last=False)
        # Only a path of this server: never an absolute or scheme-relative URL (no open redirect).
        if not back.startswith("/") or back.startswith("//") or "\\" in back:
            back = "/"
        parts = urlsplit(back)
        query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("notice="))
        location = f"{parts.path}?{query + '&' if query else ''}notice={key}"
        raise web.HTTPSeeOther(location, headers=_HEADERS)
