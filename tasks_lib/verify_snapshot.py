"""verify-snapshot (docs/design.md, "What verify-snapshot proves"): is a stored version still
exactly itself?

Checks, each reported by name: the tag exists and is annotated; its manifest is intact (digest);
the manifest names this task, version and tag; the tag points at the recorded commit; every file's
sha256 matches git's content at that commit, with no versioned file missing or extra; the registry
entry at that commit matches its checksum; the audit log, when it recorded this snapshot, agrees
on the digest; the commit is still reachable from HEAD (a warning only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks_lib.core import ids, safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import Conflict, NotFound, VerificationFailed
from tasks_lib.core.filenames import shown
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import registry
from tasks_lib.formats.manifest import Parsed, Snapshot, parse_tag_message, sha256_hex
from tasks_lib.gitops.repo import Git
from tasks_lib.runtime.statepaths import StatePaths
from tasks_lib.state.audit import AuditLog


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    warning: bool = False   # reported, but does not fail the verification


@dataclass(frozen=True)
class SnapshotVerification:
    task_id: str
    version: str
    tag: str
    checks: tuple[Check, ...]
    snapshot: Snapshot | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.warning for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and not c.warning]


@dataclass(frozen=True)
class _Tag:
    object: str      # the tag object (annotated) or what the tag names directly
    annotated: bool
    commit: str      # what an annotated tag points at (one level), else ``object``
    message: str     # an annotated tag's message ("" otherwise)


def _read_tag(git: Git, name: str) -> _Tag | None:
    """One tag, read through its own ref in one git call: no listing of every tag (which reads
    every loose tag file, so it grows with the number of tasks)."""
    out = git.run("cat-file", "--batch", input=f"refs/tags/{name}\n".encode()).stdout
    header, _, content = out.partition(b"\n")
    fields = header.decode("utf-8", "surrogateescape").split(" ")
    if len(fields) != 3 or not fields[2].isdigit():
        return None  # "<name> missing"
    oid, kind, size = fields
    if kind != "tag":
        return _Tag(oid, False, oid, "")
    head, _, message = content[: int(size)].decode("utf-8", "surrogateescape").partition("\n\n")
    target = next((line[7:] for line in head.split("\n") if line.startswith("object ")), "")
    return _Tag(oid, True, target, message)


def _not_found(ws: Workspace, task_id: str, tag: str) -> NotFound:
    known = [t.version for t in (ids.parse_tag(i.name) for i in ws.git.tags(f"refs/tags/{task_id}-v*"))
             if t and t.carries_manifest and t.task == task_id]
    return NotFound(f"no snapshot {tag}", f"known versions of {task_id}: {', '.join(known) or 'none'}")


def load_snapshot(ws: Workspace, task_id: str, version: str) -> tuple[str, Parsed]:
    """The parsed manifest of ``task_id`` at ``version`` (NotFound if there is no such tag)."""
    tag = ids.version_tag(task_id, version)
    info = _read_tag(ws.git, tag)
    if info is None:
        raise _not_found(ws, task_id, tag)
    if not info.annotated:  # as before: the manifest parser says what is wrong
        return tag, parse_tag_message(ws.git.tag_message(tag))
    return tag, parse_tag_message(info.message)


def _cache_path(ws: Workspace, tag: str) -> Path:
    return ws.state_dir / "verified" / f"{tag}.json"


def _cached(ws: Workspace, tag: str, tag_object: str) -> str | None:
    """When this exact tag object (content-addressed: manifest + commit) last verified in full."""
    try:
        data = json.loads(safefs.read_state(_cache_path(ws, tag)).decode("utf-8"))
    except (OSError, ValueError, Conflict):
        return None
    return data.get("verified_at") if data.get("tag_object") == tag_object else None


def verify_snapshot(ws: Workspace, task_id: str, version: str, *,
                    trust_cache: bool = False) -> SnapshotVerification:
    """All checks. With ``trust_cache``, the file hashes of a tag object that already verified in
    full here are not recomputed (a rollback hashes every restored file at level 1 anyway)."""
    ids.task_id(task_id)
    version = ids.version(version)
    tag = ids.version_tag(task_id, version)
    git = ws.git
    checks: list[Check] = []
    info = _read_tag(git, tag)
    if info is None:
        raise _not_found(ws, task_id, tag)
    checks.append(Check("tag annotated", info.annotated,
                        "" if info.annotated else "a lightweight tag carries no manifest"))
    if not info.annotated:
        return SnapshotVerification(task_id, version, tag, tuple(checks))
    try:
        parsed = parse_tag_message(info.message)
    except VerificationFailed as exc:
        checks.append(Check("manifest readable", False, exc.message))
        return SnapshotVerification(task_id, version, tag, tuple(checks))
    snap = parsed.snapshot
    checks.append(Check("manifest intact", parsed.intact,
                        "" if parsed.intact else "digest mismatch: the manifest was edited or corrupted"))
    names_ok = (snap.task_id, snap.version, snap.git_tag) == (task_id, version, tag)
    parsed_version = ids.Version.parse(version)
    hotfix_of = str(parsed_version.base) if parsed_version.is_hotfix else None  # "Hotfix releases"
    names_ok = names_ok and snap.hotfix_of == hotfix_of
    checks.append(Check("manifest names this version", names_ok,
                        "" if names_ok else
                        f"manifest is for {snap.git_tag}" + (f" on top of {snap.hotfix_of}"
                                                             if snap.hotfix_of else "")))
    target_ok = info.commit == snap.git_commit
    checks.append(Check("tag points at recorded commit", target_ok,
                        "" if target_ok else
                        f"tag points at {str(info.commit)[:12]}, manifest records {snap.git_commit[:12]}"))
    when = _cached(ws, tag, info.object) if trust_cache and parsed.intact and target_ok else None
    checks.append(Check("files match git content", True, f"verified in full at {when}")
                  if when else _files_check(ws, snap))
    checks.append(_registry_check(ws, snap))
    checks.append(_audit_check(ws, snap, parsed.recorded_digest))
    reachable = git.run("merge-base", "--is-ancestor", snap.git_commit, "HEAD", check=False).returncode == 0
    checks.append(Check("commit reachable from HEAD", reachable,
                        "" if reachable else "history was rewritten or the branch moved elsewhere",
                        warning=True))
    result = SnapshotVerification(task_id, version, tag, tuple(checks), snap)
    if result.ok and not when:
        record_verified(ws, tag, info.object)
    return result


def record_verified(ws: Workspace, tag: str, tag_object: str) -> None:
    """Note that this tag object's files were just hashed from git's content and matched."""
    if not ws.state_dir.is_dir():
        return  # a clone that was never used with clawback: keep it untouched
    cache = _cache_path(ws, tag)
    cache.parent.mkdir(exist_ok=True)
    safefs.replace_file(cache, json.dumps({"tag_object": tag_object,
                                           "verified_at": clock.format()}).encode())


def _files_check(ws: Workspace, snap: Snapshot) -> Check:
    git = ws.git
    if git.rev(f"{snap.git_commit}^{{commit}}") is None:
        return Check("files match git content", False, f"commit {snap.git_commit[:12]} is missing")
    state = StatePaths((tuple(snap.state_paths),))  # exactly the rules it was made with
    tree = {p: mo for p, mo in git.ls_tree(snap.git_commit, snap.location).items()
            if not state.matches(p[len(snap.location) + 1:])}
    recorded = {f.path: f for f in snap.files}
    problems: list[str] = []
    missing = sorted(set(recorded) - set(tree))
    extra = sorted(set(tree) - set(recorded))
    problems += [f"missing {shown(p)}" for p in missing[:5]]
    problems += [f"extra {shown(p)}" for p in extra[:5]]
    common = sorted(set(recorded) & set(tree))
    by_oid: dict[str, list[str]] = {}
    for p in common:
        by_oid.setdefault(tree[p][1], []).append(p)
    bad: list[str] = []
    for oid, data in git.read_blobs(by_oid):
        digest = sha256_hex(data)
        for p in by_oid[oid]:
            if digest != recorded[p].checksum or tree[p][0] != recorded[p].mode:
                bad.append(p)
    problems += [f"changed {shown(p)}" for p in sorted(bad)[:5]]
    count = len(missing) + len(extra) + len(bad)
    if count:
        more = f" (+{count - len(problems)} more)" if count > len(problems) else ""
        return Check("files match git content", False, "; ".join(problems) + more)
    return Check("files match git content", True, f"{len(common)} files")


def _registry_check(ws: Workspace, snap: Snapshot) -> Check:
    raw = ws.git.show_file(snap.git_commit, registry.REGISTRY_FILE)
    if raw is None:
        return Check("registry entry matches", False, "task_registry.json missing at the commit")
    entry = registry.Registry.from_text(raw.decode("utf-8"), ws.registry_path,
                                        ws.registry_parses).entry(snap.task_id)
    if entry is None:
        return Check("registry entry matches", False, f"{snap.task_id} missing from the registry")
    actual = registry.entry_checksum(entry)
    ok = actual == snap.registry_checksum and actual == registry.entry_checksum(snap.registry_entry)
    return Check("registry entry matches", ok, "" if ok else "registry entry differs from the manifest")


def _naming(log: AuditLog, tag: str) -> list[dict[str, Any]]:
    """The audit entries whose line names ``tag``: only those are decoded (the log grows with
    every operation on every task). Entries are written by json.dumps, which never escapes
    the ASCII characters a tag is made of."""
    needle, found = json.dumps(tag), []
    for line in log.lines():
        if needle in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _audit_check(ws: Workspace, snap: Snapshot, recorded: str | None) -> Check:
    logged = [e for e in _naming(AuditLog(ws.state_dir), snap.git_tag)
              if e.get("task") == snap.task_id
              and e.get("action") == "snapshot" and e.get("result") in ("ok", "pushed-failed")
              and (e.get("details") or {}).get("tag") == snap.git_tag]
    if not logged:
        return Check("audit log agrees", True, "not recorded here (clone or other machine)",
                     warning=True)
    ok = (logged[-1].get("details") or {}).get("digest") == recorded
    return Check("audit log agrees", ok, "" if ok else "the digest differs from the one logged at creation")
