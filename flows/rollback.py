"""The rollback flow (SPEC §6-§7): stop → back up → restore → sync deps → verify → commit + tag →
start, each a Prefect task, with every change journaled and undone on any failure."""

from __future__ import annotations

import time
from pathlib import Path

from flows.artifacts import Progress, publish_markdown
from flows.steps import collect_timings, exclusive, orchestration, step
from tasks_lib import rollback as r
from tasks_lib.audit import AuditLog, Stopwatch
from tasks_lib.errors import ClawbackError, OperationFailed
from tasks_lib.journal import Journal, undo_interrupted
from tasks_lib.locks import task_lock, workspace_lock
from tasks_lib.workspace import Workspace

check = step(r.preflight, name="preflight")
prepare_environment = step(r.prepare_environment, name="prepare-environment", retries=2)
stop_task = step(r.stop, name="stop")
back_up = step(r.back_up, name="back-up")
restore_files = step(r.restore_files, name="restore-files")
restore_registry = step(r.restore_registry, name="restore-registry")
sync_dependencies = step(r.switch_environment, name="sync-dependencies", retries=1)
verify = step(r.verify, name="verify")
commit_and_tag = step(r.commit_and_tag, name="commit-and-tag")
start_task = step(r.start, name="start")


def run_rollback(workspace: str, task_id: str, to_version: str, from_version: str | None = None,
                 reason: str = "", grace_s: float = 2.0, repair: bool = False) -> r.RollbackResult:
    """Roll one task back to an earlier version, exactly, and nothing else. ``repair``: the
    current version may be the target (recover restores a damaged task over itself)."""
    ws = Workspace.discover(workspace)
    audit = AuditLog(ws.ensure_state_dir())
    clock = Stopwatch()
    req = r.RollbackRequest(task_id, to_version, from_version, reason, repair)
    with task_lock(ws.state_dir, task_id, "rollback"), exclusive("rollback", task_id, ws.root), \
            collect_timings() as timings:
        with workspace_lock(ws.state_dir, "rollback"):  # the undo may rewrite the registry
            undo_interrupted(ws.root, ws.state_dir, task_id, audit)
        plan = check(ws, req)
        progress = Progress(f"rollback-progress-{task_id}",
                            f"Rollback of {task_id} {plan.from_version} -> {plan.to_version}")
        progress.at(10, "preflight passed; preparing the environment (dependency sync)")
        env = prepare_environment(plan)
        progress.at(50, "environment ready; stopping, backing up and restoring")
        journal = Journal(ws.root, ws.state_dir, f"{task_id}-rollback",
                          {"action": "rollback", "task": task_id, "from": plan.from_version,
                           "to": plan.to_version, "tag": plan.rollback_tag})
        saved = None
        with workspace_lock(ws.state_dir, "rollback"):
            try:
                was_running = stop_task(plan, journal)
                saved = back_up(plan)
                files = restore_files(plan, saved, journal)
                restore_registry(plan, journal)
                python = sync_dependencies(plan, env, journal)
                progress.at(75, "files, registry and environment restored; verifying")
                levels = verify(plan, python)
                commit = commit_and_tag(plan, journal)
                pid = start_task(plan, was_running, python, journal, grace_s)
                journal.commit()
            except BaseException as exc:
                failed_step = next(reversed(timings), "preflight")
                not_undone = journal.undo()
                audit.append("rollback", task=task_id, result="failed", from_version=plan.from_version,
                             to_version=plan.to_version, reason=reason or None,
                             duration_s=clock.elapsed, step=failed_step, error=str(exc),
                             backup=saved.ref if saved else None, undone=journal.done,
                             not_undone=not_undone, **orchestration())
                progress.at(100, f"failed at {failed_step}; undone")
                raise _failed_at(failed_step, exc, not_undone) from exc
    progress.at(100, f"done: {plan.to_version} running" if pid else f"done: {plan.to_version}")
    result = r.RollbackResult(
        task_id=task_id, from_version=plan.from_version, to_version=plan.to_version,
        tag=plan.rollback_tag, commit=commit, backup_ref=saved.ref, files=files,
        packages=plan.lock.packages, was_running=was_running, pid=pid, levels=levels,
        timings=dict(timings))
    report = write_report(ws, result)
    audit.append("rollback", task=task_id, result="ok", from_version=plan.from_version,
                 to_version=plan.to_version, reason=reason or None, duration_s=clock.elapsed,
                 tag=plan.rollback_tag, commit=commit, backup=saved.ref, report=str(report),
                 **orchestration())
    return result


def _failed_at(step_name: str, exc: BaseException, not_undone: list[str]) -> ClawbackError:
    undone = "everything was put back" if not not_undone else "COULD NOT UNDO: " + "; ".join(not_undone)
    if isinstance(exc, ClawbackError):
        exc.message = f"rollback failed at step {step_name}: {exc.message} ({undone})"
        return exc
    return OperationFailed(f"rollback failed at step {step_name}: {type(exc).__name__}: {exc} ({undone})",
                           step=step_name, hint="the backup and the audit log name what was kept")


def render_report(res: r.RollbackResult) -> str:
    steps = "\n".join(f"| {k} | {v:.2f} s |" for k, v in res.timings.items())
    levels = "\n".join(f"| {lv.level} | {lv.name} | {'ok' if lv.ok else 'FAIL'} | {lv.detail} |"
                       for lv in res.levels)
    f = res.files
    return (f"# Rollback {res.task_id} {res.from_version} -> {res.to_version}\n\n"
            f"- tag `{res.tag}`, commit `{res.commit[:12]}`\n- backup `{res.backup_ref}`\n"
            f"- files: {len(f.changed)} changed, {len(f.added)} added, {len(f.removed)} removed\n"
            f"- packages: {', '.join(res.packages) or '(none)'}\n"
            f"- process: {'restarted, pid ' + str(res.pid) if res.was_running else 'was not running; left stopped'}\n\n"
            f"| level | check | result | detail |\n|---|---|---|---|\n{levels}\n\n"
            f"| step | time |\n|---|---|\n{steps}\n")


def write_report(ws: Workspace, res: r.RollbackResult) -> Path:
    folder = ws.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rollback-{res.task_id}-{time.strftime('%Y%m%dT%H%M%S')}.md"
    text = render_report(res)
    path.write_text(text, encoding="utf-8")
    publish_markdown(f"rollback-{res.task_id.lower()}", text,
                     f"Rollback {res.task_id} {res.from_version} -> {res.to_version}")
    return path
