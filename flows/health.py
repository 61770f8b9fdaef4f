"""The health flow (issue 4 items 1-2): every active task's error-rate verdict and live checks in
one run, a table report (CLI and Prefect artifact ``health``), and with ``auto_rollback`` a
rollback of each breached task to its newest stable version, or an escalation when there is
none, when one already ran within the interval, or when the rollback fails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flows.rollback import run_rollback
from flows.steps import collect_timings, in_flow_run, orchestration, step
from tasks_lib import autorollback, checkup
from tasks_lib.audit import AuditLog, Stopwatch
from tasks_lib.workspace import Workspace

check_tasks = step(checkup.check_tasks, name="check-tasks")


@dataclass(frozen=True)
class Action:
    task_id: str
    action: str              # "rolled-back" | "escalated"
    from_version: str | None
    to_version: str | None
    detail: str


@dataclass(frozen=True)
class HealthRun:
    results: tuple[checkup.TaskHealth, ...]
    seconds: float
    actions: tuple[Action, ...] = ()

    @property
    def unhealthy(self) -> tuple[str, ...]:
        return tuple(r.task_id for r in self.results if r.unhealthy)


def run_health(workspace: str, task_id: str | None = None, auto_rollback: bool = False,
               min_interval_minutes: float = 60) -> HealthRun:
    """Check one task or every active task; without ``auto_rollback`` change nothing."""
    ws = Workspace.discover(workspace)
    clock = Stopwatch()
    with collect_timings():
        results = check_tasks(ws, task_id)
    actions = []
    if auto_rollback:
        for r in results:
            if r.rate.verdict == "breach":
                actions.append(_act(ws, r, timedelta(minutes=min_interval_minutes)))
    run = HealthRun(results, clock.elapsed, tuple(actions))
    publish_table(run)
    return run


def _act(ws: Workspace, r: checkup.TaskHealth, interval: timedelta) -> Action:
    entry = ws.load_registry().entry(r.task_id) or {}
    current = r.rate.version
    decision = autorollback.decide(entry, r.rate.verdict, current, datetime.now(UTC), interval)
    if decision.action == "rollback" and decision.target is not None:
        reason = autorollback.reason_for(r.rate.rate or 0.0, r.rate.threshold, r.rate.samples,
                                         r.rate.failures, current or "?")
        try:
            done = run_rollback(str(ws.root), r.task_id, decision.target, from_version=current,
                                reason=reason)
            return Action(r.task_id, "rolled-back", current, done.to_version,
                          f"{reason}; tag {done.tag}; {current} quarantined")
        except Exception as exc:  # noqa: BLE001 - any failure of the rollback is escalated
            decision = autorollback.Decision("escalate", decision.target,
                                             f"the automatic rollback to {decision.target} failed: {exc}")
    why = decision.why
    AuditLog(ws.ensure_state_dir()).append(
        "escalate", task=r.task_id, result="escalated", from_version=current,
        to_version=decision.target, reason=why, error_rate=r.rate.rate, samples=r.rate.samples,
        **orchestration())
    last_stable = (f"roll back to the last stable version (clawback rollback --task {r.task_id} "
                   f"--to {decision.target})" if decision.target else "no stable version to roll back to")
    return Action(r.task_id, "escalated", current, decision.target,
                  f"{why}; options: {last_stable}; roll back to a chosen version (clawback "
                  f"rollback --task {r.task_id} --to VERSION); or hold")


def publish_table(run: HealthRun) -> None:
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key="health", table=checkup.table_rows(run.results),
                          description=f"Health check: {len(run.unhealthy)} unhealthy of {len(run.results)}")
