"""The Prefect flows: thin ``@flow`` wrappers around the compositions in this package, and the
entrypoints of prefect.yaml.

They live apart from the compositions so that a command run without the orchestrator (Prefect's
API down, or ``CLAWBACK_ORCHESTRATOR=none``) never pays for importing Prefect (~2 s here).
"""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.artifacts import publish_markdown
from flows.health import HealthRun, run_health
from flows.init import InitResult, render_init, run_init
from flows.promote import PromoteResult, run_promote
from flows.recover import RecoveryResult, run_recover
from flows.rollback import run_rollback
from flows.snapshot import render_result, run_snapshot
from tasks_lib import rollback as r
from tasks_lib import snapshot as s


@flow(name="init", log_prints=False)
def init_flow(workspace: str) -> InitResult:
    """Adopt a workspace into clawback (idempotent)."""
    result = run_init(workspace)
    publish_markdown("init", render_init(result), "Workspace adoption")
    return result


@flow(name="snapshot", log_prints=False, validate_parameters=True)
def snapshot_flow(
    workspace: str,
    task_id: str,
    version: str | None = None,
    bump: Literal["patch", "minor", "major"] | None = None,
    message: str = "",
    push: bool = False,
    allow_secrets: list[str] | None = None,
) -> s.SnapshotResult:
    """Snapshot a task version: bump, lock dependencies, commit its paths, tag with a manifest."""
    result = run_snapshot(workspace, task_id, version, bump, message, push, allow_secrets)
    publish_markdown(f"snapshot-{task_id.lower()}", render_result(result), f"Snapshot {result.tag}")
    return result


@flow(name="rollback", log_prints=False)
def rollback_flow(workspace: str, task_id: str, to_version: str, from_version: str | None = None,
                  reason: str = "", grace_s: float = 2.0) -> r.RollbackResult:
    """Roll a task back to an earlier snapshot: files, config, registry, dependencies, process."""
    return run_rollback(workspace, task_id, to_version, from_version, reason, grace_s)


@flow(name="recover", log_prints=False)
def recover_flow(workspace: str, task_id: str, target_version: str, reason: str = "") -> RecoveryResult:
    """Disaster recovery of one task: back up, roll back, verify live, report."""
    return run_recover(workspace, task_id, target_version, reason)


@flow(name="health", log_prints=False)
def health_flow(workspace: str, task_id: str | None = None, auto_rollback: bool = False,
                min_interval_minutes: float = 60, promote_after: int = 0,
                errors_before_alert: int = 3,
                rollback_via: Literal["auto", "deployment", "direct"] = "auto",
                wait_s: float = 300.0) -> HealthRun:
    """Error rate of each task's current version, process, files, packages, env vars. With
    auto_rollback a breach rolls the task back to its newest stable version (through the rollback
    deployment when the server has it), or escalates; promote_after consecutive healthy checks mark
    a version stable (0: never); errors_before_alert unreadable checks in a row escalate."""
    return run_health(workspace, task_id, auto_rollback, min_interval_minutes, promote_after,
                      errors_before_alert, rollback_via, wait_s)


@flow(name="promote", log_prints=False)
def promote_flow(workspace: str, task_id: str, version: str, force: bool = False,
                 reason: str = "") -> PromoteResult:
    """Mark a task's version stable (a target for automatic rollback)."""
    return run_promote(workspace, task_id, version, force, reason)


BY_NAME = {"init": init_flow, "snapshot": snapshot_flow, "rollback": rollback_flow,
           "recover": recover_flow, "health": health_flow, "promote": promote_flow}
