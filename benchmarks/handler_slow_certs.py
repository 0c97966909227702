"""The handler with a slow certificates server: who waits, and how long.

A certs server on 127.0.0.1 (ephemeral port) takes ``--delay`` seconds (3 by default) per request. After
a warm-up, the signing key rotates; at t=0 four requests signed by the new key (an unknown kid: each needs
a fetch) and one signed by the known key (needs no fetch) reach the handler's ASGI face together. Printed:
when each finished, and how many fetches the server served. Scenarios:

- ``rotated``: the server publishes the new key (a fetch finds it);
- ``down``: the server answers 503 after the delay;
- ``garbage``: the server answers 200 with an HTML page after the delay;
- ``cold``: no warm-up: every request needs the first fetch.

Runs against whichever cloudtasks_kit is importable, so the same script measures before and after:
``PYTHONPATH=/tmp/before python benchmarks/handler_slow_certs.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import threading
import time
from typing import Any

import cloudtasks_kit as kit
from cloudtasks_kit.engine.tokens import TokenSigner

ACCOUNT = "tasks@bench.iam.gserviceaccount.com"
BASE = "https://worker.bench"
ENVELOPE = b'{"v": 1, "task": "job", "args": {"n": 1}}'


class CertsServer:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.body = b"{}"
        self.status = 200
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def call(handler: kit.TaskHandler, token: str) -> int:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/tasks/job",
        "headers": [(b"authorization", token.encode())],
    }
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            return {"type": "http.disconnect"}
        done = True
        return {"type": "http.request", "body": ENVELOPE, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await handler.asgi(scope, receive, send)
    except Exception as exc:  # the old handler let exceptions out: the server would answer 500
        print(f"    (escaped: {type(exc).__name__})")
        return 500
    return int(sent[0]["status"]) if sent else 0


async def timed(handler: kit.TaskHandler, token: str, start: float) -> tuple[float, int]:
    status = await call(handler, token)
    return time.perf_counter() - start, status


async def scenario(name: str, delay: float) -> None:
    app = kit.TaskApp(base_url=BASE, oidc=kit.OidcToken(service_account_email=ACCOUNT))

    @app.task
    def job(n: int) -> None:
        pass

    old, new = TokenSigner(), TokenSigner()
    server = CertsServer(delay)
    try:
        verifier = kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=server.url)
        handler = kit.TaskHandler(app, verifier=verifier)
        known = "Bearer " + old.oidc_token(service_account_email=ACCOUNT, audience=BASE)
        unknown = "Bearer " + new.oidc_token(service_account_email=ACCOUNT, audience=BASE)
        server.body = json.dumps(old.certs()).encode()
        if name != "cold":
            await call(handler, known)  # warm-up: the old key is cached
            cache = getattr(verifier, "certificates", verifier)
            cache._fetched -= 61  # an unknown kid may refetch now (at most once a minute)
        server.body = json.dumps({**old.certs(), **new.certs()}).encode()
        if name == "down":
            server.status = 503
        if name == "garbage":
            server.body = b"<html>maintenance</html>"
        before = server.requests
        start = time.perf_counter()
        results = await asyncio.gather(
            *[timed(handler, unknown, start) for _ in range(4)], timed(handler, known, start)
        )
        fetches = server.requests - before
    finally:
        server.close()
    unknown_times = ", ".join(f"{t:.2f} s ({s})" for t, s in results[:4])
    known_t, known_s = results[4]
    print(
        f"{name:8} unknown kid x4: {unknown_times}; known kid: {known_t:.2f} s ({known_s}); fetches: {fetches}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--scenarios", default="rotated,down,garbage,cold")
    args = parser.parse_args()
    print(f"cloudtasks_kit from {kit.__file__}")
    for name in args.scenarios.split(","):
        asyncio.run(scenario(name, args.delay))


if __name__ == "__main__":
    main()
