"""Thin step wrappers: a Prefect task inside a flow run, a plain call outside one.

The same composition code then runs under Prefect (each step a task run with its retries, visible in
the UI) and without it when the Prefect API is down (docs/design.md, "Orchestration"): the steps are
identical, only the bookkeeping differs. Only TransientError is retried. Prefect is imported only
once a flow run is under way (it is, by then), so a run without the orchestrator never pays for it.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tasks_lib.core.errors import Conflict, TransientError

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


def _flow_run_context() -> Any:
    if "prefect.context" not in sys.modules:  # no flow can be running without it
        return None
    from prefect.context import FlowRunContext

    return FlowRunContext.get()


def in_flow_run() -> bool:
    return _flow_run_context() is not None


def flow_run_id() -> str | None:
    ctx = _flow_run_context()
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
    made: list[Any] = []

    def as_task() -> Any:
        if not made:
            from prefect import task
            from prefect.cache_policies import NO_CACHE

            made.append(task(fn, name=name, retries=retries, retry_delay_seconds=retry_delay_seconds,
                             retry_condition_fn=_transient_only, cache_policy=NO_CACHE,
                             log_prints=False))
        return made[0]

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            if in_flow_run():
                from prefect.utilities.annotations import quote

                # quoted: Prefect would otherwise walk every argument (a Plan holds the whole
                # manifest) looking for futures, ~0.1 s per step on a 200-file task
                return as_task()(*map(quote, args), **{k: quote(v) for k, v in kwargs.items()})
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


@contextmanager
def exclusive(kind: str, task_id: str, workspace_root: Path) -> Iterator[None]:
    """Inside a flow run, also hold the Prefect global concurrency limit ``clawback-<kind>-<task>-
    <workspace key>`` (limit 1, created first: a missing limit is silently ignored by Prefect), so
    the server shows and enforces one such operation per task even across workers. Busy → exit 3.
    Outside a flow run the task lock (tasks_lib.state.oplocks) alone guards."""
    if not in_flow_run():
        yield
        return
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    name = limit_name(kind, task_id, workspace_root)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, max_retries=0, strict=True))
        except ConcurrencySlotAcquisitionError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423):
                raise
            raise Conflict(f"another {kind} of {task_id} holds the Prefect concurrency limit {name}",
                           "wait for it to finish (see the Prefect UI), then retry") from None
        yield


def limit_name(kind: str, task_id: str, workspace_root: Path) -> str:
    return f"clawback-{kind}-{task_id}-{workspace_key(workspace_root)}"


def workspace_key(workspace_root: str | Path) -> str:
    """8 hex characters naming this workspace on this host (limits and idempotency keys)."""
    return hashlib.sha256(f"{socket.gethostname()}:{workspace_root}".encode()).hexdigest()[:8]
