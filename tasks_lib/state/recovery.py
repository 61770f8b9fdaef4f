"""Journals left behind by a process that is gone: found, undone (``recover``), or kept as
``.failed.json`` when the undo cannot complete (docs/design.md, "Crash safety")."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core.errors import ClawbackError
from tasks_lib.state.journal import JOURNAL_DIR, Journal
from tasks_lib.state.undo_guard import operation_finished

# -- recovery ------------------------------------------------------------------------------
FAILED_SUFFIX = ".failed.json"


@dataclass(frozen=True)
class Recovery:
    name: str
    operation: dict[str, Any]
    undone: tuple[str, ...]
    failures: tuple[str, ...]
    journal: str = ""            # the journal file it came from
    kept_as: str | None = None   # where it was kept when the undo could not complete
    backups: tuple[str, ...] = ()  # refs holding newer work found (and kept) before undoing


@dataclass(frozen=True)
class Left:
    """A journal file left in ``.clawback/journal/``, as read without undoing anything."""
    path: Path
    task: str
    operation: dict[str, Any]
    pid: int | None
    host: str | None
    failed: bool                 # ``.failed.json``: an earlier undo could not complete


def interrupted(state_dir: Path, prefix: str = "") -> list[Path]:
    """Journals left behind (call while holding the lock that their operation held)."""
    folder = state_dir / JOURNAL_DIR
    return sorted(p for p in folder.glob(f"{prefix}*.json") if not p.name.endswith(FAILED_SUFFIX)) \
        if folder.is_dir() else []


def left_behind(state_dir: Path) -> list[Left]:
    """Every journal file, live or failed, in one directory listing (nothing when there is no
    journal directory). Reading is best effort: an unreadable file is still listed."""
    folder = state_dir / JOURNAL_DIR
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json") or "-" not in name:
            continue
        path = folder / name
        try:
            doc = json.loads(safefs.read_state(path).decode("utf-8"))
        except (OSError, ValueError, RecursionError, ClawbackError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        pid = doc.get("pid")
        operation = doc.get("operation")
        out.append(Left(path, name.split("-", 1)[0],
                        dict(operation) if isinstance(operation, dict) else {},
                        pid if isinstance(pid, int) else None, doc.get("host"),
                        name.endswith(FAILED_SUFFIX)))
    return out


def recover(root: Path, state_dir: Path, path: Path) -> Recovery:
    """Undo an interrupted operation from its journal file."""
    try:
        doc = json.loads(safefs.read_state(path).decode("utf-8"))
        name = path.name.removesuffix(".json")  # the file's name says whose it is, not its text
        if doc["name"] != name or not isinstance(doc["actions"], list) or \
                not all(isinstance(a, dict) for a in doc["actions"]):
            raise ValueError(f"it is not the journal {name} clawback wrote")
        operation = doc.get("operation")
        journal = Journal(root, state_dir, name, operation if isinstance(operation, dict) else {},
                          doc["actions"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError, ClawbackError) as exc:
        kept = path.with_name(path.name.removesuffix(".json") + FAILED_SUFFIX)
        path.replace(kept)
        return Recovery(path.stem, {}, (), (f"cannot read the journal: {exc}",), str(path), str(kept))
    if operation_finished(root, state_dir, journal.task, journal.operation):
        path.unlink(missing_ok=True)  # killed after its ok audit entry: the operation is complete
        return Recovery(doc["name"], journal.operation, ("nothing: the audit log records the "
                        "operation as finished; its leftover journal was removed",), (), str(path))
    failures = journal.undo()
    kept_as = str(journal.path.with_suffix(FAILED_SUFFIX)) if failures else None
    return Recovery(doc["name"], journal.operation, tuple(journal.done), tuple(failures),
                    str(path), kept_as, tuple(journal.backups))


def undo_others(root: Path, state_dir: Path, task_id: str, audit: Any) -> list[Recovery]:
    """Undo the interrupted operations of the *other* tasks (and of workspace-wide ones) whose
    writers are gone, before this operation commits: a commit on top of a killed operation's
    commit would make that one impossible to undo. The caller holds the workspace lock; a task
    whose lock is held has its operation running, and is left alone."""
    from tasks_lib.core.errors import Conflict
    from tasks_lib.core.ids import valid_task_id
    from tasks_lib.state.oplocks import task_lock

    done: list[Recovery] = []
    for other in sorted({j.task for j in left_behind(state_dir) if not j.failed} - {task_id}):
        if other == "~workspace":
            done += recover_interrupted(root, state_dir, other, audit, found_by=task_id)
            continue
        if not valid_task_id(other):
            continue
        try:
            with task_lock(state_dir, other, f"undo an interrupted operation (for {task_id})"):
                done += recover_interrupted(root, state_dir, other, audit, found_by=task_id)
        except Conflict:
            continue  # its operation is running
    return done


def recover_interrupted(root: Path, state_dir: Path, task_id: str, audit: Any,
                        found_by: str | None = None) -> list[Recovery]:
    """Undo what killed earlier operations on this task left behind, oldest journal first, each
    recorded in the audit log; stops at the first undo that cannot complete (it is the last in
    the list, with its ``failures``). The caller holds the task lock, so the writers are gone."""
    done = []
    for path in interrupted(state_dir, f"{task_id}-"):
        rec = recover(root, state_dir, path)
        audit.append("recover-interrupted", task=task_id, result="ok" if not rec.failures else "failed",
                     from_version=rec.operation.get("from"), to_version=rec.operation.get("to"),
                     reason=f"{rec.operation.get('action', 'operation')} was interrupted",
                     undone=list(rec.undone), not_undone=list(rec.failures),
                     **({"newer_work_backed_up": list(rec.backups)} if rec.backups else {}),
                     **({"found_by": found_by} if found_by else {}),
                     **({"journal_kept": rec.kept_as} if rec.kept_as else {}))
        done.append(rec)
        if rec.failures:
            break
    return done


def undo_interrupted(root: Path, state_dir: Path, task_id: str, audit: Any) -> list[Recovery]:
    """``recover_interrupted``, refusing to go on when an undo could not complete: this one
    (OperationFailed) or an earlier one whose journal was kept (Conflict, exit 3): the task is
    half put back until a person has looked."""
    from tasks_lib.core.errors import Conflict, OperationFailed

    folder = state_dir / JOURNAL_DIR
    kept = sorted(folder.glob(f"{task_id}-*{FAILED_SUFFIX}")) if folder.is_dir() else []
    if kept:
        raise Conflict(f"an earlier undo of an operation on {task_id} could not complete "
                       f"({kept[0]}); nothing more is done to {task_id} until it is resolved",
                       "`clawback status` shows what could not be undone: put that right by hand, "
                       f"then delete {kept[0].name}")
    done = recover_interrupted(root, state_dir, task_id, audit)
    if done and done[-1].failures:
        rec = done[-1]
        raise OperationFailed(
            f"an interrupted {rec.operation.get('action')} of {task_id} could not be fully undone: "
            + "; ".join(rec.failures), step="recover",
            hint=f"inspect {rec.kept_as} and the git log, fix by hand, then retry")
    return done

