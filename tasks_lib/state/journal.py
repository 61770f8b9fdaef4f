"""Explicit, crash-safe undo: every state-changing step records how to put things back.

The journal is a file under ``.clawback/journal/`` rewritten (atomically, fsynced) after every
recorded action, so a process killed at any point leaves behind exactly what to undo. Actions are
data, not closures: ``restore_file``, ``restore_entry`` (one task's registry entry: the exact old
bytes unless another task's change landed since, which is then kept), ``restore_index``,
``uncommit``, ``delete_tag``, ``switch_env``, ``restore_tree``, ``start_task``, ``stop_task``,
``restore_packages`` (a shared interpreter's packages).
Undo runs newest first and keeps going past a failing action (any error, a journal that can no
longer be written included), so one broken undo never strands the others; it returns what could
not be undone. A journal whose process is gone (found by the next snapshot, rollback or
``status`` that gets the same task lock) is undone by ``recover``; an undo that cannot complete
keeps the journal as ``<name>.failed.json``.

An undo never destroys work done after the change it undoes (after a crash, the next undo may
run hours later): a file, the task's files or its registry entry that hold neither what the
operation found nor what it wrote are first committed to a backup ref
(``refs/clawback/backups/<task>/<time>``, named in ``Journal.backups`` and the audit log), and
only then put back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import ClawbackError
from tasks_lib.gitops.repo import Git

JOURNAL_DIR = "journal"
RESTART_GRACE_S = 1.0  # a task the undo starts again must stay up this long to count as undone


@dataclass
class Journal:
    root: Path                    # the workspace
    state_dir: Path               # its .clawback/
    name: str                     # e.g. "snapshot-T01"
    operation: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)  # refs holding newer work an undo met
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.state_dir / JOURNAL_DIR / f"{self.name}.json"

    @property
    def task(self) -> str:
        """The task the journal's operation is on (names are ``<task>-<operation>``)."""
        return self.name.split("-", 1)[0]

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

    def restore_file_on_undo(self, rel: str, new: bytes) -> None:
        """Before the workspace file ``rel`` is replaced by ``new``: remember its bytes (or its
        absence); undo writes them back (newer work found there is backed up first)."""
        original = safefs.read_bytes(self.root, rel)
        self.add("restore_file", f"restore {rel}", path=rel, task=self.task,
                 content=None if original is None else base64.b64encode(original).decode(),
                 written=_sha(new))

    def restore_entry_on_undo(self, path: Path, task_id: str, entry: dict[str, Any] | None,
                              new_text: str, new_entry: dict[str, Any] | None) -> None:
        """Before the registry at ``path`` is saved as ``new_text`` (with ``task_id``'s entry
        changed from ``entry``): undo writes the old bytes back if the file still holds what we
        wrote, and otherwise (another task's change landed since, e.g. after a crash) puts back
        only this task's entry, so that change is kept; ``new_entry`` is the entry as written
        (an edit of it found by the undo is newer work: backed up first)."""
        original = path.read_bytes()
        self.add("restore_entry", f"restore {task_id}'s entry in {path.relative_to(self.root)}",
                 path=str(path.relative_to(self.root)), task=task_id, entry=entry,
                 content=base64.b64encode(original).decode(),
                 written=hashlib.sha256(new_text.encode("utf-8")).hexdigest(),
                 entry_written=_entry_sha(new_entry))

    def on_success(self, cleanup: Callable[[], None]) -> None:
        """Something to tidy once the whole operation succeeded (e.g. a saved copy)."""
        self.cleanups.append(cleanup)

    def _persist(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
               "started": self.operation.get("started") or clock.format(),
               "operation": self.operation, "actions": self.actions}
        self.operation.setdefault("started", doc["started"])
        safefs.replace_file(self.path, json.dumps(doc, ensure_ascii=True).encode("ascii"))

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
        """Undo every recorded action, newest first; what could not be undone, with why.

        Every action is tried whatever happened to the others. The journal file is rewritten
        after each one (a kill during the undo leaves exactly what is left to do); when it can
        no longer be written, the undo carries on and says so."""
        failures: list[str] = []
        unsaved = False
        own = _Own.of(self.root, self.state_dir, self.task, self.actions)  # (before any undo)
        while self.actions:
            action = {"task": self.task, **self.actions[-1]}  # (no task named: the journal's)
            try:
                _check_action(self.root, self.state_dir, self.task, action, own)
                note = UNDO[action["kind"]](self.root, action)
                self.done.append(action["description"])
                if note:
                    self.backups.append(note)
            except Exception as exc:  # noqa: BLE001 - one broken undo must not strand the others
                failures.append(f"{action.get('description', action.get('kind'))}: "
                                f"{_reason(exc)}")
            self.actions.pop()
            if self.actions and not unsaved:
                try:
                    self._persist()
                except OSError as exc:
                    unsaved = True
                    failures.append(f"the journal {self.path} could not be updated during the "
                                    f"undo ({exc.strerror or exc}); it still lists steps that "
                                    "were undone")
        if failures:
            try:
                if self.path.exists():
                    self.path.replace(self.path.with_suffix(".failed.json"))
            except OSError as exc:
                failures.append(f"the journal could not be kept as .failed.json ({exc}); it is "
                                f"still at {self.path}")
        else:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                failures.append(f"the finished journal {self.path} could not be removed ({exc}); "
                                "delete it by hand")
        return failures


_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*==[A-Za-z0-9][A-Za-z0-9.!+_\-]*\Z")


@dataclass(frozen=True)
class _Own:
    """What an undo of ``task``'s journal may touch, read once before its first action runs
    (an action never widens it for the next): the task's locations in the working registry and
    in HEAD's, its runtime-state rules there, the commits and tags finished operations made."""

    locations: frozenset[str]
    state: Any  # StatePaths | None
    finished: frozenset[str]  # commits (and tag@commit) the audit log records as finished results
    uncommits: frozenset[str]  # the commits the journal's uncommit actions would take back

    @classmethod
    def of(cls, root: Path, state_dir: Path, task: str,
           actions: Sequence[dict[str, Any]] = ()) -> _Own:
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
        return cls(frozenset(locations), state, _finished_results(state_dir, task),
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


def _finished_results(state_dir: Path, task: str) -> frozenset[str]:
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
    return info is not None and f"{tag}@{info.commit}" in _finished_results(state_dir, task)


def _check_action(root: Path, state_dir: Path, task: str, a: dict[str, Any],
                  own: _Own | None = None) -> None:
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
    own = own or _Own.of(root, state_dir, task, [a])
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
            if REGISTRY_FILE in changed and not _only_entry_differs(
                    task, git.show_file(a["old"], REGISTRY_FILE) or b"",
                    git.show_file(new, REGISTRY_FILE) or b""):
                raise bad("names a commit that changed other tasks' registry entries")
            if task != "~workspace" and _task_of_commit(git, new) != task:
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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClawbackError):
        return exc.message
    if isinstance(exc, ValueError) and str(exc).startswith("refused:"):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_sha(entry: dict[str, Any] | None) -> str | None:
    if entry is None:
        return None
    return _sha(json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8"))


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
    if current is not None and a.get("written") and _sha(current) != a["written"]:
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
            _only_entry_differs(a["task"], original, current):
        _write_back(path, original)  # ours, untouched since: the exact old bytes
        return None
    reg = Registry.load(path)
    now = reg.entry(a["task"])
    note = None
    if now is not None and "entry_written" in a and \
            _entry_sha(now) not in (a["entry_written"], _entry_sha(a["entry"])):
        note = _backup_ref(root, a["task"], [a["path"]],
                           f"{a['task']}'s registry entry changed after the interrupted operation")
    if a["entry"] is None:
        raise ValueError(f"{a['path']} changed since; {a['task']} had no entry to put back")
    reg.set_entry(a["task"], a["entry"])
    reg.save()
    return note


def _only_entry_differs(task: str, one: bytes, other: bytes) -> bool:
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
            _check_action(root, Path(root) / ".clawback", str(a["task"]),
                          {**a, "new": new})  # (one of its own task's)
    if new is None:
        raise ClawbackError(f"HEAD moved to {str(head)[:12]}, which is not ours; not undoing it")
    git.uncommit(new, a["old"], [])


def _task_of_commit(git: Git, commit: str) -> str:
    """The task a clawback commit is of, from its subject (``T01 v1.2.0: ...``)."""
    subject = git.out("log", "-1", "--format=%s", commit)
    return subject.split(" ", 1)[0].rstrip(":") if subject else ""


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
