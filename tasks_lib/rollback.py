"""The steps of a rollback (docs/design.md, "What a rollback guarantees"): plain functions the
rollback flow composes.

preflight (nothing changes) → prepare the target's environment (built, not yet used) → stop →
back up → restore the task's files → restore its registry entry → switch its environment →
verify (files, config, smoke, readiness) → commit + rollback tag → start. A rollback is a forward
change: only the task's paths and the registry are committed, history is never rewritten, and
the version rolled back from keeps its tag and is quarantined.

One module because these are the steps of one operation in the order the flow runs them,
each a few lines over shared helpers; the mechanisms live in gitops/, deps/, runtime/ and
verify_live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tasks_lib.core import filenames, ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import (
    BadInput,
    ClawbackError,
    Conflict,
    OperationFailed,
    VerificationFailed,
)
from tasks_lib.core.workspace import Task, Workspace, committed_state
from tasks_lib.deps import envs as deps
from tasks_lib.deps import interpreter
from tasks_lib.deps.sharedenv import install_shared, refuse_shared_change
from tasks_lib.formats import registry
from tasks_lib.formats.manifest import Snapshot
from tasks_lib.gitops.restore import Backup, Scope, TreeChange, backup, plan_restore, restore_tree
from tasks_lib.runtime.statepaths import StatePaths
from tasks_lib.secrets import masking
from tasks_lib.snapshot import base_interpreter, commit_journaled
from tasks_lib.state.audit import actor
from tasks_lib.state.journal import Journal
from tasks_lib.verify_live import (
    Level,
    config_level,
    files_level,
    missing_env_vars,
    readiness_level,
    smoke_level,
)
from tasks_lib.verify_snapshot import verify_snapshot


@dataclass(frozen=True)
class RollbackRequest:
    task_id: str
    to_version: str
    from_version: str | None = None
    reason: str = ""
    repair: bool = False      # recover: the current version may be restored over itself
    allow_shared_install: bool = False  # python is a shared interpreter: may change its packages


@dataclass(frozen=True)
class RollbackPlan:
    ws: Workspace
    task: Task
    from_version: str
    to_version: str
    snapshot: Snapshot
    lock: deps.Lock
    rollback_tag: str
    reason: str
    created_at: str
    creator: str
    allow_shared_install: bool = False

    @cached_property
    def scope(self) -> Scope:
        """The task's files this rollback may touch: none that the current version (as the
        working registry and as HEAD define it) or the target treats as runtime state
        (docs/design.md, "Runtime state")."""
        target = StatePaths.recorded(self.snapshot.state_paths, self.snapshot.runtime)
        rules = self.task.state.union(target)
        committed = committed_state(self.ws, self.task.id)
        return Scope(self.ws.root, self.task.location or "",
                     rules.union(committed) if committed else rules)

    @property
    def repair(self) -> bool:
        """The current version restored over itself (recover of a damaged task)."""
        return self.from_version == self.to_version

    @property
    def commit_message(self) -> str:
        why = f": {self.reason.strip().splitlines()[0]}" if self.reason.strip() else ""
        if self.repair:
            return f"{self.task.id} v{self.to_version}: repaired from its snapshot{why}"
        return f"{self.task.id} v{self.to_version}: rollback from v{self.from_version}{why}"


@dataclass(frozen=True)
class RollbackResult:
    task_id: str
    from_version: str
    to_version: str
    tag: str
    commit: str
    backup_ref: str
    files: TreeChange
    packages: tuple[str, ...]
    was_running: bool
    pid: int | None
    levels: tuple[Level, ...]
    timings: dict[str, float] = field(default_factory=dict)


# -- preflight -----------------------------------------------------------------------------
def preflight(ws: Workspace, req: RollbackRequest) -> RollbackPlan:
    """Refuse anything that cannot succeed, before changing anything."""
    ids.task_id(req.task_id)
    if filenames.has_raw_bytes(req.reason):
        raise BadInput("--reason is not valid UTF-8 text", "write the reason in UTF-8")
    if len(req.reason) > filenames.MAX_TEXT:
        raise BadInput(f"--reason is longer than {filenames.MAX_TEXT} characters",
                       "say why in a line or two (it is the commit's subject)")
    to_version = ids.version(req.to_version)
    task = ws.task(req.task_id)
    current = ids.version(task.version or "") if task.version else None
    if current is None:
        raise BadInput(f"task {task.id} has no valid current version", "fix task_registry.json")
    if req.from_version is not None and ids.version(req.from_version) != current:
        raise Conflict(f"{task.id} is at {current}, not {ids.version(req.from_version)}",
                       f"check `clawback status`, then pass --from {current} or leave it out")
    if to_version == current and not req.repair:
        raise BadInput(f"{task.id} is already at {to_version}",
                       f"check it with `clawback verify-rollback --task {task.id} --expected {to_version}`; "
                       f"repair it in place with `clawback recover --task {task.id} --target-version "
                       f"{to_version}`")
    # NotFound (exit 2) for an unknown version; file hashes trusted from an earlier full check
    # of this very tag object, since level 1 hashes every restored file against the manifest
    check = verify_snapshot(ws, task.id, to_version, trust_cache=True)
    if not check.ok or check.snapshot is None:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in check.failures)
        raise VerificationFailed(f"snapshot {check.tag} does not verify ({failed})",
                                 "it cannot be restored exactly; pick another version")
    snap = check.snapshot
    if snap.location != task.location:
        raise Conflict(f"{task.id} moved from {snap.location} to {task.location} since {to_version}",
                       "move it back, or restore that version by hand")
    unset = missing_env_vars(snap)
    if unset:
        raise OperationFailed(f"{task.id} {to_version} needs environment variables that are not set: "
                              f"{', '.join(unset)}", step="preflight",
                              hint="set them where clawback runs (names only are recorded), then retry")
    busy = ws.git.operation_in_progress()
    if busy:
        raise Conflict(f"{busy} is in progress in the workspace", "finish or abort it, then retry")
    lock = deps.Lock.from_text(snap.python_lock)
    if task.settings.python not in ("venv", "none"):
        refuse_shared_change(task, lock, req.allow_shared_install)
    plan = RollbackPlan(ws=ws, task=task, from_version=current, to_version=to_version, snapshot=snap,
                lock=lock, rollback_tag=_free_tag(ws, task.id, to_version, current),
                reason=masking.mask(req.reason, values=masking.for_workspace(ws.root)),
                created_at=clock.format(), creator=actor(),
                allow_shared_install=req.allow_shared_install)
    # a submodule or an unmerged path, a name git will not store: refused before any change
    live = plan.scope.inventory(ws.git, [f.path for f in snap.files]).live
    filenames.refuse_unstorable(ws.git, ws.root, list(live),
                            "the rollback would remove {it}, and its backup could not keep {it}")
    return plan


def _free_tag(ws: Workspace, task_id: str, to_version: str, from_version: str) -> str:
    """The first free of the rollback tag, ``-2``, ``-3``, …: candidates are looked up by name,
    a few per git call (listing tags by pattern reads every loose tag of every task)."""
    n = 1
    while True:
        names = [ids.rollback_tag(task_id, to_version, from_version, k) for k in range(n, n + 8)]
        found = ws.git.object_ids([f"refs/tags/{name}" for name in names])
        free = [name for name in names if found[f"refs/tags/{name}"] is None]
        if free:
            return free[0]
        n += 8


def dry_run(plan: RollbackPlan) -> dict[str, object]:
    """What a rollback would do, changing nothing."""
    from tasks_lib.runtime.process import run_state

    change = plan_restore(plan.ws.git, plan.scope, plan.snapshot.git_commit)
    py = deps.current_python(plan.ws.state_dir, plan.task.id)
    have = deps.installed(py) if py and plan.task.settings.python == "venv" else ()
    state = run_state(plan.ws, plan.task)
    return {
        "task": plan.task.id, "from": plan.from_version, "to": plan.to_version,
        "tag": plan.rollback_tag, "files": change,
        "packages_removed": sorted(set(have) - set(plan.lock.packages)),
        "packages_added": sorted(set(plan.lock.packages) - set(have)),
        "process": ("stop, then start the restored version" if state.running
                    else "not running: it stays stopped" if state.running is False
                    else "not managed by clawback"),
    }


# -- environment ---------------------------------------------------------------------------
def prepare_environment(plan: RollbackPlan) -> deps.EnvInfo | None:
    """Build (or find) the target's environment without using it yet."""
    if plan.task.settings.python != "venv":
        return None
    return deps.ensure_env(plan.ws.ensure_state_dir(), plan.task.id, plan.lock,
                           base_interpreter(plan.ws, plan.task), verify=True, switch=False)


def switch_environment(plan: RollbackPlan, env: deps.EnvInfo | None, journal: Journal) -> Path | None:
    mode = plan.task.settings.python
    if mode == "none":
        return None
    if mode != "venv":
        install_shared(plan.ws, plan.task, plan.lock, journal, plan.allow_shared_install)
        return Path(mode)
    assert env is not None
    state = plan.ws.state_dir
    journal.add("switch_env", f"switch {plan.task.id}'s environment back", state_dir=str(state),
                task=plan.task.id, target=_link(state, plan.task.id))
    deps.switch_current(state, plan.task.id, env.path)
    return env.python


def _link(state: Path, task_id: str) -> str | None:
    link = deps.env_root(state, task_id) / "current"
    return str(link.parent / link.readlink()) if link.is_symlink() else None


# -- files and registry --------------------------------------------------------------------
def back_up(plan: RollbackPlan) -> Backup:
    return backup(plan.ws.git, plan.scope, plan.task.id,
                  f"clawback backup of {plan.task.id} {plan.from_version} before rollback to "
                  f"{plan.to_version}", plan.ws.ensure_state_dir() / "tmp",
                  also=[f.path for f in plan.snapshot.files])


def restore_files(plan: RollbackPlan, saved: Backup, journal: Journal) -> TreeChange:
    scope = plan.scope
    journal.add("restore_tree", f"restore {plan.task.id}'s files from {saved.ref}",
                task=plan.task.id, location=scope.location,
                state_sets=[list(s) for s in scope.state.sets], commit=saved.commit,
                written=plan.snapshot.git_commit)
    return restore_tree(plan.ws.git, scope, plan.snapshot.git_commit)


def restore_registry(plan: RollbackPlan, journal: Journal) -> None:
    """The entry as the target version defined it, with history kept and this rollback added."""
    reg = plan.ws.load_registry()
    current = reg.entry(plan.task.id) or {}
    entry = {k: v for k, v in plan.snapshot.registry_entry.items() if k not in registry.HISTORY_KEYS}
    snapshots = [dict(s) for s in current.get("snapshots") or []]
    for record in snapshots:
        if record.get("version") == plan.from_version and not plan.repair:
            record["quarantined"] = True
    entry["snapshots"] = snapshots
    target_rules = set(StatePaths.recorded(plan.snapshot.state_paths, plan.snapshot.runtime).patterns)
    kept = [p for p in plan.task.state.patterns if p not in target_rules and not p.startswith("!")]
    entry["rollback_history"] = [*(current.get("rollback_history") or []), {
        "from_version": plan.from_version, "to_version": plan.to_version,
        # now, with the old version stopped: the health check counts the target's runs from here
        "rolled_back_at": clock.format(), "reason": plan.reason, "tag": plan.rollback_tag,
        "by": plan.creator,
        # the leaving version's state rules stay in force (tasks_lib/runtime/statepaths.py)
        **({"state_kept": kept} if kept else {}),
    }]
    reg.set_entry(plan.task.id, entry)
    journal.restore_entry_on_undo(reg.path, plan.task.id, current or None, reg.render(),
                                  reg.entry(plan.task.id))
    reg.save()


# -- verify, commit ------------------------------------------------------------------------
def verify(plan: RollbackPlan, python: Path | None) -> tuple[Level, ...]:
    """Levels 1-3 and readiness before start; a failure undoes the rollback."""
    task = plan.ws.task(plan.task.id)
    levels = [files_level(plan.ws, task, plan.snapshot, plan.scope),
              config_level(plan.ws, task, plan.snapshot)]
    levels.append(smoke_level(plan.ws, task, python or interpreter.task_python(plan.ws, task)))
    levels.append(readiness_level(plan.ws, task, plan.snapshot, python, should_run=False))
    failed = [lv for lv in levels if not lv.ok]
    if failed:
        raise VerificationFailed(
            "verification failed: " + "; ".join(f"level {lv.level} {lv.name}: {lv.detail}" for lv in failed),
            "the rollback was undone; fix the cause (see the report) and retry")
    return tuple(levels)


def commit_and_tag(plan: RollbackPlan, journal: Journal) -> str:
    ws = plan.ws
    inv = plan.scope.inventory(ws.git, [f.path for f in plan.snapshot.files])
    new = commit_journaled(ws, list(inv.live), plan.commit_message, journal, task_id=plan.task.id,
                           removed=list(inv.gone))
    journal.add("delete_tag", f"delete tag {plan.rollback_tag}", name=plan.rollback_tag, commit=new)
    ws.git.create_tag(plan.rollback_tag, new,
                      f"{plan.commit_message}\n\nrestores {plan.snapshot.git_tag} "
                      f"({plan.snapshot.git_commit}); the bad version's tag stays.\n")
    return new


# -- run control ---------------------------------------------------------------------------
def stop(plan: RollbackPlan, journal: Journal) -> bool:
    """Stop the task. "Start it again" is journaled *before* the stop (a kill during the stop
    must not leave the task down with nothing to restart it), and dropped when the task turns
    out not to have been running. Returns was_running."""
    from tasks_lib.runtime import process

    task = plan.task
    before = process.run_state(plan.ws, task)
    may_run = task.settings.run.type != "none" and before.running is not False
    if may_run:
        journal.add("start_task", f"start {task.id} {plan.from_version} again",
                    task=task.id, was_running=before.running)
    result = process.stop(plan.ws, task)
    if may_run and not result.was_running:
        journal.update_last(was_running=False)
    return result.was_running


def start(plan: RollbackPlan, was_running: bool, python: Path | None, journal: Journal,
          grace_s: float) -> int | None:
    """Start the restored version only if the task was running; it must stay up ``grace_s``."""
    from tasks_lib.runtime import process

    if not was_running:
        return None
    task = plan.ws.task(plan.task.id)  # the restored entry: its run settings may differ
    journal.add("stop_task", f"stop the restored {task.id}", task=task.id)
    process.start(plan.ws, task, python)
    state = process.wait_alive(plan.ws, task, grace_s)
    if state.running is False:  # None: unknown (a command without a pidfile), not a failure
        raise OperationFailed(f"{task.id} {plan.to_version} exited within {grace_s:g}s of starting "
                              f"({state.detail})", step="start",
                              hint=f"see .clawback/run/{task.id}.out for its output")
    return state.pid


def verify_live(ws: Workspace, task_id: str, expected: str) -> tuple[Level, ...]:
    """All four levels against the live state (verify-rollback)."""
    from tasks_lib.runtime.process import pidfile, run_state
    from tasks_lib.verify_snapshot import load_snapshot

    task = ws.task(task_id)
    _, parsed = load_snapshot(ws, task_id, ids.version(expected))
    snap = parsed.snapshot
    mode = task.settings.python
    python = deps.current_python(ws.state_dir, task.id) if mode == "venv" else (
        Path(mode) if mode != "none" else None)
    should_run = task.settings.run.type == "process" and pidfile(ws, task).exists() \
        or task.settings.run.type == "systemd" and bool(run_state(ws, task).running)
    levels = [files_level(ws, task, snap), config_level(ws, task, snap)]
    try:
        levels.append(smoke_level(ws, task, python or interpreter.task_python(ws, task)))
    except ClawbackError as exc:
        levels.append(Level(3, "smoke", False, exc.message))
    levels.append(readiness_level(ws, task, snap, python, should_run))
    return tuple(levels)
