"""Modules loaded on first use, so that ``from cloudtasks_kit import CloudTasks`` does not pay for them.

A Cloud Run or Cloud Functions worker imports the kit on every cold start. The task and queue models
are pydantic models, and pydantic with its schemas costs about as much as a fifth of the official
client's own import; a worker that only handles tasks never needs them, and one that creates tasks pays
for them on its first create instead of at start-up.

:func:`module` puts a module in ``sys.modules`` without running it; the first access to one of its names
runs it, under a lock, so two threads that touch it first at the same time both get the finished
module. Afterwards it is a plain module: attribute access costs what it always does.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from typing import Any

_LOCK = threading.RLock()


# What the import system reads of a module in sys.modules; anything else runs the module first.
_IMPORT_PROBES = frozenset(
    {"__class__", "__dict__", "__spec__", "__name__", "__loader__", "__package__", "__path__", "__file__"}
)


class _Deferred(types.ModuleType):
    """A module not run yet: any lookup but the import system's runs it (names, ``__doc__``, ``dir()``)."""

    def __getattribute__(self, name: str) -> Any:
        if name not in _IMPORT_PROBES:
            _run(self)
        return types.ModuleType.__getattribute__(self, name)

    def __dir__(self) -> list[str]:
        _run(self)
        return list(types.ModuleType.__getattribute__(self, "__dict__"))


def _run(deferred: types.ModuleType) -> None:
    with _LOCK:
        state = deferred.__dict__
        # While it runs, a lookup from inside the run (a circular import) sees the module as far as it
        # got, as a plain import would; other threads wait on the lock.
        if type(deferred) is _Deferred and not state.get("_kit_running"):
            state["_kit_running"] = True
            try:
                spec = deferred.__spec__
                assert spec is not None
                assert spec.loader is not None
                spec.loader.exec_module(deferred)
                object.__setattr__(deferred, "__class__", types.ModuleType)  # a plain module from now on
            finally:
                del state["_kit_running"]


def module(name: str) -> types.ModuleType:
    """The module ``name`` (of this package), run when one of its names is first looked up."""
    with _LOCK:
        found = sys.modules.get(name)
        if found is not None:
            return found
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ImportError(f"no module named {name!r}", name=name)
        deferred = importlib.util.module_from_spec(spec)
        deferred.__class__ = _Deferred
        sys.modules[name] = deferred
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, deferred)  # what `import a.b` leaves on `a`
        return deferred
