"""Which snapshot a preview looks at, and whether its manifest can be trusted (docs/design.md,
"Preview (the time machine)").

The version is resolved only through ``tasks_lib.core.ids`` and ``verify_snapshot.load_snapshot``
(its tag and parsed manifest), so every version grammar ids knows works here. The task is looked
up in the registry as an entry, not through ``Workspace.task``: a preview reads the version from
git, never the live task directory, so a deleted task, a missing location or a live directory
that is a link are no reason to refuse a look at what was stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput, NotFound, VerificationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import registry
from tasks_lib.formats.manifest import Snapshot
from tasks_lib.runtime.statepaths import StatePaths
from tasks_lib.verify_snapshot import load_snapshot


@dataclass(frozen=True)
class Resolved:
    task_id: str
    version: str
    tag: str
    snapshot: Snapshot = field(repr=False)
    entry: dict[str, Any] = field(repr=False)   # the live registry entry (its records)
    problems: tuple[str, ...] = ()              # why the manifest cannot be trusted

    @property
    def trusted(self) -> bool:
        return not self.problems

    @property
    def active(self) -> bool:
        return registry.is_active(self.entry)

    @property
    def state(self) -> StatePaths:
        """The runtime-state rules the version was made with."""
        return StatePaths.recorded(self.snapshot.state_paths, self.snapshot.runtime)

    def rel(self, repo_path: str) -> str:
        """A manifest path as seen from the task directory."""
        return repo_path[len(self.snapshot.location) + 1:]

    def require_trusted(self, what: str) -> None:
        """VerificationFailed (exit 1) when the manifest's digest or tag does not verify: its
        checksums cannot vouch for bytes written or run."""
        if self.problems:
            raise VerificationFailed(
                f"snapshot {self.tag} does not verify ({'; '.join(self.problems)}): not {what}",
                f"check it with `clawback verify-snapshot --task {self.task_id} --version "
                f"{self.version}`; pick another version")


def resolve(ws: Workspace, task_id: str, version: str) -> Resolved:
    """The snapshot of ``task_id`` at ``version``: BadInput for an invalid id or version,
    NotFound (exit 2) for an unknown task or version (naming the known ones)."""
    ids.task_id(task_id)
    if not isinstance(version, str) or not version:
        raise BadInput("no version given", "pass --version, e.g. --version 1.2.0")
    reg = ws.load_registry()
    entry = reg.entry(task_id)
    if entry is None:
        known = ", ".join(reg.task_ids()[:20]) or "none"
        raise NotFound(f"unknown task {task_id}", f"tasks in the registry: {known}")
    if not isinstance(entry, dict):
        entry = {}
    tag, parsed = _load(ws, task_id, version)
    snap = parsed.snapshot
    problems: list[str] = []
    if not parsed.intact:
        problems.append("manifest digest mismatch: the tag message was edited or corrupted")
    if (snap.task_id, snap.git_tag) != (task_id, tag):
        problems.append(f"the manifest is for {ids.shown(snap.git_tag)}")
    target = ws.git.rev(f"refs/tags/{tag}^{{commit}}")
    if target != snap.git_commit:
        problems.append(f"the tag points at {str(target)[:12]}, the manifest records "
                        f"{snap.git_commit[:12]}")
    if not ids.safe_relative_path(snap.location):
        problems.append(f"the manifest's location {ids.shown(snap.location)} is not a path "
                        "inside the workspace")
    return Resolved(task_id, snap.version, tag, snap, entry, tuple(problems))


def _load(ws: Workspace, task_id: str, version: str) -> tuple[str, Any]:
    try:
        return load_snapshot(ws, task_id, version)
    except VerificationFailed as exc:  # no manifest at all, or not JSON: nothing to show
        raise VerificationFailed(f"{ids.version_tag(task_id, version)}: {exc.message}",
                                 exc.hint) from None


def marks(res: Resolved) -> dict[str, bool]:
    """The version's marks in the live registry's ``snapshots[]`` records."""
    records = [s for s in res.entry.get("snapshots") or []
               if isinstance(s, dict) and str(s.get("version")) == res.version]
    return {"stable": any(s.get("stable") is True for s in records),
            "quarantined": any(s.get("quarantined") is True for s in records),
            "recorded": bool(records),
            "current": str(res.entry.get("version")) == res.version}
