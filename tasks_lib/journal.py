"""Explicit, crash-safe undo: every state-changing step records how to put things back.

The journal is a file under ``.clawback/journal/`` rewritten (atomically, fsynced) after every
recorded action, so a process killed at any point leaves behind exactly what to undo. Actions are
data, not closures: ``restore_file``, ``restore_entry`` (one task's registry entry: the exact old
bytes unless another task's change landed since, which is then kept), ``restore_index``,
``uncommit``, ``delete_tag``, ``switch_env``, ``restore_tree``, ``start_task``, ``stop_task``.
Undo runs newest first and keeps going past a failing action, so one broken undo
never strands the others; it returns what could not be undone. A journal whose process is gone
(found by the next snapshot, rollback or ``status`` that gets the same task lock) is undone by
``recover``; an undo that cannot complete keeps the journal as ``<name>.failed.json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks_lib.audit import utc_now
from tasks_lib.errors import ClawbackError
from tasks_lib.gitrepo import Git

JOURNAL_DIR = "journal"


@dataclass
class Journal:
    root: Path                    # the workspace
    state_dir: Path               # its .clawback/
    name: str                     # e.g. "snapshot-T01"
    operation: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.state_dir / JOURNAL_DIR / f"{self.name}.json"

    # -- recording -------------------------------------------------------------------------
    def add(self, kind: str, description: str, **params: Any) -> None:
        if kind not in UNDO:
            raise ValueError(f"unknown undo action {kind}")
        self.actions.append({"kind": kind, "description": description, **params})
        self._persist()

    def update_last(self, **params: Any) -> None:
        """Complete the newest action once the change it guards has happened."""
        self.actions[-1].update(params)
        self._persist()

    def restore_file_on_undo(self, path: Path) -> None:
        """Remember ``path``'s bytes (or its absence) now; undo writes them back."""
        original = path.read_bytes() if path.exists() else None
        self.add("restore_file", f"restore {path.relative_to(self.root)}",
                 path=str(path.relative_to(self.root)),
                 content=None if original is None else base64.b64encode(original).decode())

    def restore_entry_on_undo(self, path: Path, task_id: str, entry: dict[str, Any] | None,
                              new_text: str) -> None:
        """Before the registry at ``path`` is saved as ``new_text`` (with ``task_id``'s entry
        changed from ``entry``): undo writes the old bytes back if the file still holds what we
        wrote, and otherwise (another task's change landed since, e.g. after a crash) puts back
        only this task's entry, so that change is kept."""
        original = path.read_bytes()
        self.add("restore_entry", f"restore {task_id}'s entry in {path.relative_to(self.root)}",
                 path=str(path.relative_to(self.root)), task=task_id, entry=entry,
                 content=base64.b64encode(original).decode(),
                 written=hashlib.sha256(new_text.encode("utf-8")).hexdigest())

    def on_success(self, cleanup: Callable[[], None]) -> None:
        """Something to tidy once the whole operation succeeded (e.g. a saved copy)."""
        self.cleanups.append(cleanup)

    def _persist(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
               "started": self.operation.get("started") or utc_now(),
               "operation": self.operation, "actions": self.actions}
        self.operation.setdefault("started", doc["started"])
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)

    # -- ending ----------------------------------------------------------------------------
    def commit(self) -> None:
        """The operation succeeded: drop the journal, run the cleanups."""
        self.actions.clear()
        self.path.unlink(missing_ok=True)
        for cleanup in self.cleanups:
            try:
                cleanup()
            except OSError:
                pass  # tidying is best effort; the operation itself is complete
        self.cleanups.clear()

    def undo(self) -> list[str]:
        failures: list[str] = []
        while self.actions:
            action = self.actions[-1]
            try:
                UNDO[action["kind"]](self.root, action)
                self.done.append(action["description"])
            except (ClawbackError, OSError, KeyError, ValueError) as exc:
                failures.append(f"{action['description']}: {exc}")
            self.actions.pop()
            if self.actions:
                self._persist()
        if failures:
            if self.path.exists():
                self.path.replace(self.path.with_suffix(".failed.json"))
        else:
            self.path.unlink(missing_ok=True)
        return failures


# -- undo actions --------------------------------------------------------------------------
def _restore_file(root: Path, a: dict[str, Any]) -> None:
    path = root / a["path"]
    if a["content"] is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.clawback-undo")
    tmp.write_bytes(base64.b64decode(a["content"]))
    tmp.replace(path)


def _restore_entry(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib.registry import Registry

    path = root / a["path"]
    original = base64.b64decode(a["content"])
    current = path.read_bytes()
    if current == original:
        return  # never written, or already put back
    if hashlib.sha256(current).hexdigest() == a["written"]:
        _restore_file(root, a)  # ours, untouched since: the exact old bytes
        return
    if a["entry"] is None:
        raise ValueError(f"{a['path']} changed since; {a['task']} had no entry to put back")
    reg = Registry.load(path)
    reg.set_entry(a["task"], a["entry"])
    reg.save()


def _restore_index(root: Path, a: dict[str, Any]) -> None:
    saved = Path(a["saved"])
    if saved.exists():
        saved.replace(Git(root).index_path())


def _uncommit(root: Path, a: dict[str, Any]) -> None:
    """HEAD back to ``old`` if it is our commit: recorded (``new``), or, when the process died
    between moving HEAD and recording it, the commit on top of ``old`` with our message."""
    git = Git(root)
    head = git.head()
    if head == a["old"]:
        return  # HEAD never moved, or it was already put back
    new = a.get("new")
    if new is None and head is not None:
        parent = git.rev(f"{head}^") if a["old"] else None
        message = git.out("log", "-1", "--format=%B", head).strip()
        if parent == a["old"] and message == a["message"].strip():
            new = head
    if new is None:
        raise ClawbackError(f"HEAD moved to {str(head)[:12]}, which is not ours; not undoing it")
    git.uncommit(new, a["old"], [])


def _delete_tag(root: Path, a: dict[str, Any]) -> None:
    """Delete the tag we created: it did not exist before (checked under the task lock)."""
    git = Git(root)
    info = git.tag_info(a["name"])
    if info is not None and info.commit == a["commit"]:
        git.delete_tag(a["name"], info.object)


def _switch_env(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib import deps

    target = Path(a["target"]) if a["target"] else None
    deps.switch_current(Path(a["state_dir"]), a["task"], target)


def _restore_tree(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib.restore import Scope, restore_tree

    restore_tree(Git(root), Scope(root, a["location"], tuple(a["state_paths"])), a["commit"])


def _start_task(root: Path, a: dict[str, Any]) -> None:
    """Start the task again as it is now (after the other undos: its old version)."""
    from tasks_lib import deps, process
    from tasks_lib.workspace import Workspace

    ws = Workspace(root)
    task = ws.task(a["task"])
    if process.run_state(ws, task).running:
        return
    process.start(ws, task, deps.current_python(ws.state_dir, task.id))


def _stop_task(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib import process
    from tasks_lib.workspace import Workspace

    ws = Workspace(root)
    process.stop(ws, ws.task(a["task"]))


UNDO: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "restore_entry": _restore_entry,
    "restore_tree": _restore_tree,
    "start_task": _start_task,
    "stop_task": _stop_task,
    "restore_file": _restore_file,
    "restore_index": _restore_index,
    "uncommit": _uncommit,
    "delete_tag": _delete_tag,
    "switch_env": _switch_env,
}


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
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        pid = doc.get("pid")
        out.append(Left(path, name.split("-", 1)[0], dict(doc.get("operation") or {}),
                        pid if isinstance(pid, int) else None, doc.get("host"),
                        name.endswith(FAILED_SUFFIX)))
    return out


def recover(root: Path, state_dir: Path, path: Path) -> Recovery:
    """Undo an interrupted operation from its journal file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        journal = Journal(root, state_dir, doc["name"], doc.get("operation", {}), doc["actions"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        kept = path.with_name(path.name.removesuffix(".json") + FAILED_SUFFIX)
        path.replace(kept)
        return Recovery(path.stem, {}, (), (f"cannot read the journal: {exc}",), str(path), str(kept))
    failures = journal.undo()
    kept_as = str(journal.path.with_suffix(FAILED_SUFFIX)) if failures else None
    return Recovery(doc["name"], doc.get("operation", {}), tuple(journal.done), tuple(failures),
                    str(path), kept_as)


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
                     **({"found_by": found_by} if found_by else {}),
                     **({"journal_kept": rec.kept_as} if rec.kept_as else {}))
        done.append(rec)
        if rec.failures:
            break
    return done


def undo_interrupted(root: Path, state_dir: Path, task_id: str, audit: Any) -> list[Recovery]:
    """``recover_interrupted``, refusing to go on (OperationFailed) when an undo could not complete."""
    from tasks_lib.errors import OperationFailed

    done = recover_interrupted(root, state_dir, task_id, audit)
    if done and done[-1].failures:
        rec = done[-1]
        raise OperationFailed(
            f"an interrupted {rec.operation.get('action')} of {task_id} could not be fully undone: "
            + "; ".join(rec.failures), step="recover",
            hint=f"inspect {rec.kept_as} and the git log, fix by hand, then retry")
    return done
