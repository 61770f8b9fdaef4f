"""The health flow (issue 4 item 1): every active task's error-rate verdict and live checks in
one run, a table report (CLI and Prefect artifact ``health``). Automatic rollback is next."""

from __future__ import annotations

from dataclasses import dataclass

from flows.steps import collect_timings, in_flow_run, step
from tasks_lib import checkup
from tasks_lib.audit import Stopwatch
from tasks_lib.workspace import Workspace

check_tasks = step(checkup.check_tasks, name="check-tasks")


@dataclass(frozen=True)
class HealthRun:
    results: tuple[checkup.TaskHealth, ...]
    seconds: float

    @property
    def unhealthy(self) -> tuple[str, ...]:
        return tuple(r.task_id for r in self.results if r.unhealthy)


def run_health(workspace: str, task_id: str | None = None) -> HealthRun:
    """Check one task or every active task; change nothing."""
    ws = Workspace.discover(workspace)
    clock = Stopwatch()
    with collect_timings():
        results = check_tasks(ws, task_id)
    run = HealthRun(results, clock.elapsed)
    publish_table(run)
    return run


def publish_table(run: HealthRun) -> None:
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key="health", table=checkup.table_rows(run.results),
                          description=f"Health check: {len(run.unhealthy)} unhealthy of {len(run.results)}")
