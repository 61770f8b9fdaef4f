"""``clawback diff``: the four sections (code, config, dependencies, registry) between two sides.

Only the files whose object ids differ are read (one ``cat-file`` pass for all of them), so two
versions of a 6,000-file task cost two ``ls-tree`` listings and the changed files. A path counts
as runtime state when **either** side's rules say so (as for a rollback, docs/design.md
"Runtime state"): state is never part of a diff. Each content read of a version is checked
against its manifest's sha256, so what is shown is what the snapshot recorded.
docs/design.md, "Diff".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput, ClawbackError, VerificationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import config
from tasks_lib.formats.manifest import sha256_hex
from tasks_lib.versiondiff import keyed, packages, sides, textdiff
from tasks_lib.versiondiff.sides import WORKING, Blob, Side


@dataclass(frozen=True)
class TaskDiff:
    task_id: str
    old: str                    # a version or "working"
    new: str
    old_tag: str | None
    new_tag: str | None
    files: tuple[textdiff.FileDiff, ...]
    config: tuple[keyed.KeyChange, ...]
    config_note: str
    dependencies: packages.DependencyDiff
    registry: tuple[keyed.KeyChange, ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.files or self.config or self.registry) and self.dependencies.empty

    def stat(self) -> TaskDiff:
        """The same diff without the lines of each file (``--stat``)."""
        return dataclasses.replace(self, files=tuple(f.without_lines() for f in self.files))

    def summary(self) -> dict[str, int]:
        count = {s: sum(1 for f in self.files if f.status == s) for s in ("added", "removed", "changed")}
        return {**count, "lines_added": sum(f.added for f in self.files),
                "lines_removed": sum(f.removed for f in self.files)}

    def as_dict(self) -> dict[str, Any]:
        as_json = dataclasses.asdict
        return {
            "task": self.task_id,
            "from": {"version": self.old, "tag": self.old_tag},
            "to": {"version": self.new, "tag": self.new_tag},
            "code": {"summary": self.summary(), "files": [as_json(f) for f in self.files]},
            "config": {"changes": [as_json(c) for c in self.config], "note": self.config_note},
            "dependencies": as_json(self.dependencies),
            "registry": {"changes": [as_json(c) for c in self.registry]},
            "notes": list(self.notes),
        }


def side_name(value: str) -> str:
    """``working`` or a valid version (BadInput, exit 2, before anything is read)."""
    if value == WORKING:
        return value
    ids.version_tag("T", value)  # the same rules the tag is built with (hotfix versions too)
    return value


def diff_task(ws: Workspace, task_id: str, v1: str | None = None, v2: str | None = None) -> TaskDiff:
    """What changed from ``v1`` (default: the registry's current version) to ``v2`` (default:
    the live tree). BadInput/NotFound (exit 2) for a bad task or version, VerificationFailed
    (exit 1) for a version whose manifest cannot be trusted."""
    ids.task_id(task_id)
    old_name, new_name = side_name(v1) if v1 else None, side_name(v2 or WORKING)
    task = ws.task(task_id, active=False)
    if old_name is None:
        if task.version is None:
            raise BadInput(f"task {task_id} has no version in the registry", "pass --v1 VERSION")
        old_name = task.version
    if old_name == new_name:
        raise BadInput(f"--v1 and --v2 are both {old_name}: nothing to compare",
                       "name two different versions (or one and `working`)")
    if WORKING in (old_name, new_name) and not task.active:
        why = "is deleted" if task.status == "deleted" else "has no location"
        raise BadInput(f"task {task_id} {why}: it has no live tree to compare",
                       f"compare two of its versions: clawback diff --task {task_id} --v1 A --v2 B")
    old, new = (_side(ws, task_id, name) for name in (old_name, new_name))
    return _compare(ws, task_id, old, new)


def _side(ws: Workspace, task_id: str, name: str) -> Side:
    if name == WORKING:
        return sides.working_side(ws, ws.task(task_id))
    return sides.version_side(ws, task_id, name)


def _compare(ws: Workspace, task_id: str, old: Side, new: Side) -> TaskDiff:
    git = ws.git
    a, b = old.files, new.files
    state = old.state.union(new.state)  # matched against the differing paths only: ~30 us each
    changed = sorted(p for p in a.keys() | b.keys()
                     if _key(a.get(p)) != _key(b.get(p)) and not state.matches(p))
    wanted = [blob for p in changed for blob in (a.get(p), b.get(p)) if blob is not None]
    extra = [s.files[s.config_file] for s in (old, new) if s.config_file in s.files]
    extra += [s.files[sides.REQUIREMENTS] for s in (old, new) if sides.REQUIREMENTS in s.files]
    data = sides.contents(git, [*wanted, *extra])
    for side in (old, new):
        _check_manifest(side, data)
    parsed, config_note = _configs(old, new, data)
    # a value found secret in one section is masked in every section it appears in
    found = keyed.secret_values(old.entry, new.entry, old.runtime, new.runtime, *(parsed or ()))
    for p in changed:
        for blob in (a.get(p), b.get(p)):
            if blob is not None and blob.mode != "120000":
                found |= textdiff.secret_values(p, data[blob.oid])
    spelled = keyed.shown_values(found)
    files = tuple(textdiff.compare(
        textdiff.display_path(new.path(p) if p in b else old.path(p), spelled),
        (a[p].mode, data[a[p].oid]) if p in a else None,
        (b[p].mode, data[b[p].oid]) if p in b else None, spelled) for p in changed)
    config_changes = keyed.diff_data(parsed[0], parsed[1], values=found) if parsed else ()
    deps = packages.compare(
        old.packages, new.packages, _content(old, sides.REQUIREMENTS, data),
        _content(new, sides.REQUIREMENTS, data),
        locked_label=old.label if old.packages is not None else new.label,
        python=(old.python, new.python), env=(old.env_names, new.env_names))
    registry = (keyed.diff_data(old.entry, new.entry, values=found)
                + keyed.diff_data(old.runtime, new.runtime, "runtime", values=found)
                + keyed.diff_data(sorted(old.state.patterns), sorted(new.state.patterns),
                                  "state_paths", values=found))
    return TaskDiff(task_id=task_id, old=old.label, new=new.label, old_tag=old.tag,
                    new_tag=new.tag, files=files, config=config_changes, config_note=config_note,
                    dependencies=deps, registry=registry, notes=(*old.notes, *new.notes))


def _key(blob: Blob | None) -> tuple[str, str] | None:
    return None if blob is None else (blob.mode, blob.oid)


def _content(side: Side, rel: str, data: dict[str, bytes]) -> bytes | None:
    blob = side.files.get(rel)
    return None if blob is None else data[blob.oid]


def _check_manifest(side: Side, data: dict[str, bytes]) -> None:
    """Every content read of a version has the sha256 its manifest records."""
    if side.snapshot is None:
        return
    prefix = len(side.location) + 1 if side.location else 0
    for f in side.snapshot.files:
        blob = side.files.get(f.path[prefix:])
        if blob is not None and blob.oid in data and sha256_hex(data[blob.oid]) != f.checksum:
            raise VerificationFailed(
                f"{side.tag}: {f.path!r} differs from its manifest's checksum",
                f"run `clawback verify-snapshot --task {side.snapshot.task_id} --version "
                f"{side.label}` for the details")


def _configs(old: Side, new: Side, data: dict[str, bytes]) -> tuple[list[Any] | None, str]:
    """Both sides' configs parsed (None for an absent one), or None when a side's config does
    not parse (named in the note instead: its lines are in the code section)."""
    parsed: list[Any] = []
    missing: list[str] = []
    unreadable: list[str] = []
    for side in (old, new):
        raw = _content(side, side.config_file, data)
        if raw is None:
            missing.append(f"{side.label} has no {side.config_file}")
        try:
            parsed.append(None if raw is None else
                          config.load(raw.decode("utf-8"), side.path(side.config_file)))
        except UnicodeDecodeError:
            unreadable.append(f"{side.label}: {side.config_file} is not UTF-8 text")
        except ClawbackError as exc:
            unreadable.append(f"{side.label}: {exc.message}")
    if unreadable:
        return None, "; ".join(unreadable) + " (the code section shows its lines)"
    return parsed, "; ".join(missing)
