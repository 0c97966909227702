"""How the gRPC server's threads reach the engine, which belongs to the emulator's event loop.

The engine is not thread-safe, and everything else in the emulator (delivery, REST, the dashboard)
uses it from the loop. The gRPC server answers on a thread pool because the sync ``grpc.server``
answers more calls per second than ``grpc.aio`` (docs/performance.md). A handler thread reaches the
engine in one of two ways:

- **While the loop waits for I/O**, directly. On a loop made by :func:`new_loop`, the loop holds a lock
  whenever it is not blocked in its selector; a handler that takes the free lock calls the engine at
  once, with no hop between threads. Everything the loop does between two waits stays as atomic as it
  was with one thread, because the loop holds the lock for all of it.
- **While the loop is busy, or on a loop the emulator did not make** (``Emulator.start_async`` awaited
  on the caller's loop), by handing the call to the loop and waiting for its answer: the loop runs it
  between its other callbacks, so a busy loop neither starves the handlers nor waits on them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["EngineAccess", "new_loop"]

T = TypeVar("T")

# The lock of every loop made by new_loop, so that EngineAccess finds it from the loop alone.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, threading.Lock] = weakref.WeakKeyDictionary()


class _LoopSelector(selectors.BaseSelector):
    """The platform's selector, giving ``lock`` back only while it blocks in ``select``.

    The lock is taken when the selector is made: the loop owns the engine from its creation, and a loop
    that is not running never reaches ``select`` to let it go.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._inner = selectors.DefaultSelector()
        self._lock = lock
        lock.acquire()
        self._held = True

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._lock.release()
        try:
            return self._inner.select(timeout)
        finally:
            self._lock.acquire()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()
        if self._held:  # a closed loop touches the engine no more: late calls may have it
            self._held = False
            self._lock.release()


def new_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose engine the gRPC threads may call directly while it waits for I/O."""
    lock = threading.Lock()
    loop = asyncio.SelectorEventLoop(_LoopSelector(lock))
    _LOCKS[loop] = lock
    return loop


class EngineAccess:
    """Runs calls for the engine of ``loop`` from any thread: see the module's docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = _LOCKS.get(loop)
        # Handler threads take turns for the engine lock, so that a failed try means "the loop is busy"
        # and never "another handler has it".
        self._turn = threading.Lock()

    @property
    def direct(self) -> bool:
        """True when idle-time calls skip the hop (the loop was made by :func:`new_loop`)."""
        return self._lock is not None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` where the engine may be touched: now under the loop's lock, or on the loop."""
        lock = self._lock
        if lock is not None:
            with self._turn:
                if lock.acquire(blocking=False):
                    try:
                        return fn(*args)
                    finally:
                        lock.release()
        return self._hop(fn, args)

    def _hop(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        answer: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                answer.set_result(fn(*args))
            except BaseException as exc:  # handed back whole: the handler maps it to a status
                answer.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return answer.result()
