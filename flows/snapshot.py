"""The snapshot flow (docs/design.md, "What a snapshot guarantees"): one Prefect task per step,
explicit undo on failure."""

from __future__ import annotations

from typing import Literal

from flows.operation import operation
from flows.steps import step
from tasks_lib import snapshot as s
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.oplocks import workspace_lock

validate = step(s.prepare, name="validate")
scan_secrets = step(s.scan_secrets, name="scan-secrets")
bump_version = step(s.write_version, name="bump-version")
lock_dependencies = step(s.resolve_lock, name="lock-dependencies", retries=2)
sync_environment = step(s.sync_environment, name="sync-environment", retries=2)
commit_task = step(s.commit, name="commit")
checksum_files = step(s.build_manifest, name="checksum")
tag_snapshot = step(s.tag, name="tag")
export_manifest = step(s.export, name="export")
push_tags = step(s.push, name="push", retries=3, retry_delay_seconds=5)


def run_snapshot(
    workspace: str,
    task_id: str,
    version: str | None = None,
    bump: Literal["patch", "minor", "major"] | None = None,
    message: str = "",
    push: bool = False,
    allow_secrets: list[str] | None = None,
    adopt: bool = False,
    allow_shared_install: bool = False,
    hotfix: bool = False,
    base: str | None = None,
) -> s.SnapshotResult:
    """Snapshot one task: its files, config, registry entry and exact dependencies, tagged."""
    ws = Workspace.discover(workspace)
    req = s.SnapshotRequest(task_id=task_id, version=version, bump=bump, message=message,
                            push=push, allow_secrets=tuple(allow_secrets or ()), adopt=adopt,
                            allow_shared_install=allow_shared_install, hotfix=hotfix,
                            base=base)
    with operation(ws, "snapshot", task_id) as op:
        with workspace_lock(ws.state_dir, "snapshot"):
            plan = validate(ws, req)
            with op.changes(plan.from_version, plan.version, hold_workspace=False,
                            tag=plan.tag) as journal:
                warnings = scan_secrets(plan)
                bump_version(plan, journal)
                lk = lock_dependencies(plan)
                env = sync_environment(plan, lk, journal)
                commit_id = commit_task(plan, journal)
                snap = checksum_files(plan, commit_id, lk)
                tag_snapshot(plan, snap, journal)
                op.succeeded(reason=message, tag=plan.tag, commit=commit_id, digest=snap.digest,
                             files=len(snap.files))
            exported = export_manifest(ws, snap)
        pushed = push_error = None
        if push:
            try:
                pushed = push_tags(ws, plan, commit_id)
            except ClawbackError as exc:  # the snapshot is complete locally; report, exit 1
                push_error = str(exc)
                op.audit.append("push", task=task_id, result="failed", to_version=plan.version,
                                tag=plan.tag, error=push_error)
    return s.SnapshotResult(
        task_id=task_id, version=plan.version, from_version=plan.from_version, tag=plan.tag,
        commit=commit_id, digest=snap.digest, files=len(snap.files), packages=lk.packages,
        environment=str(env.path) if env else None, environment_reused=bool(env and env.reused),
        exported=str(exported) if exported else None, pushed=pushed, push_error=push_error,
        warnings=tuple(warnings), timings=dict(op.timings), hotfix_of=plan.hotfix_of,
    )


def render_result(r: s.SnapshotResult) -> str:
    rows = "\n".join(f"| {k} | {v:.2f} s |" for k, v in r.timings.items())
    pkgs = ", ".join(r.packages) or "(none)"
    return (f"# Snapshot {r.tag}\n\n- commit `{r.commit[:12]}`\n- files: {r.files}\n"
            f"- packages: {pkgs}\n- manifest digest `{r.digest}`\n\n| step | time |\n|---|---|\n{rows}\n")
