"""The pre-commit hook's secret check (docs/design.md, "init"; the hooks themselves are
installed by tasks_lib/githooks.py).

Refuse a commit that stages a plaintext secret in any file inside an active task's location or
in a task's registry entry, naming files with key paths or lines, never values (``secret_scan``).
It protects the workspace from secrets committed by hand or by the agent outside clawback.
Bypass once with ``git commit --no-verify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks_lib.core.errors import BadInput, ClawbackError
from tasks_lib.core.workspace import Workspace, canonical_location
from tasks_lib.formats import registry
from tasks_lib.gitops.repo import Git
from tasks_lib.secrets import configs as secrets
from tasks_lib.secrets import masking
from tasks_lib.secrets import scan as secret_scan
from tasks_lib.secrets.files import scan_file


@dataclass(frozen=True)
class StagedSecrets:
    findings: dict[str, list[str]]   # staged file -> key paths or lines ("line 12 (TOKEN)")

    @property
    def ok(self) -> bool:
        return not self.findings


def staged_secrets(ws: Workspace, index_file: str | None = None) -> StagedSecrets:
    """Plaintext secrets in what is staged for the next commit (index content, not the tree).

    ``index_file`` is the hook's ``GIT_INDEX_FILE``: ``git commit -a`` and ``git commit -- PATH``
    build the commit in a temporary index, and that index, not ``.git/index``, is what the
    commit will hold."""
    git = Git(ws.root, {"GIT_INDEX_FILE": index_file}) if index_file else ws.git
    # T: a symlink that became a file (or back) is content as new as any
    raw = git.run("diff", "--cached", "--name-only", "-z", "--diff-filter=ACMRT").stdout
    staged = {p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p}
    found: dict[str, list[str]] = {}

    def note(findings: list[Any]) -> None:
        for f in findings:
            found.setdefault(f.file, []).append(f.key if f.key is not None else f.where)

    reg = _readable_registry(ws, git)
    if registry.REGISTRY_FILE in staged and not _parses(ws, _staged_text(git, registry.REGISTRY_FILE)):
        note(scan_files(_staged_blobs(git, [registry.REGISTRY_FILE])))  # judged as text, then
    if reg is None:  # no registry can be read: every staged file is judged, none skipped
        note(scan_files(_staged_blobs(git, sorted(staged))))
        return StagedSecrets(found)
    scan = ws.scan(reg)
    covered: set[str] = set()
    for task in scan.tasks:
        if not task.active:
            continue
        loc = task.location.rstrip("/") + "/"
        mine = sorted(p for p in staged if p.startswith(loc))
        covered.update(mine)
        note(secret_scan.scan_blobs(task, _staged_blobs(git, mine)))
        if registry.REGISTRY_FILE in staged:
            paths = [f"{task.id}.{f.path}" for f in secrets.scan_entry(task.entry)]
            if paths:
                found.setdefault(registry.REGISTRY_FILE, []).extend(paths)
    for broken in scan.broken:  # an unusable entry's files are still the commit's
        location = reg.field(broken.id, "location")
        try:
            loc = canonical_location(broken.id, location) + "/"
        except ClawbackError:
            continue
        mine = sorted(p for p in staged if p.startswith(loc) and p not in covered)
        note(scan_files(_staged_blobs(git, mine)))
        if registry.REGISTRY_FILE in staged:
            entry = reg.entry(broken.id) or {}
            paths = [f"{broken.id}.{f.path}" for f in secrets.scan_entry(entry)]
            if paths:
                found.setdefault(registry.REGISTRY_FILE, []).extend(paths)
    return StagedSecrets(found)


def scan_files(blobs: list[tuple[str, str, bytes]]) -> list[Any]:
    """Files judged without a task: the generic rules, and the values of set secrets."""
    known = masking.secret_items()
    return [f for path, mode, data in blobs if mode != "160000"
            for f in [*scan_file(path, data, symlink=mode == "120000"),
                      *secret_scan.value_findings(path, data, known)]]


def _parses(ws: Workspace, text: str | None) -> bool:
    try:
        registry.Registry.from_text(text or "", ws.registry_path)
    except (BadInput, json.JSONDecodeError, RecursionError):
        return False
    return True


def _readable_registry(ws: Workspace, git: Git) -> registry.Registry | None:
    """The registry the commit will hold, else the working one, else HEAD's; None if none reads
    (the commands report a broken registry; the hook then judges every staged file)."""
    text = _staged_text(git, registry.REGISTRY_FILE)
    if text:
        try:
            return registry.Registry.from_text(text, ws.registry_path)
        except (BadInput, json.JSONDecodeError, RecursionError):
            pass
    try:
        return ws.load_registry()
    except (BadInput, json.JSONDecodeError, RecursionError):
        pass
    head = git.show_file("HEAD", registry.REGISTRY_FILE)
    try:
        return registry.Registry.from_text(head.decode("utf-8"), ws.registry_path) if head else None
    except (BadInput, json.JSONDecodeError, RecursionError, UnicodeDecodeError):
        return None


def _staged_blobs(git: Git, paths: list[str]) -> list[tuple[str, str, bytes]]:
    """``(path, mode, content)`` of the index entries at ``paths``."""
    if not paths:
        return []
    raw = git.run("ls-files", "-s", "-z", "--", *paths).stdout
    entries: list[tuple[str, str, str]] = []
    for rec in raw.split(b"\0"):
        if not rec:
            continue
        meta, path = rec.split(b"\t", 1)
        mode, oid, _stage = meta.decode().split(" ")
        entries.append((path.decode("utf-8", "surrogateescape"), mode, oid))
    wanted = {oid for _, mode, oid in entries if mode != "160000"}
    blobs = dict(git.read_blobs(sorted(wanted)))
    return [(path, mode, blobs.get(oid, b"")) for path, mode, oid in entries]


def _staged_text(git: Git, path: str) -> str | None:
    data = git.show_file("", path)  # ":path" is the index version
    return data.decode("utf-8", "replace") if data is not None else None
