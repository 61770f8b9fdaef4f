"""A workspace's version tags, each with its manifest checked against the tag's name and
commit, read in one pass (docs/design.md, "Registry sync"): what sync-registry compares the
registry with. The manifest's digest is recomputed (the manifest's own JSON); no file is hashed,
which is verify-snapshot's part."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput, VerificationFailed
from tasks_lib.formats import manifest
from tasks_lib.gitops.repo import TagInfo


@dataclass(frozen=True)
class VersionTag:
    """A version tag of a task, with its manifest when it can be used."""

    info: TagInfo
    version: str
    manifest: manifest.Parsed | None
    problem: str | None             # why the manifest cannot be trusted (None: it can)


def version_tags(found: Iterable[tuple[TagInfo, str]], wanted: set[str]) -> dict[str, list[VersionTag]]:
    """The version tags of the ``wanted`` tasks (rollback tags and foreign tags left out), each
    with its manifest checked against its name and its commit (no file is hashed)."""
    by_task: dict[str, list[VersionTag]] = {}
    for info, message in found:
        parsed = ids.parse_tag(info.name)
        if parsed is None or parsed.task not in wanted or parsed.kind == "rollback":
            continue
        version = tag_version(info.name, parsed.task)
        if version is None:
            continue
        by_task.setdefault(parsed.task, []).append(_read_manifest(info, message, parsed.task,
                                                                  version))
    return by_task


def tag_version(name: str, task: str) -> str | None:
    """The version a tag of ``task`` names, when its name is exactly that version's tag."""
    text = name[len(task) + 2:]
    try:
        return text if ids.version_tag(task, text) == name else None
    except BadInput:
        return None


def _read_manifest(info: TagInfo, message: str, task: str, version: str) -> VersionTag:
    def bad(problem: str, parsed: manifest.Parsed | None = None) -> VersionTag:
        return VersionTag(info, version, parsed, problem)

    if not info.annotated:
        return bad("it is a lightweight tag: no manifest")
    try:
        parsed = manifest.parse_tag_message(message)
    except VerificationFailed as exc:
        return bad(exc.message)
    snap = parsed.snapshot
    if not parsed.intact:
        return bad("its manifest's digest does not match (edited or corrupted)", parsed)
    if (snap.task_id, snap.version, snap.git_tag) != (task, version, info.name):
        return bad("its manifest names another task, version or tag", parsed)
    if snap.git_commit != info.commit:
        return bad("it points at another commit than its manifest records (moved)", parsed)
    return VersionTag(info, version, parsed, None)
