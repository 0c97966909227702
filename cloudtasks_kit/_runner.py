"""Running the facades' operations: one sync runner and one async runner, with retries under a policy.

An operation (:mod:`cloudtasks_kit._operations`) is a generator: it yields a :class:`Call` for each RPC
it needs and gets the response sent back, or the kit's error thrown in. :func:`run` drives one over a
sync transport, :func:`arun` over an async one; :func:`run_plan` and :func:`arun_plan` add the retry
policy, waiting on the transport's clock (a fake on virtual time never sleeps for real).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import errors
from .retry import RetryPolicy
from .transports.base import AsyncTransport, Transport
from .transports.calls import Rpc

if TYPE_CHECKING:
    from .tracing import PlanTrace

T = TypeVar("T")
ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")


class Call(Generic[ReqT, RespT]):
    """One RPC an operation asks for: a row of the call table and its request."""

    __slots__ = ("request", "rpc")

    def __init__(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> None:
        self.rpc = rpc
        self.request = request


Op = Generator["Call[Any, Any]", Any, T]
"""An operation returning T. Each ``yield`` goes through :func:`call`, which types its response."""


def call(rpc: Rpc[ReqT, RespT], request: ReqT) -> Generator[Call[ReqT, RespT], RespT, RespT]:
    """Ask for one RPC inside an operation: ``task = yield from call(CREATE_TASK, request)``."""
    return (yield Call(rpc, request))


def run(transport: Transport, op: Op[T]) -> T:
    """Drive ``op`` over a sync transport, mapping transport errors to the kit's."""
    try:
        step = next(op)
        while True:
            try:
                response = transport.call(step.rpc, step.request)
            except Exception as exc:
                step = op.throw(_mapped(exc))
            else:
                step = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(transport: AsyncTransport | Transport, op: Op[T]) -> T:
    """Drive ``op`` over an async transport (or a sync one, see :class:`Transport`)."""
    try:
        step = next(op)
        while True:
            try:
                if isinstance(transport, AsyncTransport):
                    response = await transport.call(step.rpc, step.request)
                elif transport.blocking:
                    response = await asyncio.to_thread(transport.call, step.rpc, step.request)
                else:
                    response = transport.call(step.rpc, step.request)
            except Exception as exc:
                step = op.throw(_mapped(exc))
            else:
                step = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class Plan(Generic[T]):
    """An operation and how to retry it: ``make_op(retried)`` gives a fresh attempt. ``trace``: its span,
    when OpenTelemetry is on (see :mod:`cloudtasks_kit.tracing`)."""

    __slots__ = ("make_op", "policy", "retries", "trace")

    def __init__(
        self,
        policy: RetryPolicy | None,
        named: bool,
        make_op: Callable[[bool], Op[T]],
        trace: PlanTrace | None = None,
    ) -> None:
        self.policy = policy
        self.make_op = make_op
        self.retries = policy is not None and policy.applies(named)
        self.trace = trace


def run_plan(transport: Transport, plan: Plan[T]) -> T:
    """Drive a plan over a sync transport, retrying under its policy, inside its span if it has one."""
    if plan.trace is not None:
        return plan.trace.run(plan, lambda: _run_plan(transport, plan))
    return _run_plan(transport, plan)


def _run_plan(transport: Transport, plan: Plan[T]) -> T:
    """Drive a plan over a sync transport, retrying under its policy.

    The first attempt runs outside tenacity: most creates succeed at once, and tenacity's machinery
    costs more than the rest of a named create. Only a retryable failure enters the retry loop, where it
    is replayed as the loop's first attempt, so tenacity's counts, waits and deadline stay exact.
    """
    if not plan.retries:
        return run(transport, plan.make_op(False))
    assert plan.policy is not None
    try:
        return run(transport, plan.make_op(False))
    except plan.policy.retry_on as exc:
        first: BaseException | None = exc
    for trial in plan.policy.retrying(transport.sleep):
        with trial:
            if first is not None:
                replayed, first = first, None
                raise replayed
            return run(transport, plan.make_op(True))
    raise AssertionError("tenacity re-raises the last error")  # pragma: no cover


async def arun_plan(transport: AsyncTransport | Transport, plan: Plan[T]) -> T:
    """Drive a plan over an async transport, retrying under its policy (see :func:`run_plan`)."""
    if plan.trace is not None:
        return await plan.trace.arun(plan, lambda: _arun_plan(transport, plan))
    return await _arun_plan(transport, plan)


async def _arun_plan(transport: AsyncTransport | Transport, plan: Plan[T]) -> T:
    if not plan.retries:
        return await arun(transport, plan.make_op(False))
    assert plan.policy is not None
    try:
        return await arun(transport, plan.make_op(False))
    except plan.policy.retry_on as exc:
        first: BaseException | None = exc
    async for trial in plan.policy.async_retrying(_async_sleep(transport)):
        with trial:
            if first is not None:
                replayed, first = first, None
                raise replayed
            return await arun(transport, plan.make_op(True))
    raise AssertionError("tenacity re-raises the last error")  # pragma: no cover


def _mapped(exc: Exception) -> errors.CloudTasksError:
    mapped = errors.from_exception(exc)
    if mapped is not exc:
        mapped.__cause__ = exc
    return mapped


def _async_sleep(transport: AsyncTransport | Transport) -> Callable[[float], Any]:
    """How an async runner waits on ``transport``'s clock."""
    if isinstance(transport, AsyncTransport):
        return transport.sleep
    sleep = transport.sleep
    if transport.blocking:
        return asyncio.sleep  # a blocking transport's clock is the wall clock

    async def on_the_fake(seconds: float) -> None:
        sleep(seconds)

    return on_the_fake
