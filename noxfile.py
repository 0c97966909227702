"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``, ``nox -s demo``, ``nox -s bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The README's test command."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[lint]")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the demo on the embedded emulator."""
    session.install("-e", ".[emulator]")
    session.run("cloudtasks-kit", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, with ratios against the official client measured in the same run."""
    session.install("-e", ".[emulator]")
    session.run("python", "benchmarks/run.py", *session.posargs)
