"""Every Python example in README.md and docs/ runs, on the fake, with no Google credentials and no network.

A page's blocks run in page order in one namespace, as a reader would paste them. Top-level ``await``
works (the block runs on an event loop of its own). Test functions a page defines (``def test_...``) are
then called with the kit's fixtures. A block that cannot run here (it needs a Google project, or stands
for your own code) says so right before it, with a reason::

    <!-- docs-test: skip (needs a Google project) -->

and a page can give its examples what a reader would already have, without showing it::

    <!-- docs-test: setup
    fake = FakeTransport()
    -->

The skips are counted and each must give its reason, so a page cannot quietly stop being tested.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import re
import socket
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cloudtasks_kit
from cloudtasks_kit.transports.fake import FakeTransport

ROOT = Path(__file__).parent.parent
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]

# A fenced python block, or a hidden setup block, each with the line it starts on.
_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```|^<!-- docs-test: setup\n(?P<setup>.*?)^-->", re.S | re.M)
_MARKER = re.compile(r"<!--\s*docs-test:(?P<rest>.*?)-->", re.S)
_SKIP = re.compile(r"^\s*skip\s*\((?P<reason>[^)]*\S[^)]*)\)\s*$")

# The fewest examples that must run: a guard against a marker or parser change skipping them wholesale.
MIN_RUN = 30


@dataclasses.dataclass(frozen=True)
class Block:
    """One example: its code, where it starts, and why it is skipped (None: it runs)."""

    page: str
    line: int
    code: str
    skip: str | None
    setup: bool = False

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """The page's examples and hidden setup blocks, in page order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        if match.group("setup") is not None:
            found.append(Block(page, line, match.group("setup"), None, setup=True))
            continue
        found.append(Block(page, line, match.group("code"), _skip_reason(text[: match.start()], page, line)))
    return found


def _skip_reason(before: str, page: str, line: int) -> str | None:
    """The reason in a ``docs-test: skip (...)`` comment right before the block (blank lines allowed)."""
    previous = before.rstrip().rsplit("\n", 1)[-1].strip()
    marker = _MARKER.fullmatch(previous)
    if marker is None:
        return None
    skip = _SKIP.match(marker.group("rest"))
    assert skip, f"{page}:{line}: a docs-test marker must read 'skip (why)', got {previous!r}"
    return skip.group("reason").strip()


def test_the_pages_are_found_and_every_marker_is_well_formed() -> None:
    assert "docs/quickstart.md" in PAGES and "docs/production.md" in PAGES
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for marker in _MARKER.finditer(text):
            rest = marker.group("rest")
            if rest.startswith(" setup\n"):
                continue
            assert _SKIP.match(rest), f"{page}: malformed docs-test marker {marker.group(0)!r}"
            after = text[marker.end() :].lstrip()
            assert after.startswith("```python\n"), f"{page}: {marker.group(0)!r} is not right before a block"


def test_skipped_examples_are_few_and_each_says_why() -> None:
    every = [b for page in PAGES for b in blocks(page) if not b.setup]
    skipped = [b for b in every if b.skip is not None]
    assert all(b.skip for b in skipped)
    ran = len(every) - len(skipped)
    assert ran >= MIN_RUN, f"only {ran} examples run"
    assert len(skipped) <= len(every) // 4, [f"{b.where}: {b.skip}" for b in skipped]


# Running them.


@pytest.fixture
def no_google(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Google credentials, no emulator from the environment, and no connection off this machine."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    for name in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "CLOUDSDK_CORE_PROJECT",
        "CLOUDTASKS_LOCATION",
        "CLOUDTASKS_EMULATOR_HOST",
        "CLOUDTASKS_EMULATOR_REST_HOST",
    ):
        monkeypatch.delenv(name, raising=False)

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise DefaultCredentialsError("the docs' examples run without Google credentials")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    connect = socket.socket.connect

    def local_only(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"the docs' examples may not reach {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run one block in the page's namespace; a block with top-level ``await`` on an event loop."""
    source = "\n" * (block.line - 1) + block.code  # tracebacks point at the page's own line numbers
    code = compile(source, block.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(types.FunctionType(code, namespace)())
    else:
        exec(code, namespace)


FIXTURES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "cloudtasks_fake": lambda made: FakeTransport(),
    "cloudtasks_client": lambda made: made["cloudtasks_fake"].client(),
}


def run_tests(page: str, namespace: dict[str, Any]) -> list[str]:
    """Call each ``test_*`` function the page defined, with fresh fixtures; returns their names."""
    ran = []
    for name, fn in list(namespace.items()):
        if not (name.startswith("test_") and inspect.isfunction(fn) and fn.__code__.co_filename == page):
            continue
        made: dict[str, Any] = {}
        for parameter in ["cloudtasks_fake", *inspect.signature(fn).parameters]:
            assert parameter in FIXTURES, f"{page}: {name} asks for an unknown fixture {parameter!r}"
            made.setdefault(parameter, FIXTURES[parameter](made))
        result = fn(**{p: made[p] for p in inspect.signature(fn).parameters})
        if inspect.iscoroutine(result):
            asyncio.run(result)
        ran.append(name)
    return ran


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_of_the_page_runs_in_order(page: str, no_google: None) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(page).stem.replace('-', '_')}"}
    ran = 0
    for block in blocks(page):
        if block.skip is not None:
            continue
        try:
            run_block(block, namespace)
        except BaseException as exc:
            raise AssertionError(f"the example at {block.where} failed: {exc!r}") from exc
        ran += not block.setup
    tests = run_tests(page, namespace)
    defined = [
        n for b in blocks(page) if b.skip is None for n in re.findall(r"^def (test_\w+)", b.code, re.M)
    ]
    assert sorted(tests) == sorted(defined), f"{page}: the page's tests did not all run"
    assert ran or not any(not b.setup for b in blocks(page)), f"{page}: no example runs"


def test_the_reference_documents_every_public_name() -> None:
    """Each name in ``cloudtasks_kit.__all__`` has a mkdocstrings entry (``::: cloudtasks_kit.Name``)."""
    reference = "".join(
        p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs" / "reference").glob("*.md"))
    )
    documented = set(re.findall(r"^::: cloudtasks_kit\.(\w+)\s*$", reference, re.M))
    missing = sorted(set(cloudtasks_kit.__all__) - documented - {"__version__"})
    assert not missing, f"not in docs/reference/: {missing}"
    unknown = sorted(documented - set(cloudtasks_kit.__all__))
    assert not unknown, f"docs/reference/ names what cloudtasks_kit does not export: {unknown}"
    assert "__version__" in reference


def test_every_page_is_in_the_site_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    missing = sorted(p for p in pages if p not in config)
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
