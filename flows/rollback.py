"""The rollback flow (docs/design.md, "What a rollback guarantees"): stop → back up → restore → sync
deps → verify → commit + tag → start, each a Prefect task, with every change journaled and undone on
any failure."""

from __future__ import annotations

from pathlib import Path

from flows.artifacts import Progress, levels_table, markdown_table, save_report
from flows.diffreport import publish_rollback_diff
from flows.operation import operation
from flows.steps import step
from tasks_lib import rollback as r
from tasks_lib.core.workspace import Workspace

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
                 reason: str = "", grace_s: float = 2.0, repair: bool = False,
                 allow_shared_install: bool = False) -> r.RollbackResult:
    """Roll one task back to an earlier version, exactly, and nothing else. ``repair``: the
    current version may be the target (recover restores a damaged task over itself)."""
    ws = Workspace.discover(workspace)
    req = r.RollbackRequest(task_id, to_version, from_version, reason, repair, allow_shared_install)
    with operation(ws, "rollback", task_id) as op:
        plan = check(ws, req)
        op.details.update(reason=reason)
        progress = Progress(f"rollback-progress-{task_id}",
                            f"Rollback of {task_id} {plan.from_version} -> {plan.to_version}")
        progress.at(10, "preflight passed; preparing the environment (dependency sync)")
        env = prepare_environment(plan)  # slow, changes nothing in use: outside the changes
        progress.at(50, "environment ready; stopping, backing up and restoring")
        try:
            with op.changes(plan.from_version, plan.to_version, tag=plan.rollback_tag) as journal:
                was_running = stop_task(plan, journal)
                saved = back_up(plan)
                op.details.update(backup=saved.ref)
                files = restore_files(plan, saved, journal)
                restore_registry(plan, journal)
                python = sync_dependencies(plan, env, journal)
                progress.at(75, "files, registry and environment restored; verifying")
                levels = verify(plan, python)
                commit = commit_and_tag(plan, journal)
                pid = start_task(plan, was_running, python, journal, grace_s)
                result = r.RollbackResult(
                    task_id=task_id, from_version=plan.from_version, to_version=plan.to_version,
                    tag=plan.rollback_tag, commit=commit, backup_ref=saved.ref, files=files,
                    packages=plan.lock.packages, was_running=was_running, pid=pid, levels=levels,
                    timings=dict(op.timings))
                report = write_report(ws, result)
                op.succeeded(tag=plan.rollback_tag, commit=commit, report=str(report))
        except BaseException:
            progress.at(100, f"failed at {next(reversed(op.timings), 'preflight')}; undone")
            raise
        progress.at(100, f"done: {plan.to_version} running" if pid else f"done: {plan.to_version}")
    if not repair:  # the artifact diff-<task>: what changed (never fails the rollback)
        publish_rollback_diff(ws, task_id, plan.from_version, plan.to_version)
    return result


def render_report(res: r.RollbackResult) -> str:
    steps = markdown_table(("step", "time"), ((k, f"{v:.2f} s") for k, v in res.timings.items()))
    f = res.files
    return (f"# Rollback {res.task_id} {res.from_version} -> {res.to_version}\n\n"
            f"- tag `{res.tag}`, commit `{res.commit[:12]}`\n- backup `{res.backup_ref}`\n"
            f"- files: {len(f.changed)} changed, {len(f.added)} added, {len(f.removed)} removed\n"
            f"- packages: {', '.join(res.packages) or '(none)'}\n"
            f"- process: {'restarted, pid ' + str(res.pid) if res.was_running else 'was not running; left stopped'}\n\n"
            f"{levels_table(res.levels)}\n\n{steps}\n")


def write_report(ws: Workspace, res: r.RollbackResult) -> Path:
    return save_report(ws, "rollback", res.task_id, render_report(res),
                       f"Rollback {res.task_id} {res.from_version} -> {res.to_version}")
