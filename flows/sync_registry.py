"""The sync-registry flow (docs/design.md, "Registry sync"): make the repairs that need no guess
(tasks_lib/registry_sync.py), each task's in its own journaled operation and its own commit of
the registry only, and report what is left for a person.

One commit per task, not per run: each is then one task's entry on top of HEAD, undone alone
(the journal's registry restore and uncommit are checked against that task's entry only,
docs/design.md "Crash safety"), audited alone, and one task's failure (its lock held, its entry
edited meanwhile) leaves the other tasks' repairs made and reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from flows.operation import operation
from flows.steps import step
from tasks_lib import registry_sync
from tasks_lib.core import ids
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.snapshot import commit_journaled
from tasks_lib.state.journal import Journal


@dataclass(frozen=True)
class TaskRepair:
    task_id: str
    commit: str | None                           # None: nothing was left to do under the lock
    repairs: tuple[registry_sync.Repair, ...]


@dataclass(frozen=True)
class SyncResult:
    repaired: tuple[TaskRepair, ...]
    failed: dict[str, str] = field(default_factory=dict)      # task -> why its repair failed
    remaining: registry_sync.SyncReport | None = None         # the check after the repairs

    @property
    def ok(self) -> bool:
        return not self.failed and (self.remaining is None or self.remaining.ok)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` result: what was committed, what failed, the check afterwards."""
        return {"ok": self.ok,
                "repaired": [{"task": r.task_id, "commit": r.commit,
                              "repairs": [dataclasses.asdict(x) for x in r.repairs]}
                             for r in self.repaired if r.commit],
                "failed": dict(self.failed),
                "remaining": self.remaining.as_dict() if self.remaining else None}


def _repair(ws: Workspace, task_id: str, journal: Journal) -> TaskRepair:
    """Check the task again under its locks (the state may have moved since the first look),
    edit only its entry, commit only the registry."""
    repairs = registry_sync.check(ws, task_id).repairs().get(task_id, ())
    if not repairs:
        return TaskRepair(task_id, None, ())
    reg = ws.load_registry()
    before = reg.entry(task_id)
    assert before is not None  # check() just found the task
    reg.set_entry(task_id, registry_sync.apply(before, repairs))
    journal.restore_entry_on_undo(reg.path, task_id, before, reg.render(), reg.entry(task_id))
    reg.save()
    what = "; ".join(r.summary for r in repairs)
    commit = commit_journaled(ws, [], f"{task_id}: sync-registry: {what}", journal,
                              task_id=task_id)
    return TaskRepair(task_id, commit, repairs)


repair_entry = step(_repair, name="repair-entry")


def run_sync_registry(workspace: str, task_id: str | None = None) -> SyncResult:
    ws = Workspace.discover(workspace)
    if task_id is not None:
        ids.task_id(task_id)
    first = registry_sync.check(ws, task_id)  # bad input (unknown, deleted task) stops here
    done: list[TaskRepair] = []
    failed: dict[str, str] = {}
    for tid, repairs in first.repairs().items():
        version = next((r.version for r in repairs if r.action == "set-version"), None)
        try:
            with operation(ws, "sync-registry", tid) as op:
                before = ws.task(tid).version
                with op.changes(before, version) as journal:
                    result = repair_entry(ws, tid, journal)
                    op.succeeded(commit=result.commit,
                                 repairs=[r.summary for r in result.repairs])
            done.append(result)
        except ClawbackError as exc:
            failed[tid] = exc.message
    after = registry_sync.check(ws, task_id) if done or failed else first
    return SyncResult(tuple(done), failed, after)


def render_markdown(result: SyncResult) -> str:
    """The flow run's artifact."""
    lines = ["# clawback sync-registry", ""]
    for r in result.repaired:
        if r.commit:
            lines.append(f"- {r.task_id}: {'; '.join(x.summary for x in r.repairs)} "
                         f"(`{r.commit[:12]}`)")
    for tid, why in result.failed.items():
        lines.append(f"- {tid}: repair FAILED: {why}")
    remaining = result.remaining.needs_person() if result.remaining else ()
    if remaining:
        lines += ["", "## Needs a person", ""] + [f"- {f.line()}" for f in remaining]
    return "\n".join(lines) if len(lines) > 2 else "# clawback sync-registry\n\neverything agrees"
