"""What an undo may do: every action of a journal is checked against what its task owns, read
once before the first action runs (a forged or stale journal cannot reach another task's files,
commits, tags, processes or environments). See docs/design.md, "What a journal may do"."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks_lib.core.errors import ClawbackError
from tasks_lib.gitops.repo import Git

_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*==[A-Za-z0-9][A-Za-z0-9.!+_\-]*\Z")


@dataclass(frozen=True)
class Own:
    """What an undo of ``task``'s journal may touch, read once before its first action runs
    (an action never widens it for the next): the task's locations in the working registry and
    in HEAD's, its runtime-state rules there, the commits and tags finished operations made."""

    locations: frozenset[str]
    state: Any  # StatePaths | None
    finished: frozenset[str]  # commits (and tag@commit) the audit log records as finished results
    uncommits: frozenset[str]  # the commits the journal's uncommit actions would take back

    @classmethod
    def of(cls, root: Path, state_dir: Path, task: str,
           actions: Sequence[dict[str, Any]] = ()) -> Own:
        from tasks_lib.core.workspace import Workspace, committed_state

        locations: set[str] = set()
        state = None
        if task != "~workspace":
            ws = Workspace(root)
            try:
                now = ws.task(task, active=False)
                if now.location:
                    locations.add(now.location)
                state = now.state
            except ClawbackError:
                pass
            head = _head_location(ws, task)
            if head:
                locations.add(head)
            try:
                committed = committed_state(ws, task)
            except ClawbackError:
                committed = None
            if committed is not None:
                state = committed if state is None else state.union(committed)
        return cls(frozenset(locations), state, finished_results(state_dir, task),
                   frozenset(_uncommitted(root, actions)))

    def owns(self, rel: object) -> bool:
        """A path of the task's location, spelled as clawback records paths (``a//b``, ``./``
        and ``..`` never: a rule matched on one spelling must hold for the file written)."""
        if not isinstance(rel, str) or not rel or rel != posixpath.normpath(rel) or \
                rel.startswith("/") or ".." in rel.split("/"):
            return False
        return any(rel.startswith(loc + "/") for loc in self.locations)

    def is_state(self, rel: str) -> bool:
        if self.state is None:
            return False
        for loc in self.locations:
            if rel.startswith(loc + "/") and self.state.matches(rel[len(loc) + 1:]):
                return True
        return False


def _entry_in(content: object, task: str) -> dict[str, Any] | None:
    """``task``'s entry in a journal's saved registry bytes (base64), if it holds one."""
    try:
        doc = json.loads(base64.b64decode(str(content)).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    tasks = doc.get("tasks") if isinstance(doc, dict) else None
    if isinstance(tasks, dict):
        found = tasks.get(task)
    elif isinstance(tasks, list):
        found = next((e for e in tasks if isinstance(e, dict) and e.get("id") == task), None)
    else:
        found = None
    return found if isinstance(found, dict) else None


def _head_location(ws: Any, task: str) -> str | None:
    from tasks_lib.formats import registry

    raw = ws.git.show_file("HEAD", registry.REGISTRY_FILE)
    try:
        entry = registry.Registry.from_text(raw.decode("utf-8"), ws.registry_path).entry(task) \
            if raw is not None else None
    except (UnicodeDecodeError, ClawbackError):
        return None
    return _canonical(task, entry.get("location")) if entry else None


def _canonical(task: str, location: object) -> str | None:
    from tasks_lib.core.workspace import canonical_location

    try:
        return canonical_location(task, location) if isinstance(location, str) else None
    except ClawbackError:
        return None


def _uncommitted(root: Path, actions: Sequence[dict[str, Any]]) -> set[str]:
    """The commits a journal's uncommit actions name: recorded, or (killed between moving HEAD
    and recording it) HEAD when it sits on the recorded one with the recorded message."""
    found: set[str] = set()
    git = None
    for a in actions:
        if not isinstance(a, dict) or a.get("kind") != "uncommit":
            continue
        if isinstance(a.get("new"), str):
            found.add(a["new"])
            continue
        git = git or Git(root)
        head = git.head()
        if head and a.get("old") and git.rev(f"{head}^") == a.get("old") and isinstance(
                a.get("message"), str) and git.out("log", "-1", "--format=%B", head).strip() \
                == a["message"].strip():
            found.add(head)
    return found


def finished_results(state_dir: Path, task: str) -> frozenset[str]:
    """The commits and tags the audit log records as what a finished operation on ``task``
    made: a journal naming one is stale (killed after its ok entry) or forged, never undone."""
    from tasks_lib.state.audit import AuditLog

    found: set[str] = set()
    try:
        for line in AuditLog(state_dir).lines():
            if f'"{task}"' not in line or '"ok"' not in line and '"pushed-failed"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            details = entry.get("details") if isinstance(entry, dict) else None
            if entry.get("task") != task or entry.get("result") not in ("ok", "pushed-failed") \
                    or not isinstance(details, dict):
                continue
            if details.get("commit"):
                found.add(str(details["commit"]))
                if details.get("tag"):
                    found.add(f"{details['tag']}@{details['commit']}")
    except (OSError, ClawbackError, UnicodeDecodeError):
        pass
    return frozenset(found)


def operation_finished(root: Path, state_dir: Path, task: str, operation: dict[str, Any]) -> bool:
    """Does the audit log record the journal's operation as finished: its tag, on the commit
    the tag names now (a tag name deleted by hand and made again is another operation's)?"""
    tag = operation.get("tag") if isinstance(operation, dict) else None
    if not isinstance(tag, str) or not tag:
        return False
    info = Git(root).tag_info(tag)
    return info is not None and f"{tag}@{info.commit}" in finished_results(state_dir, task)


def check_action(root: Path, state_dir: Path, task: str, a: dict[str, Any],
                  own: Own | None = None) -> None:
    """An action read from a journal file is data someone could have written: it may only
    touch what an operation on ``task`` touches (ValueError, so it is not done, otherwise):
    files of the task's own location, its registry entry, one commit of its own paths made on
    top of the recorded one, a tag on that commit (never one of the branch's history), its own
    environment."""
    from tasks_lib.core import ids
    from tasks_lib.formats.registry import REGISTRY_FILE

    kind = a.get("kind")

    def bad(why: str) -> ValueError:
        return ValueError(f"refused: the journal's {kind} action {why}")

    def commit_id(value: object, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or not _HEX.match(value):
            raise bad("names no commit")

    if "task" in a and a["task"] != task:
        raise bad(f"is for task {a.get('task')!r}, not {task}")
    own = own or Own.of(root, state_dir, task, [a])
    if task == "~workspace":
        def allowed(p: object) -> bool:
            return p == ".gitignore"
    else:
        def allowed(p: object) -> bool:
            return own.owns(p) and not own.is_state(str(p))  # runtime state is never put back
    if kind == "restore_file":
        rel = a.get("path")
        if not isinstance(rel, str) or not allowed(rel) or rel == REGISTRY_FILE:
            raise bad(f"names {rel!r}, which is not a versioned file of {task}")
    elif kind == "restore_entry":
        if a.get("path") != REGISTRY_FILE:
            raise bad("names a file that is not the registry")
        for entry in (a.get("entry"), _entry_in(a.get("content"), task)):
            location = entry.get("location") if isinstance(entry, dict) else None
            if location is not None and _canonical(task, location) not in own.locations:
                raise bad(f"would move {task} to {location!r}, which is not its location")
    elif kind == "restore_index":
        saved = os.path.realpath(str(a.get("saved")))
        if not Path(saved).is_relative_to(os.path.realpath(state_dir / "tmp")):
            raise bad("names an index copy outside .clawback/tmp")
        paths = a.get("paths")
        if not (isinstance(paths, list) and all(
                isinstance(p, str) and (allowed(p) or p == REGISTRY_FILE) for p in paths)):
            raise bad(f"names paths that are not {task}'s (or none: the whole index)")
    elif kind == "uncommit":
        commit_id(a.get("old"), optional=True)
        commit_id(a.get("new"), optional=True)
        new = a.get("new")
        if new is not None:
            git = Git(root)
            if new in own.finished:
                raise bad(f"names {str(new)[:12]}, which a finished operation made (audit log)")
            if git.rev(f"{new}^") != a.get("old"):
                raise bad("names a commit that is not one commit on top of the recorded one")
            changed = git.changed_between(a["old"], new, ".") if a.get("old") else []
            mine = allowed if task == "~workspace" else own.owns
            if any(not (mine(p) or p == REGISTRY_FILE) for p in changed):
                raise bad(f"names a commit that changed files other than {task}'s")
            if REGISTRY_FILE in changed and not only_entry_differs(
                    task, git.show_file(a["old"], REGISTRY_FILE) or b"",
                    git.show_file(new, REGISTRY_FILE) or b""):
                raise bad("names a commit that changed other tasks' registry entries")
            if task != "~workspace" and task_of_commit(git, new) != task:
                raise bad(f"names a commit that is not a clawback commit of {task}")
    elif kind == "delete_tag":
        parsed = ids.parse_tag(str(a.get("name")))
        if parsed is None or parsed.task != task:
            raise bad("names no tag of this task")
        commit_id(a.get("commit"))
        git = Git(root)
        info = git.tag_info(str(a["name"]))
        head = git.head()
        if info is not None and f"{a['name']}@{info.commit}" in own.finished:
            raise bad(f"names {a['name']}, which a finished operation made (audit log)")
        if info is not None and info.commit not in own.uncommits:
            raise bad(f"names {a['name']}, a tag on a commit this operation does not take back")
        if info is not None and info.commit != head and head is not None and git.run(
                "merge-base", "--is-ancestor", str(info.commit), head, check=False).returncode == 0:
            raise bad(f"names {a['name']}, a tag of the branch's history, not one this "
                      "operation just made")
        if info is not None and info.commit in own.finished:
            raise bad(f"names {a['name']}, a tag on a commit a finished operation made")
    elif kind == "switch_env":
        from tasks_lib.deps.envs import env_root

        if os.path.realpath(str(a.get("state_dir"))) != os.path.realpath(state_dir):
            raise bad("names another state directory")
        target = a.get("target")
        if target is not None and not Path(os.path.normpath(target)).is_relative_to(
                env_root(state_dir, task)):
            raise bad("names an environment outside the task's")
    elif kind == "restore_tree":
        location = a.get("location")
        if not isinstance(location, str) or location not in own.locations:
            raise bad(f"names a location that is not {task}'s")
        commit_id(a.get("commit"))
        commit_id(a.get("written"), optional=True)
    elif kind in ("start_task", "stop_task"):
        ids.task_id(str(a.get("task", task)))
        if kind == "start_task" and "was_running" not in a:
            raise bad("does not say the task was running before the operation")
    elif kind == "restore_packages":
        from tasks_lib.core.workspace import Workspace

        configured = Workspace(root).task(task).settings.python
        if a.get("python") != configured or not os.path.isabs(configured):
            raise bad("names an interpreter that is not the task's")
        before = a.get("before")
        if not isinstance(before, list) or not all(isinstance(p, str) and _PIN.match(p)
                                                   for p in before):
            raise bad("names packages that are not name==version pins")
        if os.path.realpath(str(a.get("cwd"))) != os.path.realpath(state_dir):
            raise bad("names another directory")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_sha(entry: dict[str, Any] | None) -> str | None:
    if entry is None:
        return None
    return sha256_hex(json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def only_entry_differs(task: str, one: bytes, other: bytes) -> bool:
    """Do two registry texts hold the same document but for ``task``'s entry? (The exact old
    bytes are written back only then: a journal never puts back more than its task's entry.)"""
    def without(raw: bytes) -> object:
        doc = json.loads(raw.decode("utf-8"))
        tasks = doc.get("tasks") if isinstance(doc, dict) else None
        if isinstance(tasks, dict):
            tasks = {k: v for k, v in tasks.items() if k != task}
        elif isinstance(tasks, list):
            tasks = [e for e in tasks if not (isinstance(e, dict) and e.get("id") == task)]
        return {**doc, "tasks": tasks} if isinstance(doc, dict) else doc

    from tasks_lib.formats import jsonfmt

    try:
        for raw in (one, other):  # the strict parser: a duplicate key is no registry
            jsonfmt.parse(raw.decode("utf-8"), "task_registry.json")
        return json.dumps(without(one), sort_keys=True) == json.dumps(without(other), sort_keys=True)
    except (ValueError, RecursionError, AttributeError, ClawbackError):
        return False


def task_of_commit(git: Git, commit: str) -> str:
    """The task a clawback commit is of, from its subject (``T01 v1.2.0: ...``)."""
    subject = git.out("log", "-1", "--format=%s", commit)
    return subject.split(" ", 1)[0].rstrip(":") if subject else ""
