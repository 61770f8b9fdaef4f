"""The task registry, ``task_registry.json`` (docs/design.md, "Workspace model"): read it, edit
entries, save it back.

The file is the operator's: every unknown field, the key order and the formatting are kept, and
an edit changes only the lines of the entry it touches (see :mod:`tasks_lib.formats.jsonfmt`).
``tasks`` is either a list of entries that carry an ``"id"`` (the *list* form) or an object
keyed by task id (the *mapping* form, whose entries usually have no ``"id"``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from tasks_lib.core import safefs
from tasks_lib.core.errors import BadInput, Conflict, MalformedFile, NotFound
from tasks_lib.formats import jsonfmt

REGISTRY_FILE = "task_registry.json"
HISTORY_KEYS = ("snapshots", "rollback_history")  # excluded from the entry checksum

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "version": (str,),
    "status": (str,),
    "location": (str, type(None)),
    "snapshots": (list,),
    "rollback_history": (list,),
}
_TYPE_NAMES = {str: "a string", type(None): "null", list: "a list"}
# The top level and `tasks` are copies to edit; each entry below them is the parsed document's
# own object, replaced by set_entry and never edited in place, so rendering recognises every
# untouched entry by identity instead of comparing it (the cost stays that of the edited one).
_SHARED_BELOW = 2


def is_active(entry: dict[str, Any]) -> bool:
    """Active: not ``status: deleted`` and ``location`` is a string that is not blank
    (docs/design.md, "Workspace model": a deleted task, or one with no location, is listed but
    never touched; a location of spaces is no location). The one rule: ``Task.active`` and the
    workspace's location checks use it."""
    location = entry.get("location")
    return entry.get("status") != "deleted" and isinstance(location, str) and bool(location.strip())


def entry_checksum(entry: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the definition as written: without HISTORY_KEYS and without ``id``.

    Canonical JSON (sorted keys, no spaces, UTF-8), so the same entry in list or mapping form,
    in any formatting, gives the same checksum.
    """
    definition = {k: v for k, v in entry.items() if k not in HISTORY_KEYS and k != "id"}
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def snapshot_record(
    version: str, git_tag: str, snapshot_file: str, created_at: str, **extra: Any
) -> dict[str, Any]:
    """A ``snapshots[]`` item: version, snapshot_file, created_at, git_tag, then ``extra``."""
    return {
        "version": version,
        "snapshot_file": snapshot_file,
        "created_at": created_at,
        "git_tag": git_tag,
        **extra,
    }


_Parse = tuple["jsonfmt.Document", Literal["list", "mapping"], dict[str, MalformedFile]]


class Parses:
    """The last few registry texts parsed and validated, by content: reading a registry whose text
    was seen before costs no parse. Keyed by the whole text, so it never answers for a file that
    changed; one per Workspace object (one operation), never global."""

    def __init__(self, keep: int = 3) -> None:
        self._keep = keep
        self._by_text: dict[tuple[str, str], _Parse] = {}

    def get(self, path: Path, text: str) -> _Parse | None:
        return self._by_text.get((str(path), text))

    def put(self, path: Path, text: str, parse: _Parse) -> None:
        key = (str(path), text)
        self._by_text.pop(key, None)
        self._by_text[key] = parse
        while len(self._by_text) > self._keep:
            del self._by_text[next(iter(self._by_text))]  # the oldest


class Registry:
    """A loaded registry. Edit entries with :meth:`entry` / :meth:`set_entry`, then :meth:`save`."""

    def __init__(self, path: Path, text: str, expected_on_disk: bytes,
                 parses: Parses | None = None) -> None:
        self.path = path
        self.original_text = text
        self._on_disk = expected_on_disk
        self._parses = parses
        self.form: Literal["list", "mapping"] = "list"
        self.unusable: dict[str, MalformedFile] = {}  # label -> why: only that entry is refused
        self._adopt(text)

    def _adopt(self, text: str) -> None:
        """Parse and validate ``text`` (or take an earlier validated parse of the same text)."""
        self._positions: dict[str, int] | None = None  # list form: id -> index, built on use
        known = self._parses.get(self.path, text) if self._parses is not None else None
        if known is not None:
            self._doc, self.form, self.unusable = known
            self._value: dict[str, Any] = self._doc.copy_value(_SHARED_BELOW)
            return
        try:
            self._doc = jsonfmt.parse(text, str(self.path))
            self._value = self._doc.copy_value(_SHARED_BELOW)
        except RecursionError:
            raise self._bad("nested too deeply to read", "flatten the nesting") from None
        self._check()
        if self._parses is not None:
            self._parses.put(self.path, text, (self._doc, self.form, self.unusable))

    @classmethod
    def load(cls, path: Path, parses: Parses | None = None) -> Registry:
        """Read ``path``. MalformedFile if it is missing, unreadable, not JSON or not a registry.

        ``parses``: earlier parses to reuse when the file holds a text seen before."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MalformedFile(
                f"{path}: registry not found",
                f"run from the workspace holding {REGISTRY_FILE} or pass --workspace DIR",
            ) from None
        except OSError as exc:
            raise MalformedFile(
                f"{path}: cannot read the registry ({exc.strerror or exc})",
                "check the file's permissions and re-run",
            ) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFile(
                f"{path}: not UTF-8 text (bad byte at offset {exc.start})",
                "save the file as UTF-8 and re-run",
            ) from None
        return cls(path, text, data, parses)

    @classmethod
    def from_text(cls, text: str, path: Path, parses: Parses | None = None) -> Registry:
        """A registry from ``text``, taken to be what ``path`` holds now (save() checks that)."""
        return cls(Path(path), text, text.encode("utf-8"), parses)

    # -- validation -------------------------------------------------------------------------

    def _bad(self, what: str, fix: str) -> MalformedFile:
        return MalformedFile(f"{self.path}: {what}", f"{fix} in {self.path.name}, then re-run")

    def _check(self) -> None:
        if not isinstance(self._value, dict) or "tasks" not in self._value:
            raise self._bad(
                "not a task registry: the top level must be an object with a `tasks` key",
                'add `"tasks": []` (or an object keyed by task id)',
            )
        tasks = self._value["tasks"]
        self.unusable = {}
        if isinstance(tasks, dict):
            self.form = "mapping"
            for tid, entry in tasks.items():
                if not isinstance(entry, dict):
                    self.unusable[tid] = self._bad(f"task {tid!r} is not an object", "make it an object")
                elif "id" in entry and entry["id"] != tid:
                    self.unusable[tid] = self._bad(f"task keyed {tid!r} has id {entry['id']!r}",
                                                   "make them agree")
        elif isinstance(tasks, list):
            seen: set[str] = set()
            for n, entry in enumerate(tasks):
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    self.unusable[f"tasks[{n}]"] = self._bad(
                        f"tasks[{n}] is not an object with a string `id`",
                        f'give tasks[{n}] an `"id": "T.."`',
                    )
                    continue
                if entry["id"] in seen:  # (which of the two is the task? both are refused)
                    raise self._bad(f"task id {entry['id']!r} is listed twice", "keep one entry")
                seen.add(entry["id"])
        else:
            raise self._bad(
                "`tasks` must be a list of entries or an object keyed by task id",
                "fix `tasks`",
            )

    def _check_fields(self, tid: str, entry: dict[str, Any]) -> None:
        """The known fields of one entry have their types (checked per entry, when the entry is
        used or written: one malformed entry never makes the whole registry unreadable)."""
        for key, types in _FIELD_TYPES.items():
            if key in entry and not isinstance(entry[key], types):
                wanted = " or ".join(_TYPE_NAMES[t] for t in types)
                raise self._bad(f"task {tid!r}: `{key}` must be {wanted}", f"fix `{key}`")

    def check_entry(self, task_id: str) -> None:
        """MalformedFile when ``task_id``'s entry has a known field of the wrong type."""
        stored = self._stored(task_id)
        if stored is not None:
            self._check_fields(task_id, stored)

    # -- entries ----------------------------------------------------------------------------

    def _stored(self, task_id: str) -> dict[str, Any] | None:
        """The entry as stored; MalformedFile when the one keyed ``task_id`` is unusable."""
        tasks = self._value["tasks"]
        if self.form == "mapping":
            if task_id in self.unusable:
                raise self.unusable[task_id]
            return tasks.get(task_id)
        if self._positions is None:  # one pass, not one per lookup: a scan of 200 tasks made
            self._positions = {}     # 800 lookups, each a walk of the whole list
            for i, e in enumerate(tasks):
                if isinstance(e, dict) and isinstance(e.get("id"), str):
                    self._positions.setdefault(e["id"], i)  # the first, as the walk found it
        found = self._positions.get(task_id)
        return None if found is None else tasks[found]

    def task_ids(self) -> list[str]:
        """Ids of the usable entries in file order, as written (not validated: callers run
        tasks_lib.core.ids.task_id); :meth:`unusable_entries` names the others."""
        tasks = self._value["tasks"]
        if self.form == "mapping":
            return [tid for tid in tasks if tid not in self.unusable]
        return [e["id"] for e in tasks if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def unusable_entries(self) -> list[tuple[str, MalformedFile]]:
        """Entries that are no task (not an object, no string id): ``(label, why)``, in file
        order. Only they are refused; every other task stays usable."""
        return list(self.unusable.items())

    def field(self, task_id: str, key: str, default: Any = None) -> Any:
        """One top-level field of an entry as stored (not copied: never modify it)."""
        stored = self._stored(task_id)
        return default if stored is None else stored.get(key, default)

    def entry(self, task_id: str) -> dict[str, Any] | None:
        """A deep copy of the entry, or None. Always has ``"id"``: for the mapping form one is
        put first when the stored entry has none (set_entry takes it out again)."""
        stored = self._stored(task_id)
        if stored is None:
            return None
        result = copy.deepcopy(stored)
        return result if "id" in result else {"id": task_id, **result}

    def set_entry(self, task_id: str, entry: dict[str, Any]) -> None:
        """Replace the entry of ``task_id`` in place (same position in the file).

        ``"id"`` is stored as before: always in the list form, and in the mapping form only if
        the stored entry had one (so the ``"id"`` that :meth:`entry` adds is dropped again); when
        needed and missing it is put first. NotFound for an unknown id; BadInput if
        ``entry["id"]`` names another task.
        """
        stored = self._stored(task_id)
        if stored is None:
            raise NotFound(f"task {task_id!r} is not in {self.path}", "run `clawback status`")
        if not isinstance(entry, dict) or entry.get("id", task_id) != task_id:
            raise BadInput(f"entry for task {task_id!r} must be an object with that id")
        new = copy.deepcopy(entry)
        if self.form == "mapping" and "id" not in stored:
            new.pop("id", None)
        elif "id" not in new:
            new = {"id": task_id, **new}
        self._check_fields(task_id, new)
        tasks = self._value["tasks"]
        if self.form == "mapping":
            tasks[task_id] = new
        else:
            tasks[next(i for i, e in enumerate(tasks) if e is stored)] = new  # same id, same index

    # -- output -----------------------------------------------------------------------------

    def render(self) -> str:
        """The file's new text: the original bytes wherever nothing changed."""
        return self._doc.render(self._value)

    def is_changed(self) -> bool:
        return self.render() != self.original_text

    def save(self) -> None:
        """Write atomically (:func:`safefs.replace_file`: temp sibling, fsync, rename).

        Conflict if the file on disk is no longer what was loaded; nothing is written then.
        """
        text = self.render()
        try:
            current: bytes | None = self.path.read_bytes()
        except FileNotFoundError:
            current = None
        if current != self._on_disk:
            how = "was removed" if current is None else "changed on disk"
            raise Conflict(
                f"{self.path} {how} since it was read; not overwriting it",
                "re-run the command so it starts from the current file",
            )
        data = text.encode("utf-8")
        if data == current:
            return
        safefs.replace_file(self.path, data, os.stat(self.path).st_mode & 0o7777)
        self.original_text, self._on_disk = text, data
        self._adopt(text)  # the next load of this text (e.g. to verify it) finds it parsed

