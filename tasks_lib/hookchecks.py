"""What the pre-commit and pre-push hooks check beyond secrets (docs/design.md, "init").

pre-commit warns (never refuses) when the commit changes a task's ``version:`` in its config, or
its registry version, to a version that has no tag: a bump nobody snapshotted, which rollback
could never return to. pre-push refuses a version tag that fails verify-snapshot
(tasks_lib/verify_snapshot.py), so a damaged or forged manifest never reaches the remote other
clones trust; the file hashes of a tag object that already verified in full here are trusted
under the rule rollback's preflight uses ("What verify-snapshot proves").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tasks_lib.core import ids
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import config, registry
from tasks_lib.gitops.repo import Git
from tasks_lib.verify_snapshot import verify_snapshot


@dataclass(frozen=True)
class VersionBump:
    task_id: str
    version: str
    where: tuple[str, ...]      # the staged files that carry it (config, registry)
    valid: bool = True          # False: not a version clawback can tag at all
    next: str = ""


def _index_registry(git: Git, ws: Workspace, rev: str) -> registry.Registry | None:
    data = git.show_file(rev, registry.REGISTRY_FILE)  # rev "" is the index
    if data is None:
        return None
    try:
        return registry.Registry.from_text(data.decode("utf-8"), ws.registry_path,
                                           ws.registry_parses)
    except (ClawbackError, ValueError, RecursionError):  # the secret check reports it
        return None


def _tag_exists(git: Git, task_id: str, version: str) -> bool | None:
    try:
        tag = ids.version_tag(task_id, version)
    except ClawbackError:
        return None
    return git.rev(f"refs/tags/{tag}") is not None


def unsnapshotted_bumps(ws: Workspace, index_file: str | None = None) -> tuple[VersionBump, ...]:
    """Active tasks whose version the commit changes (config or registry) to an untagged one."""
    git = Git(ws.root, {"GIT_INDEX_FILE": index_file}) if index_file else ws.git
    raw = git.run("diff", "--cached", "--name-only", "-z", "--diff-filter=ACMRT").stdout
    staged = {p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p}
    reg_staged = registry.REGISTRY_FILE in staged
    if not staged:
        return ()
    new_reg = _index_registry(git, ws, "")
    if new_reg is None:
        return ()
    old_reg = _index_registry(git, ws, "HEAD") if reg_staged else None
    found: dict[tuple[str, str], list[str]] = {}
    for task in ws.scan(new_reg).tasks:
        if not task.active:
            continue
        if reg_staged and task.version and task.version != (old_reg.field(task.id, "version")
                                                            if old_reg else None):
            found.setdefault((task.id, task.version), []).append(registry.REGISTRY_FILE)
        if task.config_path in staged:
            new = git.show_file("", task.config_path)
            old = git.show_file("HEAD", task.config_path)
            new_v = config.read_version(new.decode("utf-8", "replace")) if new else None
            old_v = config.read_version(old.decode("utf-8", "replace")) if old else None
            if new_v and new_v != old_v:
                found.setdefault((task.id, new_v), []).append(task.config_path)
    bumps = []
    for (task_id, version), where in found.items():
        tagged = _tag_exists(git, task_id, version)
        if not tagged:
            bumps.append(VersionBump(task_id, version, tuple(where), tagged is not None,
                                     f"clawback snapshot --task {task_id}"))
    return tuple(bumps)


# -- pre-push -------------------------------------------------------------------------------
_OID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z", re.ASCII)
_TAGS = "refs/tags/"


@dataclass(frozen=True)
class PushedTag:
    tag: str
    ok: bool
    problems: tuple[str, ...] = ()
    files_trusted: bool = False  # file hashes taken from .clawback/verified/<tag>.json
    next: str = ""


@dataclass(frozen=True)
class PushCheck:
    tags: tuple[PushedTag, ...]
    skipped: tuple[str, ...]    # clawback tags not verified, and why (deletion, rollback marker)
    unreadable: tuple[str, ...] = ()  # lines of git's input that are not four fields

    @property
    def ok(self) -> bool:
        return not self.unreadable and all(t.ok for t in self.tags)


def verifiable_version(tag: ids.Tag) -> str | None:
    """The version verify-snapshot knows ``tag`` as, if it carries a manifest (a version tag,
    plain or hotfix: docs/design.md "Hotfix releases"); None for a rollback marker."""
    return tag.version if tag.carries_manifest else None


def check_push(ws: Workspace, stdin: bytes) -> PushCheck:
    """Every version tag git is about to push (its pre-push input: ``<local ref> <local oid>
    <remote ref> <remote oid>`` lines) must be the local tag of that name and verify."""
    results: list[PushedTag] = []
    skipped: list[str] = []
    unreadable: list[str] = []
    for line in stdin.decode("utf-8", "surrogateescape").splitlines():
        fields = line.split(" ")
        if not line.strip():
            continue
        if len(fields) != 4 or not (_OID.match(fields[1]) and _OID.match(fields[3])):
            unreadable.append(json.dumps(line)[:80])
            continue
        local_ref, local_oid, remote_ref, _remote_oid = fields
        if not remote_ref.startswith(_TAGS):
            continue  # branches and other refs are not ours to judge
        tag = ids.parse_tag(remote_ref[len(_TAGS):])
        if tag is None:
            continue  # a foreign tag
        if set(local_oid) == {"0"}:
            skipped.append(f"{tag.name}: deletion")
            continue
        version = verifiable_version(tag)
        if version is None:
            skipped.append(f"{tag.name}: a {tag.kind} marker, no manifest")
            continue
        results.append(_check_tag(ws, tag, version, local_ref, local_oid))
    return PushCheck(tuple(results), tuple(skipped), tuple(unreadable))


def _check_tag(ws: Workspace, tag: ids.Tag, version: str, local_ref: str, oid: str) -> PushedTag:
    show = f"clawback verify-snapshot --task {tag.task} --version {version}"
    if ws.git.rev(f"{_TAGS}{tag.name}") != oid:  # e.g. `git push origin HEAD:refs/tags/T01-v9.0.0`
        return PushedTag(tag.name, False, (
            f"what is pushed ({ids.shown(local_ref)}, {oid[:12]}) is not the local tag {tag.name}",),
            next=f"push the tag itself: git push <remote> {tag.name}")
    try:
        result = verify_snapshot(ws, tag.task, version, trust_cache=True)
    except ClawbackError as exc:
        return PushedTag(tag.name, False, (exc.message,), next=show)
    trusted = any(c.name == "files match git content" and c.detail.startswith("verified in full at")
                  for c in result.checks)
    problems = tuple(f"{c.name}: {c.detail}" if c.detail else c.name for c in result.failures)
    return PushedTag(tag.name, result.ok, problems, trusted, "" if result.ok else show)
