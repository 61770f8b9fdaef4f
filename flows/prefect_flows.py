"""The Prefect flows: thin ``@flow`` wrappers around the compositions in this package, and the
entrypoints of prefect.yaml.

They live apart from the compositions so that a command run without the orchestrator (Prefect's
API down, or ``CLAWBACK_ORCHESTRATOR=none``) never pays for importing Prefect (~2 s here).

Each wrapper first passes its ``workspace`` through ``confine`` (flows/confine.py): a
deployment's flow run acts only on its worker's workspace, and any other is refused before
either directory is touched.
"""

from __future__ import annotations

from typing import Annotated, Literal

from prefect import flow
from pydantic import Field

from flows.artifacts import publish_markdown
from flows.confine import confine
from flows.health import HealthRun, run_health
from flows.init import InitResult, render_init, run_init
from flows.promote import PromoteResult, run_promote
from flows.recover import RecoveryResult, run_recover
from flows.rollback import run_rollback
from flows.snapshot import render_result, run_snapshot
from flows.sync_registry import SyncResult, render_markdown, run_sync_registry
from tasks_lib import rollback as r
from tasks_lib import snapshot as s
from tasks_lib.core import ids

# The parameter types. The UI renders each as a form field (a dropdown for a Literal) described
# by the flow docstring's Args section, and the server rejects a value that breaks a pattern or a
# bound when the run is created, before any worker sees it.
TaskId = Annotated[str, Field(pattern=ids.TASK_ID_PATTERN, examples=["T01"])]
Version = Annotated[str, Field(pattern=ids.VERSION_PATTERN,
                                examples=["1.2.0", "1.2.0-hotfix-20260224"])]
Reason = Annotated[str, Field(max_length=500)]
_HOOK = "(pre-commit|pre-push|post-merge|post-checkout)"
Hooks = Annotated[str, Field(pattern=rf"^(all|none|{_HOOK}(,{_HOOK})*)$", examples=["all"])]


@flow(name="init", log_prints=False)
def init_flow(workspace: str, hooks: Hooks = "all") -> InitResult:
    """Adopt a workspace into clawback (idempotent).

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        hooks: the git hooks to have installed (all, none, or a comma list of pre-commit, pre-push, post-merge, post-checkout); the others are uninstalled, the operator's own hooks put back.
    """
    workspace = confine(workspace)
    result = run_init(workspace, hooks)
    publish_markdown("init", render_init(result), "Workspace adoption")
    return result


@flow(name="snapshot", log_prints=False)
def snapshot_flow(
    workspace: str,
    task_id: TaskId,
    version: Version | None = None,
    bump: Literal["patch", "minor", "major"] | None = None,
    message: Annotated[str, Field(max_length=2000)] = "",
    push: bool = False,
    allow_secrets: list[str] | None = None,
    allow_shared_install: bool = False,
    hotfix: bool = False,
    base: Version | None = None,
) -> s.SnapshotResult:
    """Snapshot a task version: bump, lock dependencies, commit its paths, tag with a manifest.

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: the task's id in task_registry.json, e.g. T01.
        version: the new version x.y.z; empty: bump the current one.
        bump: which part of the version to bump when no version is given.
        message: what changed (the commit message).
        push: push the commit and the tag to the remote.
        allow_secrets: config keys allowed to hold a plaintext value (names, never values).
        allow_shared_install: the task's python is a shared interpreter: allow changing its packages.
        hotfix: a hotfix release BASE-hotfix-YYYYMMDD of the working tree, on top of a stable version (no version or bump then).
        base: with hotfix: the stable version it fixes; empty: the current version's base.
    """
    workspace = confine(workspace)
    result = run_snapshot(workspace, task_id, version, bump, message, push, allow_secrets,
                          allow_shared_install=allow_shared_install, hotfix=hotfix, base=base)
    publish_markdown(f"snapshot-{task_id.lower()}", render_result(result), f"Snapshot {result.tag}")
    return result


@flow(name="rollback", log_prints=False)
def rollback_flow(workspace: str, task_id: TaskId, to_version: Version,
                  from_version: Version | None = None, reason: Reason = "",
                  grace_s: Annotated[float, Field(ge=0, le=600)] = 2.0,
                  allow_shared_install: bool = False) -> r.RollbackResult:
    """Roll a task back to an earlier snapshot: files, config, registry, dependencies, process.

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: the task's id in task_registry.json, e.g. T01.
        to_version: the snapshot version to roll back to, e.g. 1.2.0.
        from_version: refuse unless the task is at this version (guards a stale view); empty: any.
        reason: why (kept in the rollback history, the commit message and the audit log).
        grace_s: seconds the restarted task must stay up.
        allow_shared_install: the task's python is a shared interpreter: allow changing its packages.
    """
    workspace = confine(workspace)
    return run_rollback(workspace, task_id, to_version, from_version, reason, grace_s,
                        allow_shared_install=allow_shared_install)


@flow(name="recover", log_prints=False)
def recover_flow(workspace: str, task_id: TaskId, target_version: Version,
                 reason: Reason = "", allow_shared_install: bool = False) -> RecoveryResult:
    """Disaster recovery of one task: back up, roll back, verify live, report.

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: the task's id in task_registry.json, e.g. T01.
        target_version: the version to recover to; the current one repairs the task in place.
        reason: why (kept in the rollback history, the commit message and the audit log).
        allow_shared_install: the task's python is a shared interpreter: allow changing its packages.
    """
    workspace = confine(workspace)
    return run_recover(workspace, task_id, target_version, reason,
                       allow_shared_install=allow_shared_install)


@flow(name="health", log_prints=False)
def health_flow(
    workspace: str,
    task_id: TaskId | None = None,
    auto_rollback: bool = False,
    min_interval_minutes: Annotated[float, Field(ge=0)] = 60,
    promote_after: Annotated[int, Field(ge=0)] = 0,
    errors_before_alert: Annotated[int, Field(ge=1)] = 3,
    rollback_via: Literal["auto", "deployment", "direct"] = "auto",
    wait_s: Annotated[float, Field(ge=0, le=3600)] = 300.0,
) -> HealthRun:
    """Health check: the error rate of each task's current version, process, files, packages,
    environment variables; what to do about it.

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: one task; empty: every active task.
        auto_rollback: roll a breached task back to its newest stable version, or escalate.
        min_interval_minutes: at most one automatic rollback per task in this time.
        promote_after: mark a version stable after this many healthy checks in a row (0: never).
        errors_before_alert: escalate when the health source could not be read this many checks in a row.
        rollback_via: auto: the rollback deployment when the server has it, else in this run.
        wait_s: how long to wait for a rollback flow run before reporting it as still running.
    """
    workspace = confine(workspace)
    return run_health(workspace, task_id, auto_rollback, min_interval_minutes, promote_after,
                      errors_before_alert, rollback_via, wait_s)


@flow(name="promote", log_prints=False)
def promote_flow(workspace: str, task_id: TaskId, version: Version, force: bool = False,
                 reason: Reason = "") -> PromoteResult:
    """Mark a task's version stable (a target for automatic rollback).

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: the task's id in task_registry.json, e.g. T01.
        version: the version to mark stable.
        force: promote a quarantined version, lifting the quarantine.
        reason: why (the commit message and the audit log).
    """
    workspace = confine(workspace)
    return run_promote(workspace, task_id, version, force, reason)


@flow(name="sync-registry", log_prints=False)
def sync_registry_flow(workspace: str, task_id: TaskId | None = None) -> SyncResult:
    """Reconcile the registry with the configs' versions and the version tags: add records for
    tags made elsewhere, set a version to its config's when that is tagged (one commit of the
    registry per task); list what needs a person.

    Args:
        workspace: the workspace directory; a deployment's run: only its worker's ($CLAWBACK_WORKSPACE).
        task_id: one task; empty: every active task.
    """
    workspace = confine(workspace)
    result = run_sync_registry(workspace, task_id)
    publish_markdown("sync-registry", render_markdown(result), "Registry sync")
    return result


BY_NAME = {"init": init_flow, "snapshot": snapshot_flow, "rollback": rollback_flow,
           "recover": recover_flow, "health": health_flow, "promote": promote_flow,
           "sync-registry": sync_registry_flow}
