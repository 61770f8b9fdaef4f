"""The promote flow (docs/design.md, "Health"): mark a task's version stable in its registry
entry and commit only that entry, journaled like every other change."""

from __future__ import annotations

from dataclasses import dataclass

from flows.operation import operation
from flows.steps import step
from tasks_lib.core import filenames as names
from tasks_lib.core import ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput
from tasks_lib.core.filenames import MAX_TEXT
from tasks_lib.core.workspace import Workspace
from tasks_lib.health import stable
from tasks_lib.secrets import masking
from tasks_lib.snapshot import commit_journaled
from tasks_lib.state.audit import actor
from tasks_lib.state.journal import Journal


@dataclass(frozen=True)
class PromoteResult:
    task_id: str
    version: str
    commit: str | None          # None: it was stable already, nothing to commit
    lifted_quarantine: bool


def _mark(ws: Workspace, task_id: str, version: str, force: bool, reason: str,
          journal: Journal) -> PromoteResult:
    reg = ws.load_registry()
    before = reg.entry(task_id) or {}
    after = stable.promoted(before, task_id, version, force=force, when=clock.format(), by=actor())
    if stable.is_stable(before, version):
        return PromoteResult(task_id, version, None, False)
    reg.set_entry(task_id, after)
    journal.restore_entry_on_undo(reg.path, task_id, before, reg.render(), reg.entry(task_id))
    reg.save()
    why = f": {reason.strip().splitlines()[0]}" if reason.strip() else ""
    commit = commit_journaled(ws, [], f"{task_id}: promote v{version} to stable{why}", journal,
                              task_id=task_id)
    return PromoteResult(task_id, version, commit, version in stable.quarantined(before))


mark_stable = step(_mark, name="mark-stable")


def run_promote(workspace: str, task_id: str, version: str, force: bool = False,
                reason: str = "") -> PromoteResult:
    ws = Workspace.discover(workspace)
    ids.task_id(task_id)
    version = ids.version(version)
    if names.has_raw_bytes(reason) or len(reason) > MAX_TEXT:
        raise BadInput("--reason is not text clawback can store (a byte that is not UTF-8, or "
                       f"longer than {MAX_TEXT} characters)", "write it as UTF-8, shorter")
    reason = masking.mask(reason, values=masking.for_workspace(ws.root))  # it lands in git
    with operation(ws, "promote", task_id) as op:
        ws.task(task_id)  # unknown or inactive: the usual NotFound / BadInput
        with op.changes(None, version) as journal:
            result = mark_stable(ws, task_id, version, force, reason, journal)
            op.succeeded(reason=reason, commit=result.commit,
                         lifted_quarantine=result.lifted_quarantine)
    return result
