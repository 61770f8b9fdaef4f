"""The undo actions a journal records, as data: each puts one thing back, first saving newer work
it would overwrite to a backup ref (docs/design.md, "Crash safety")."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core.errors import ClawbackError
from tasks_lib.gitops.repo import Git
from tasks_lib.state.undo_guard import (
    check_action,
    entry_sha,
    only_entry_differs,
    sha256_hex,
)

RESTART_GRACE_S = 1.0  # a task the undo starts again must stay up this long to count as undone


def reason(exc: BaseException) -> str:
    if isinstance(exc, ClawbackError):
        return exc.message
    if isinstance(exc, ValueError) and str(exc).startswith("refused:"):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def _backup_ref(root: Path, task: str, present: list[str], why: str) -> str:
    """Commit ``present`` (workspace files as they are now) on top of HEAD under a backup ref."""
    from tasks_lib.gitops.restore import BACKUP_REFS, _stamp, commit_tree_of

    git = Git(root)
    state = root / ".clawback" / "tmp"
    commit = commit_tree_of(git, present, [], f"clawback backup of newer work: {why}", state)
    ref = f"{BACKUP_REFS}/{task}/{_stamp()}"
    git.run("update-ref", ref, commit, git.zero_oid())
    return ref


# -- undo actions --------------------------------------------------------------------------
def _restore_file(root: Path, a: dict[str, Any]) -> str | None:
    rel = a["path"]
    original = None if a["content"] is None else base64.b64decode(a["content"])
    current = safefs.read_bytes(root, rel)
    if current == original:
        return None  # never written, or already put back
    note = None
    if current is not None and a.get("written") and sha256_hex(current) != a["written"]:
        note = _backup_ref(root, a.get("task") or "workspace", [rel],
                           f"{rel} changed after the interrupted operation")
    if original is None:
        safefs.remove(root, rel)
    else:
        safefs.write_file(root, rel, original, executable=None)
    return note


def _restore_entry(root: Path, a: dict[str, Any]) -> str | None:
    from tasks_lib.formats.registry import Registry

    path = root / a["path"]
    original = base64.b64decode(a["content"])
    current = path.read_bytes()
    if current == original:
        return None  # never written, or already put back
    if hashlib.sha256(current).hexdigest() == a["written"] and \
            only_entry_differs(a["task"], original, current):
        _write_back(path, original)  # ours, untouched since: the exact old bytes
        return None
    reg = Registry.load(path)
    now = reg.entry(a["task"])
    note = None
    if now is not None and "entry_written" in a and \
            entry_sha(now) not in (a["entry_written"], entry_sha(a["entry"])):
        note = _backup_ref(root, a["task"], [a["path"]],
                           f"{a['task']}'s registry entry changed after the interrupted operation")
    if a["entry"] is None:
        raise ValueError(f"{a['path']} changed since; {a['task']} had no entry to put back")
    reg.set_entry(a["task"], a["entry"])
    reg.save()
    return note


def _write_back(path: Path, data: bytes) -> None:
    """The registry's old bytes, by an atomic rename of a fresh file (never through a link that
    stands where a temp file would be)."""
    mode = os.stat(path).st_mode & 0o7777 if path.exists() else 0o644
    safefs.replace_file(path, data, mode)


def _restore_index(root: Path, a: dict[str, Any]) -> None:
    """Put back the index entries of the paths the operation staged (``paths``), as the saved
    copy had them; entries of other paths (staged by someone since) are kept. Journals from
    before ``paths`` was recorded put the whole saved index back."""
    saved = Path(a["saved"])
    if not saved.exists():
        return  # already put back
    git = Git(root)
    paths = a.get("paths")
    if paths is None:
        saved.replace(git.index_path())
        return
    raw = git.run("ls-files", "-s", "-z", env={"GIT_INDEX_FILE": str(saved)}).stdout
    wanted = {p.encode("utf-8", "surrogateescape") for p in paths}
    info, present = [], set()
    for rec in raw.split(b"\0"):
        if rec:
            meta, path = rec.split(b"\t", 1)
            if path in wanted:
                present.add(path)
                info.append(meta + b"\t" + path + b"\0")
    gone = [p for p in wanted if p not in present]
    if gone:
        git.run("update-index", "--force-remove", "-z", "--stdin", input=b"".join(p + b"\0" for p in gone))
    if info:
        git.run("update-index", "-z", "--index-info", input=b"".join(info))
    saved.unlink(missing_ok=True)


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
            check_action(root, Path(root) / ".clawback", str(a["task"]),
                          {**a, "new": new})  # (one of its own task's)
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
    from tasks_lib.deps import envs as deps

    target = Path(a["target"]) if a["target"] else None
    deps.switch_current(Path(a["state_dir"]), a["task"], target)


def _restore_tree(root: Path, a: dict[str, Any]) -> str | None:
    """The task's files back as the backup commit has them; files that hold neither the
    backup's nor the written commit's content (edited after a crash) are backed up first."""
    from tasks_lib.core.workspace import Workspace, committed_state
    from tasks_lib.gitops.restore import Scope, backup, newer_files, restore_tree, target_files
    from tasks_lib.runtime.statepaths import StatePaths

    git = Git(root)
    sets = a.get("state_sets") or [a.get("state_paths") or []]
    state = StatePaths(tuple(tuple(s) for s in sets))
    ws = Workspace(root)  # what the task and HEAD treat as state now is state too: a journal
    task_now = ws.task(a["task"], active=False) if a.get("task") else None  # only adds rules
    if task_now is not None:
        committed = committed_state(ws, task_now.id)
        state = state.union(task_now.state, *([committed] if committed else []))
    scope = Scope(root, a["location"], state)
    note = None
    written = a.get("written")
    wrote = list(target_files(git, scope, written)) if written else []
    if written and newer_files(git, scope, a["commit"], written):
        task = a.get("task") or a["location"].rsplit("/", 1)[-1]
        note = backup(git, scope, task, f"clawback backup of newer work in {a['location']} "
                      "before undoing an interrupted operation", root / ".clawback" / "tmp",
                      also=wrote).ref
    restore_tree(git, scope, a["commit"], also=wrote)
    return note


def _restore_packages(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib.deps import envs as deps

    deps.restore_packages(a["python"], list(a["before"]), cwd=Path(a["cwd"]))


def _start_task(root: Path, a: dict[str, Any]) -> None:
    """Start the task again as it is now (after the other undos: its old version), if it was
    running before the operation stopped it."""
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.deps import interpreter
    from tasks_lib.runtime import process

    if a.get("was_running") is False:
        return
    ws = Workspace(root)
    task = ws.task(a["task"])
    if process.run_state(ws, task).running:
        return
    process.start(ws, task, interpreter.task_python(ws, task))
    state = process.wait_alive(ws, task, RESTART_GRACE_S)
    if state.running is False:  # e.g. its files on disk were damaged all along: say so
        raise ClawbackError(f"{task.id} was started again but exited ({state.detail})")


def _stop_task(root: Path, a: dict[str, Any]) -> None:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.runtime import process

    ws = Workspace(root)
    process.stop(ws, ws.task(a["task"]))


UNDO: dict[str, Callable[[Path, dict[str, Any]], str | None]] = {
    "restore_entry": _restore_entry,
    "restore_tree": _restore_tree,
    "start_task": _start_task,
    "stop_task": _stop_task,
    "restore_file": _restore_file,
    "restore_index": _restore_index,
    "uncommit": _uncommit,
    "delete_tag": _delete_tag,
    "switch_env": _switch_env,
    "restore_packages": _restore_packages,
}


