"""The promote flow (SPEC §5 stable versions): mark a task's version stable in its registry
entry and commit only that entry, journaled like every other change."""

from __future__ import annotations

from dataclasses import dataclass

from flows.steps import collect_timings, orchestration, step
from tasks_lib import ids, stable
from tasks_lib.audit import AuditLog, Stopwatch, actor, utc_now
from tasks_lib.journal import Journal, undo_interrupted
from tasks_lib.locks import task_lock, workspace_lock
from tasks_lib.snapshot import commit_journaled
from tasks_lib.workspace import Workspace


@dataclass(frozen=True)
class PromoteResult:
    task_id: str
    version: str
    commit: str | None          # None: it was stable already, nothing to commit
    lifted_quarantine: bool


def _mark(ws: Workspace, task_id: str, version: str, force: bool, reason: str) -> PromoteResult:
    ws.task(task_id)  # unknown or inactive: the usual NotFound / BadInput
    reg = ws.load_registry()
    before = reg.entry(task_id) or {}
    after = stable.promoted(before, task_id, version, force=force, when=utc_now(), by=actor())
    if stable.is_stable(before, version):
        return PromoteResult(task_id, version, None, False)
    journal = Journal(ws.root, ws.state_dir, f"{task_id}-promote",
                      {"action": "promote", "task": task_id, "to": version})
    try:
        reg.set_entry(task_id, after)
        journal.restore_entry_on_undo(reg.path, task_id, before, reg.render())
        reg.save()
        why = f": {reason.strip().splitlines()[0]}" if reason.strip() else ""
        commit = commit_journaled(ws, [], f"{task_id}: promote v{version} to stable{why}", journal,
                                  task_id=task_id)
        journal.commit()
    except BaseException:
        journal.undo()
        raise
    return PromoteResult(task_id, version, commit, version in stable.quarantined(before))


mark_stable = step(_mark, name="mark-stable")


def run_promote(workspace: str, task_id: str, version: str, force: bool = False,
                reason: str = "") -> PromoteResult:
    ws = Workspace.discover(workspace)
    ids.task_id(task_id)
    version = ids.version(version)
    audit = AuditLog(ws.ensure_state_dir())
    clock = Stopwatch()
    with task_lock(ws.state_dir, task_id, "promote"), workspace_lock(ws.state_dir, "promote"), \
            collect_timings():
        undo_interrupted(ws.root, ws.state_dir, task_id, audit)
        result = mark_stable(ws, task_id, version, force, reason)
    audit.append("promote", task=task_id, to_version=version, reason=reason or None,
                 duration_s=clock.elapsed, commit=result.commit,
                 lifted_quarantine=result.lifted_quarantine, **orchestration())
    return result
