"""Git hooks installed by init (seed phase 2: "integrate into git hooks").

pre-commit: refuse a commit that stages a plaintext secret in any file inside an active task's
location or in a task's registry entry, naming files with key paths or lines, never values
(``secret_scan``). It protects the workspace from secrets committed by hand or by the agent
outside clawback. An existing hook that is not ours is never replaced. Bypass once with
``git commit --no-verify``; delete the hook file to uninstall.
"""

from __future__ import annotations

import json
import shlex
import stat
from dataclasses import dataclass

from tasks_lib import registry, secret_scan, secrets
from tasks_lib.errors import BadInput
from tasks_lib.gitrepo import Git
from tasks_lib.workspace import Workspace

MARKER = "# clawback-hook: pre-commit"


@dataclass(frozen=True)
class HookInstall:
    path: str
    installed: bool
    reason: str = ""


def hook_script(python: str) -> str:
    py = shlex.quote(python)
    return (
        "#!/bin/sh\n"
        f"{MARKER}\n"
        "# Refuses plaintext secrets in staged task files (key paths or lines, never values).\n"
        "# Bypass once: git commit --no-verify. Uninstall: delete this file.\n"
        f"if [ -x {py} ]; then exec {py} -m clawback hook pre-commit; fi\n"
        f'echo "clawback pre-commit hook: "{py}" is gone; secret check skipped" >&2\n'
        "exit 0\n"
    )


def install(ws: Workspace, python: str) -> HookInstall:
    hooks_dir = ws.root / ws.git.out("rev-parse", "--git-path", "hooks").strip()
    path = hooks_dir / "pre-commit"
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        return HookInstall(str(path), False,
                           "an existing pre-commit hook is kept; to add the secret check, call "
                           f"`{python} -m clawback hook pre-commit` from it")
    hooks_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(hook_script(python))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return HookInstall(str(path), True)


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
    raw = git.run("diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR").stdout
    staged = {p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p}
    found: dict[str, list[str]] = {}
    reg_text = _staged_text(git, registry.REGISTRY_FILE)
    try:
        reg = registry.Registry.from_text(reg_text, ws.registry_path) if reg_text else ws.load_registry()
        tasks = ws.tasks(reg)
    except (BadInput, json.JSONDecodeError):
        return StagedSecrets({})  # a broken registry is reported by the commands, not here
    for task in tasks:
        if not task.active:
            continue
        loc = task.location.rstrip("/") + "/"
        mine = sorted(p for p in staged if p.startswith(loc))
        for f in secret_scan.scan_blobs(task, _staged_blobs(git, mine)):
            found.setdefault(f.file, []).append(f.key if f.key is not None else f.where)
        if registry.REGISTRY_FILE in staged:
            paths = [f"{task.id}.{f.path}" for f in secrets.scan_entry(task.entry)]
            if paths:
                found.setdefault(registry.REGISTRY_FILE, []).extend(paths)
    return StagedSecrets(found)


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
