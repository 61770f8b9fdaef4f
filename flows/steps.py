"""Thin step wrappers: a Prefect task inside a flow run, a plain call outside one.

The same composition code then runs under Prefect (each step a task run with its retries, visible
in the UI) and without it when the Prefect API is down (SPEC §8): the steps are identical, only
the bookkeeping differs. Only TransientError is retried.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from tasks_lib.errors import TransientError

P = ParamSpec("P")
R = TypeVar("R")
_timings: ContextVar[dict[str, float] | None] = ContextVar("clawback_timings", default=None)


def _transient_only(_task: Any, _run: Any, state: Any) -> bool:
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:  # noqa: BLE001 - any other failure is permanent: do not retry
        return False
    return False


def in_flow_run() -> bool:
    return FlowRunContext.get() is not None


def flow_run_id() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


@contextmanager
def collect_timings() -> Iterator[dict[str, float]]:
    """Durations of every step called inside the block, by step name."""
    found: dict[str, float] = {}
    token = _timings.set(found)
    try:
        yield found
    finally:
        _timings.reset(token)


def step(fn: Callable[P, R], *, name: str, retries: int = 0,
         retry_delay_seconds: float = 2) -> Callable[P, R]:
    prefect_task = task(fn, name=name, retries=retries, retry_delay_seconds=retry_delay_seconds,
                        retry_condition_fn=_transient_only, cache_policy=NO_CACHE,
                        log_prints=False)

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            if in_flow_run():
                return prefect_task(*args, **kwargs)
            return _plain(fn, retries, retry_delay_seconds, *args, **kwargs)
        finally:
            found = _timings.get()
            if found is not None:
                found[name] = found.get(name, 0.0) + time.perf_counter() - started

    return call


def _plain(fn: Callable[..., R], retries: int, delay: float, *args: Any, **kwargs: Any) -> R:
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except TransientError:
            if attempt == retries:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


_note: ContextVar[str] = ContextVar("clawback_orchestrator_note", default="")


@contextmanager
def without_orchestrator(reason: str) -> Iterator[None]:
    token = _note.set(reason)
    try:
        yield
    finally:
        _note.reset(token)


def orchestration() -> dict[str, str | None]:
    """What ran this operation, for the audit log."""
    if in_flow_run():
        return {"orchestrator": "prefect", "flow_run_id": flow_run_id()}
    return {"orchestrator": "none", "why": _note.get() or "called directly"}
