"""The health flow (docs/design.md, "Health"): every active task's error-rate verdict and live
checks in one run, each verdict kept in the task's verdict history (tasks_lib/health/history.py), a
table report (CLI and Prefect artifact ``health``), and what the policy asks done about it
(tasks_lib/health/policy.py decides, flows/autoheal.py acts): automatic rollback of a breach,
promotion after consecutive healthy checks, escalation of repeated measurement errors. Without a
policy it changes nothing but the verdict history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flows.artifacts import publish_table
from flows.autoheal import Action, respond
from flows.steps import collect_timings, in_flow_run, step
from tasks_lib.core import ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.health import checkup
from tasks_lib.health.history import Record, VerdictLog
from tasks_lib.health.policy import Policy, RollbackVia
from tasks_lib.state.audit import Stopwatch

check_tasks = step(checkup.check_tasks, name="check-tasks")


@dataclass(frozen=True)
class HealthRun:
    results: tuple[checkup.TaskHealth, ...]
    seconds: float
    actions: tuple[Action, ...] = ()

    @property
    def unhealthy(self) -> tuple[str, ...]:
        return tuple(r.task_id for r in self.results if r.unhealthy)


def run_health(workspace: str, task_id: str | None = None, auto_rollback: bool = False,
               min_interval_minutes: float = 60, promote_after: int = 0,
               errors_before_alert: int = 3, rollback_via: RollbackVia = "auto",
               wait_s: float = 300.0) -> HealthRun:
    """Check one task or every active task, then act as the policy says."""
    ws = Workspace.discover(workspace)
    policy = Policy(auto_rollback, timedelta(minutes=min_interval_minutes), promote_after,
                    errors_before_alert, rollback_via, wait_s)
    clock = Stopwatch()
    with collect_timings():
        results = check_tasks(ws, task_id)
        history = remember(ws, results)
        actions = respond(ws, results, history, policy)
    run = HealthRun(results, clock.elapsed, tuple(actions))
    publish_health(run)
    return run


def remember(ws: Workspace, results: tuple[checkup.TaskHealth, ...]) -> dict[str, list[Record]]:
    """Append each verdict to its task's history; the histories, newest first."""
    log = VerdictLog(ws.ensure_state_dir())
    now = clock.now_utc()
    out = {}
    for r in results:
        if not ids.valid_task_id(r.task_id):
            continue  # a broken registry entry with a hostile id: reported, never a file name
        try:
            log.append(r.task_id, Record(now, r.rate.version, r.verdict, r.rate.samples,
                                         r.rate.failures))
            out[r.task_id] = log.recent(r.task_id)
        except ClawbackError:  # its verdict file is a link, say: that task only, not the run
            out[r.task_id] = []
    return out


def publish_health(run: HealthRun) -> None:
    if not in_flow_run():
        return
    done: dict[str, list[str]] = {}
    for a in run.actions:
        done.setdefault(a.task_id, []).append(f"{a.action}: {a.detail}")
    rows = [{**row, "action": "; ".join(done.get(row["task"], []))}
            for row in checkup.table_rows(run.results)]
    publish_table("health", rows,
                  f"Health check: {len(run.unhealthy)} unhealthy of {len(run.results)}")
