"""What the contract suite observed, per test and backend, and how two backends' observations compare.

With ``--cloudtasks-record=PATH`` every contract test records, for its backend, each call it made (the
RPC and the answer's status code, with the message of an error) and each attempt its handler received
(the status and the ``X-CloudTasks-*`` / ``User-Agent`` headers). Run-scoped values (project, the live
prefix, generated task ids, ETAs) are replaced by placeholders, so the live service's observations and
the engine's can be compared case by case::

    pytest tests/test_contract_*.py --cloudtasks-live=projects/P/locations/L --cloudtasks-record=run.json
    python -m tests.live_record run.json            # differences between live and the fake; status 1 if any
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any, TypeVar

from cloudtasks_kit.errors import ApiError, from_exception
from cloudtasks_kit.transports.base import Transport
from cloudtasks_kit.transports.calls import Rpc

ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")

_DISPATCH_FAMILY = ("x-cloudtasks-", "user-agent")


class Observations:
    """One test's observations on one backend."""

    def __init__(self, replacements: dict[str, str]) -> None:
        # Longest first: a queue path contains the project.
        self._replacements = sorted(replacements.items(), key=lambda kv: -len(kv[0]))
        self.calls: list[dict[str, str]] = []
        self.attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def scrub(self, text: str) -> str:
        for value, placeholder in self._replacements:
            if value:
                text = text.replace(value, placeholder)
        return text

    def call(self, rpc: str, error: BaseException | None) -> None:
        entry = {"rpc": rpc, "code": "OK"}
        if error is not None:
            mapped = from_exception(error)
            if isinstance(mapped, ApiError):
                entry = {"rpc": rpc, "code": mapped.code.name, "message": self.scrub(mapped.message)}
            else:
                entry = {"rpc": rpc, "code": type(mapped).__name__, "message": self.scrub(str(mapped))}
        with self._lock:
            self.calls.append(entry)

    def attempt(self, status: int | None, headers: dict[str, str]) -> None:
        kept: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            if not key.startswith(_DISPATCH_FAMILY):
                continue
            if key == "x-cloudtasks-tasketa":
                kept[key] = "{eta}"
            elif key == "x-cloudtasks-taskname" and value.isdigit():
                kept[key] = "{generated}"  # a server-chosen id differs from run to run
            else:
                kept[key] = self.scrub(value)
        with self._lock:
            self.attempts.append({"status": status, "headers": kept})

    def as_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "attempts": self.attempts}


class RecordingTransport(Transport):
    """A transport that notes each call's RPC and outcome, then passes it to ``inner``."""

    def __init__(self, inner: Transport, observations: Observations) -> None:
        self.inner = inner
        self.observations = observations
        self.blocking = inner.blocking

    def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        try:
            response = self.inner.call(rpc, request)
        except Exception as exc:
            self.observations.call(rpc.name, exc)
            raise
        self.observations.call(rpc.name, None)
        return response

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    def close(self) -> None:
        self.inner.close()


class Recorder:
    """Every test's observations, written to one JSON file at the end of the session."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cases: dict[str, dict[str, Observations]] = {}

    def start(self, case: str, kind: str, replacements: dict[str, str]) -> Observations:
        observations = Observations(replacements)
        self.cases.setdefault(case, {})[kind] = observations
        return observations

    def write(self) -> None:
        data = {
            "cases": {
                case: {kind: obs.as_json() for kind, obs in sorted(kinds.items())}
                for case, kinds in sorted(self.cases.items())
            }
        }
        self.path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def compare(record: dict[str, Any], observed: str = "live", reference: str = "fake") -> list[str]:
    """The differences between the backends whose kind starts with ``observed`` and ``reference``, for
    every case both ran: the calls (RPC, code, error message) and the attempts (status, headers)."""
    differences: list[str] = []
    for case, kinds in sorted(record["cases"].items()):
        expected = kinds.get(reference)
        if expected is None:
            continue
        for kind, seen in sorted(kinds.items()):
            if not kind.startswith(observed):
                continue
            for part in ("calls", "attempts"):
                if _comparable(seen[part]) != _comparable(expected[part]):
                    differences.append(
                        f"{case} [{kind} vs {reference}] {part}:\n"
                        f"  {kind}: {json.dumps(seen[part])}\n  {reference}: {json.dumps(expected[part])}"
                    )
    return differences


def _comparable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # INVALID_ARGUMENT messages are the kit's own on the engine (they name the field, the value and the
    # rule; docs/fidelity.md), so only their code is compared; the file keeps the service's words.
    return [
        {k: v for k, v in entry.items() if not (k == "message" and entry.get("code") == "INVALID_ARGUMENT")}
        for entry in entries
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare the contract suite's recorded observations.")
    parser.add_argument("record", type=Path, help="the file --cloudtasks-record wrote")
    parser.add_argument("--observed", default="live", help="backend kind prefix to check (default live)")
    parser.add_argument("--reference", default="fake", help="backend kind to check it against (default fake)")
    args = parser.parse_args(argv)
    differences = compare(json.loads(args.record.read_text()), args.observed, args.reference)
    for difference in differences:
        print(difference)
    print(f"{len(differences)} difference(s)", file=sys.stderr)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
