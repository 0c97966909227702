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


class _Deferred(types.ModuleType):
    """A module not run yet: the first lookup of a name it lacks runs it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's probes (__path__, ...) run nothing
            raise AttributeError(name)
        with _LOCK:
            state = self.__dict__
            # While it runs, a lookup from inside the run (a circular import) sees the module as far
            # as it got, as a plain import would; other threads wait on the lock.
            if type(self) is _Deferred and not state.get("_kit_running"):
                state["_kit_running"] = True
                try:
                    spec = self.__spec__
                    assert spec is not None
                    assert spec.loader is not None
                    spec.loader.exec_module(self)
                    object.__setattr__(self, "__class__", types.ModuleType)  # a plain module from now on
                finally:
                    del state["_kit_running"]
        return types.ModuleType.__getattribute__(self, name)


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
