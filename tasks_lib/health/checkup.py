"""Everything one health check looks at for a task (docs/design.md, "Health"): the error-rate
verdict of its current version (tasks_lib/health/verdict.py) and the live checks beside it: the
process is alive when it should be, its versioned files match the snapshot, its environment holds
exactly the snapshot's packages, and the environment variables it needs are set. Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks_lib.core import time as clock
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.filenames import shown
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.health import verdict as health
from tasks_lib.runtime.process import pidfile, run_state
from tasks_lib.verify_live import missing_env_vars
from tasks_lib.verify_snapshot import load_snapshot


@dataclass(frozen=True)
class TaskHealth:
    rate: health.HealthResult
    problems: tuple[str, ...] = ()     # live checks that failed, each saying what and why

    @property
    def task_id(self) -> str:
        return self.rate.task_id

    @property
    def verdict(self) -> str:
        """The error-rate verdict, or ``unhealthy`` when only a live check failed."""
        if self.rate.verdict in ("breach", "error") or not self.problems:
            return self.rate.verdict
        return "unhealthy"

    @property
    def unhealthy(self) -> bool:
        return self.rate.unhealthy or bool(self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {**self.rate.as_dict(), "verdict": self.verdict, "problems": list(self.problems)}


def table_rows(results: tuple[TaskHealth, ...]) -> list[dict[str, str]]:
    """The report table: one row per task (CLI text and the Prefect table artifact)."""
    return [{"task": r.task_id, "version": r.rate.version or "", "verdict": r.verdict,
             "failed/runs": f"{r.rate.failures}/{r.rate.samples}",
             "rate": "" if r.rate.rate is None else f"{r.rate.rate:.1%}",
             "detail": "; ".join([r.rate.detail, *r.problems])} for r in results]


def check_tasks(ws: Workspace, task_id: str | None = None, *,
                now: datetime | None = None) -> tuple[TaskHealth, ...]:
    """One task (``task_id``) or every active task, in registry order. An entry that cannot be
    used as it stands is an ``error`` verdict with its message; the others are judged as usual."""
    now = now or clock.now_utc()
    if task_id:
        tasks, broken = [ws.task(task_id)], []
    else:
        scan = ws.scan()
        tasks = [t for t in scan.tasks if t.active]
        broken = [b for b in scan.broken if b.status != "deleted"]
    drift = _drift(ws, [t.id for t in tasks])
    judged = {t.id: TaskHealth(health.check_task(ws.root, t, now=now),
                               tuple(_live_problems(ws, t, drift.get(t.id, ())))) for t in tasks}
    for b in broken:
        judged[b.id] = TaskHealth(health.unusable(b.id, b.version, b.error.message, now))
    order = ws.load_registry().task_ids()
    return tuple(judged[tid] for tid in order if tid in judged)


def _drift(ws: Workspace, task_ids: list[str]) -> dict[str, tuple[str, ...]]:
    from tasks_lib.status import workspace_status  # a constant number of git calls for all

    wanted = set(task_ids)
    return {s.id: s.drift for s in workspace_status(ws) if s.id in wanted}


def _live_problems(ws: Workspace, task: Task, drift: tuple[str, ...]) -> list[str]:
    problems = []
    state = run_state(ws, task)
    if state.running is False and pidfile(ws, task).exists():
        problems.append(f"process not running ({state.detail})")
    if drift:
        listed = ", ".join(shown(p) for p in drift[:3]) + (f" and {len(drift) - 3} more" if len(drift) > 3 else "")
        problems.append(f"files differ from the snapshot: {listed}")
    if not task.version:
        return problems
    try:
        _, parsed = load_snapshot(ws, task.id, task.version)
    except ClawbackError as exc:
        return [*problems, f"no snapshot of {task.version} to compare with ({exc.message})"]
    snap = parsed.snapshot
    if task.settings.python == "venv":
        python = deps.current_python(ws.state_dir, task.id)
        try:
            have = deps.installed(python) if python else ()
        except ClawbackError as exc:
            return [*problems, f"cannot list the environment's packages ({exc.message})"]
        if python is None:
            problems.append("no environment")
        elif tuple(have) != tuple(snap.python_packages):
            extra = sorted(set(have) - set(snap.python_packages))
            missing = sorted(set(snap.python_packages) - set(have))
            problems.append(f"packages differ from the lock (missing {', '.join(missing) or '-'}; "
                            f"extra {', '.join(extra) or '-'})")
    unset = missing_env_vars(snap)
    if unset:
        problems.append(f"environment variables not set: {', '.join(unset)}")
    return problems
