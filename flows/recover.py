"""The recover flow (the operator's disaster_recovery.py): back up -> roll back -> verify the live
task at all four levels (after the restart, so the process check is real) -> recovery report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.artifacts import levels_table, save_report
from flows.rollback import render_report, run_rollback
from flows.steps import step
from tasks_lib import rollback as r
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.audit import AuditLog, Stopwatch
from tasks_lib.verify_live import Level

verify_live = step(r.verify_live, name="verify-live")


@dataclass(frozen=True)
class RecoveryResult:
    rollback: r.RollbackResult
    levels: tuple[Level, ...]
    seconds: float
    report: str

    @property
    def ok(self) -> bool:
        return all(lv.ok for lv in self.levels)


def run_recover(workspace: str, task_id: str, target_version: str, reason: str = "",
                allow_shared_install: bool = False) -> RecoveryResult:
    clock = Stopwatch()
    rolled = run_rollback(workspace, task_id, target_version, reason=reason or "disaster recovery",
                          repair=True, allow_shared_install=allow_shared_install)
    ws = Workspace.discover(workspace)
    levels = verify_live(ws, task_id, rolled.to_version)
    seconds = clock.elapsed
    text = (render_report(rolled).replace("# Rollback", "# Recovery", 1)
            + "\n## Live verification after the restart\n\n" + levels_table(levels)
            + f"\n\ntime to recovery: {seconds:.2f} s\n")
    path = save_report(ws, "recovery", task_id, text, f"Recovery of {task_id} to {rolled.to_version}")
    ok = all(lv.ok for lv in levels)
    AuditLog(ws.state_dir).append("recover", task=task_id, result="ok" if ok else "verification-failed",
                                  from_version=rolled.from_version, to_version=rolled.to_version,
                                  reason=reason or None, duration_s=seconds, report=str(path))
    return RecoveryResult(rolled, levels, seconds, str(Path(path)))
