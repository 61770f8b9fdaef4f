"""The snapshot flow (SPEC §4, §6): one Prefect task per step, explicit undo on failure."""

from __future__ import annotations

from typing import Literal

from flows.steps import collect_timings, orchestration, step
from tasks_lib import snapshot as s
from tasks_lib.audit import AuditLog, Stopwatch
from tasks_lib.errors import ClawbackError
from tasks_lib.journal import Journal, undo_interrupted
from tasks_lib.locks import task_lock, workspace_lock
from tasks_lib.workspace import Workspace

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
) -> s.SnapshotResult:
    """Snapshot one task: its files, config, registry entry and exact dependencies, tagged."""
    ws = Workspace.discover(workspace)
    req = s.SnapshotRequest(task_id=task_id, version=version, bump=bump, message=message,
                            push=push, allow_secrets=tuple(allow_secrets or ()), adopt=adopt)
    audit = AuditLog(ws.ensure_state_dir())
    clock = Stopwatch()
    with task_lock(ws.state_dir, task_id, "snapshot"), workspace_lock(ws.state_dir, "snapshot"), \
            collect_timings() as timings:
        undo_interrupted(ws.root, ws.state_dir, task_id, audit)
        plan = validate(ws, req)
        journal = Journal(ws.root, ws.state_dir, f"{task_id}-snapshot",
                          {"action": "snapshot", "task": task_id, "from": plan.from_version,
                           "to": plan.version, "tag": plan.tag})
        try:
            warnings = scan_secrets(plan)
            bump_version(plan, journal)
            lk = lock_dependencies(plan)
            env = sync_environment(plan, lk, journal)
            commit_id = commit_task(plan, journal)
            snap = checksum_files(plan, commit_id, lk)
            tag_snapshot(plan, snap, journal)
            journal.commit()
        except BaseException as exc:
            not_undone = journal.undo()
            audit.append("snapshot", task=task_id, result="failed", from_version=plan.from_version,
                         to_version=plan.version, duration_s=clock.elapsed, error=str(exc),
                         undone=journal.done, not_undone=not_undone, **orchestration())
            if not_undone and isinstance(exc, ClawbackError):
                exc.message += "; could not undo: " + "; ".join(not_undone)
            raise
        exported = export_manifest(ws, snap)
        pushed = push_error = None
        if push:
            try:
                pushed = push_tags(ws, plan, commit_id)
            except ClawbackError as exc:  # the snapshot is complete locally; report, exit 1
                push_error = str(exc)
        audit.append("snapshot", task=task_id, result="ok" if not push_error else "pushed-failed",
                     from_version=plan.from_version, to_version=plan.version,
                     reason=message or None, duration_s=clock.elapsed, tag=plan.tag,
                     commit=commit_id, digest=snap.digest, files=len(snap.files), **orchestration())
    return s.SnapshotResult(
        task_id=task_id, version=plan.version, from_version=plan.from_version, tag=plan.tag,
        commit=commit_id, digest=snap.digest, files=len(snap.files), packages=lk.packages,
        environment=str(env.path) if env else None, environment_reused=bool(env and env.reused),
        exported=str(exported), pushed=pushed, push_error=push_error,
        warnings=tuple(warnings), timings=dict(timings),
    )


def render_result(r: s.SnapshotResult) -> str:
    rows = "\n".join(f"| {k} | {v:.2f} s |" for k, v in r.timings.items())
    pkgs = ", ".join(r.packages) or "(none)"
    return (f"# Snapshot {r.tag}\n\n- commit `{r.commit[:12]}`\n- files: {r.files}\n"
            f"- packages: {pkgs}\n- manifest digest `{r.digest}`\n\n| step | time |\n|---|---|\n{rows}\n")
