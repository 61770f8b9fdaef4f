"""The init flow (seed phase 1): .gitignore, state directory, tag and mark stable every active
task's current version that has no tag yet (the snapshot steps in adopt mode)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from flows.snapshot import run_snapshot
from flows.steps import collect_timings, orchestration, step
from tasks_lib import adopt, hooks
from tasks_lib.audit import AuditLog, Stopwatch
from tasks_lib.errors import ClawbackError
from tasks_lib.locks import workspace_lock
from tasks_lib.snapshot import SnapshotResult
from tasks_lib.workspace import Workspace


@dataclass(frozen=True)
class InitResult:
    workspace: str
    gitignore_added: tuple[str, ...]
    adopted: tuple[SnapshotResult, ...]
    already_tagged: tuple[str, ...]
    hook: hooks.HookInstall | None = None
    failures: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


def _install_gitignore(ws: Workspace) -> tuple[str, ...]:
    with workspace_lock(ws.state_dir, "init"):
        merged = adopt.merge_gitignore(ws)
        if merged.changed:
            ws.git.commit_paths([".gitignore"], "clawback: install .gitignore (seed template)",
                                ws.state_dir / "tmp")
    return merged.added


install_gitignore = step(_install_gitignore, name="install-gitignore")
install_hooks = step(hooks.install, name="install-hooks")


def run_init(workspace: str) -> InitResult:
    """Adopt a workspace: .gitignore, .clawback/, tag + mark stable each untagged active task."""
    ws = Workspace.discover(workspace)
    ws.ensure_state_dir()
    clock = Stopwatch()
    with collect_timings() as timings:
        added = install_gitignore(ws)
        hook = install_hooks(ws, sys.executable)
        todo, done = adopt.untagged_tasks(ws)
        adopted: list[SnapshotResult] = []
        failures: dict[str, str] = {}
        for task_id in todo:
            try:
                adopted.append(run_snapshot(str(ws.root), task_id, adopt=True))
            except ClawbackError as exc:
                failures[task_id] = str(exc)
    warnings = tuple(w for r in adopted for w in r.warnings)
    AuditLog(ws.state_dir).append(
        "init", result="ok" if not failures else "partial", duration_s=clock.elapsed,
        adopted=[r.tag for r in adopted], failures=sorted(failures), **orchestration())
    return InitResult(str(ws.root), added, tuple(adopted), tuple(done), hook, failures, warnings,
                      dict(timings))


def render_init(result: InitResult) -> str:
    lines = [f"- {r.tag} (`{r.commit[:12]}`, {r.files} files)" for r in result.adopted]
    return "# clawback init\n\n" + ("\n".join(lines) or "nothing to adopt")
