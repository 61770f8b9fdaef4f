"""The init flow (docs/design.md, "init"): .gitignore, the git hooks chosen (tasks_lib/githooks.py),
state directory, tag and mark stable every active task's current version that has no tag yet (the
snapshot steps in adopt mode)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from flows.operation import operation
from flows.snapshot import run_snapshot
from flows.steps import step
from tasks_lib import adopt, githooks
from tasks_lib.core import safefs
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.snapshot import SnapshotResult, commit_journaled
from tasks_lib.state.journal import Journal


@dataclass(frozen=True)
class InitResult:
    workspace: str
    gitignore_added: tuple[str, ...]
    adopted: tuple[SnapshotResult, ...]
    already_tagged: tuple[str, ...]
    hooks: tuple[githooks.HookChange, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


def _install_gitignore(ws: Workspace, journal: Journal) -> tuple[str, ...]:
    merged = adopt.merge_gitignore(ws)
    if merged.changed:
        data = merged.text.encode("utf-8", "surrogateescape")
        journal.restore_file_on_undo(".gitignore", data)
        safefs.write_file(ws.root, ".gitignore", data, executable=None)
        commit_journaled(ws, [".gitignore"], "clawback: install .gitignore (seed template)",
                         journal)
    return merged.added


install_gitignore = step(_install_gitignore, name="install-gitignore")
install_hooks = step(githooks.apply, name="install-hooks")


def run_init(workspace: str, hooks: str = "all") -> InitResult:
    """Adopt a workspace: .gitignore, the ``hooks`` (``all``, ``none`` or a comma list; the
    others are uninstalled), .clawback/, tag + mark stable each untagged active task."""
    wanted = githooks.parse_choice(hooks)  # before anything changes
    ws = Workspace.discover(workspace)
    ws.ensure_state_dir()
    with operation(ws, "init", None) as op:
        with op.changes() as journal:
            added = install_gitignore(ws, journal)
            changed = install_hooks(ws, sys.executable, wanted)
            op.succeeded(gitignore_added=list(added),
                         hooks={c.name: c.action for c in changed})
        todo, done = adopt.untagged_tasks(ws)
        adopted: list[SnapshotResult] = []
        failures = {b.id: str(b.error) for b in ws.scan().broken if b.status != "deleted"}
    for task_id in todo:  # each its own snapshot operation (its own locks)
        try:
            adopted.append(run_snapshot(str(ws.root), task_id, adopt=True))
        except ClawbackError as exc:
            failures[task_id] = str(exc)
    warnings = tuple(w for r in adopted for w in r.warnings)
    op.audit.append("adopt", result="ok" if not failures else "partial",
                    adopted=[r.tag for r in adopted], failures=sorted(failures))
    return InitResult(str(ws.root), added, tuple(adopted), tuple(done), changed, failures, warnings,
                      dict(op.timings))


def render_init(result: InitResult) -> str:
    lines = [f"- {r.tag} (`{r.commit[:12]}`, {r.files} files)" for r in result.adopted]
    return "# clawback init\n\n" + ("\n".join(lines) or "nothing to adopt")
