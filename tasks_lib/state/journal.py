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
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.state.undo_actions import UNDO, reason
from tasks_lib.state.undo_guard import Own, check_action, entry_sha, sha256_hex

JOURNAL_DIR = "journal"


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
                 written=sha256_hex(new))

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
                 entry_written=entry_sha(new_entry))

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
        own = Own.of(self.root, self.state_dir, self.task, self.actions)  # (before any undo)
        while self.actions:
            action = {"task": self.task, **self.actions[-1]}  # (no task named: the journal's)
            try:
                check_action(self.root, self.state_dir, self.task, action, own)
                note = UNDO[action["kind"]](self.root, action)
                self.done.append(action["description"])
                if note:
                    self.backups.append(note)
            except Exception as exc:  # noqa: BLE001 - one broken undo must not strand the others
                failures.append(f"{action.get('description', action.get('kind'))}: "
                                f"{reason(exc)}")
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
