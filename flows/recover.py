"""The recover flow (the operator's disaster_recovery.py): back up -> roll back -> verify the live
task at all four levels (after the restart, so the process check is real) -> recovery report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from flows.artifacts import publish_markdown
from flows.rollback import render_report, run_rollback
from flows.steps import step
from tasks_lib import rollback as r
from tasks_lib.core import safefs
from tasks_lib.core.workspace import Workspace
from tasks_lib.secrets import masking
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
            + "\n## Live verification after the restart\n\n| level | check | result | detail |\n"
              "|---|---|---|---|\n"
            + "\n".join(f"| {lv.level} | {lv.name} | {'ok' if lv.ok else 'FAIL'} | {lv.detail} |"
                        for lv in levels)
            + f"\n\ntime to recovery: {seconds:.2f} s\n")
    text = masking.mask(text, values=masking.for_workspace(ws.root))
    folder = ws.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"recovery-{task_id}-{time.strftime('%Y%m%dT%H%M%S')}.md"
    safefs.replace_file(path, text.encode("utf-8"))
    publish_markdown(f"recovery-{task_id.lower()}", text, f"Recovery of {task_id} to {rolled.to_version}")
    ok = all(lv.ok for lv in levels)
    AuditLog(ws.state_dir).append("recover", task=task_id, result="ok" if ok else "verification-failed",
                                  from_version=rolled.from_version, to_version=rolled.to_version,
                                  reason=reason or None, duration_s=seconds, report=str(path))
    return RecoveryResult(rolled, levels, seconds, str(Path(path)))
