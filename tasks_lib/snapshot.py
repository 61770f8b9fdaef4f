"""The steps of a snapshot (docs/design.md, "What a snapshot guarantees"): plain functions the
snapshot flow composes.

validate → scan secrets → bump config + registry → lock dependencies → sync the environment →
commit only the task's paths + registry → checksum git's content → annotated tag carrying the
manifest → export → (push). Every step that changes state registers its undo in a Journal, so a
failure anywhere leaves no half-made version.

One module because these are the steps of one operation in the order the flow runs them;
the mechanisms live in formats/, deps/, gitops/ and secrets/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tasks_lib import hotfix
from tasks_lib.core import filenames, ids, safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput, Conflict, MalformedFile, NotFound
from tasks_lib.core.workspace import Task, Workspace, committed_state
from tasks_lib.deps import envs as deps
from tasks_lib.deps import interpreter
from tasks_lib.deps.sharedenv import install_shared
from tasks_lib.formats import config, registry
from tasks_lib.formats.manifest import FileEntry, Snapshot, sha256_hex
from tasks_lib.gitops.restore import Scope, target_files
from tasks_lib.secrets import masking
from tasks_lib.secrets import scan as secret_scan
from tasks_lib.state.audit import actor
from tasks_lib.state.journal import Journal
from tasks_lib.verify_snapshot import record_verified


@dataclass(frozen=True)
class SnapshotRequest:
    task_id: str
    version: str | None = None
    bump: str | None = None
    message: str = ""
    push: bool = False
    allow_secrets: tuple[str, ...] = ()
    adopt: bool = False   # init: record the version as it is at HEAD; secrets only warned about
    allow_shared_install: bool = False  # python is a shared interpreter: may change its packages
    hotfix: bool = False   # a hotfix release on top of a stable version ("Hotfix releases")
    base: str | None = None  # its stable version (default: the current version's base)


@dataclass(frozen=True)
class SnapshotPlan:
    ws: Workspace
    task: Task
    from_version: str | None
    version: str
    tag: str
    created_at: str
    creator: str
    request: SnapshotRequest
    warnings: tuple[str, ...] = ()
    hotfix_of: str | None = None  # the base of a hotfix version
    # what the secret scan saw: each file's (size, mtime, ctime, inode) just before it was read;
    # the commit rescans only what changed since (git's own stat-cache reasoning)
    scanned: dict[str, tuple[int, int, int, int]] = field(default_factory=dict, compare=False)

    @property
    def commit_message(self) -> str:
        msg = self.request.message.strip()
        if self.request.adopt:
            msg = msg or "adopted by clawback"
        return f"{self.task.id} v{self.version}: {msg or 'snapshot'}"


@dataclass(frozen=True)
class SnapshotResult:
    task_id: str
    version: str
    from_version: str | None
    tag: str
    commit: str
    digest: str
    files: int
    packages: tuple[str, ...]
    environment: str | None
    environment_reused: bool
    exported: str | None
    pushed: str | None = None          # remote name when pushed
    push_error: str | None = None
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    hotfix_of: str | None = None       # a hotfix release: the stable version it sits on


# -- validate ------------------------------------------------------------------------------
def prepare(ws: Workspace, req: SnapshotRequest) -> SnapshotPlan:
    """Check everything before changing anything; a refusal here changes nothing."""
    ids.task_id(req.task_id)
    if req.version is not None and req.bump is not None:
        raise BadInput("--version and --bump exclude each other", "pass one of them")
    if req.bump is not None and req.bump not in ids.BUMPS:
        raise BadInput(f"invalid bump {req.bump!r}", "use --bump patch, minor or major")
    if req.hotfix and (req.version is not None or req.bump is not None or req.adopt):
        raise BadInput("--hotfix names its own version (BASE-hotfix-YYYYMMDD)",
                       "pass --hotfix without --version or --bump (choose its base with --base)")
    if req.base is not None and not req.hotfix:
        raise BadInput("--base is only for a hotfix", "add --hotfix, or leave --base out")
    if req.version is not None and ids.is_hotfix(req.version):
        raise BadInput(f"--version {ids.version(req.version)} is a hotfix version",
                       "hotfix versions are made by `clawback snapshot --hotfix [--base X.Y.Z]`")
    if filenames.has_raw_bytes(req.message):
        raise BadInput("--message is not valid UTF-8 text", "write the message in UTF-8")
    if len(req.message) > filenames.MAX_TEXT:
        raise BadInput(f"--message is longer than {filenames.MAX_TEXT} characters",
                       "say what changed in a line or two (it is the commit's subject)")
    for path in req.allow_secrets:
        if not isinstance(path, str) or not path or len(path) > 200:
            raise BadInput("invalid --allow-secret value", "name a dotted key path, e.g. tushare.token")
    reg = ws.load_registry()
    task = ws.task(req.task_id, reg)
    git = ws.git
    busy = git.operation_in_progress()
    if busy:
        raise Conflict(f"{busy} is in progress in the workspace", "finish or abort it, then retry")
    if git.head() is not None and git.branch() is None:
        raise Conflict("HEAD is detached", "check out your branch (git switch main), then retry")
    cfg_version = config.read_version(config_text(ws, task))
    current = _valid_or_none(task.version)
    if req.adopt:
        if current is None:
            raise MalformedFile(f"task {task.id}: registry version {task.version!r} is not MAJOR.MINOR.PATCH",
                                "fix the version in task_registry.json and config.yaml")
        if cfg_version is not None and _valid_or_none(cfg_version) != current:
            raise MalformedFile(
                f"task {task.id}: registry says {current} but {task.config_path} says {cfg_version}",
                "make them agree (edit one of them), then run init again")
        new = current
    elif req.hotfix:
        if cfg_version is not None and _valid_or_none(cfg_version) != current:
            raise BadInput(f"registry says {current} but {task.config_path} says {cfg_version}",
                           "make them agree (the version the working tree is at), then retry")
        base = hotfix.choose_base(git, task.id, task.entry, current, req.base)
        new = hotfix.next_hotfix(git, task.id, base, current).version
    elif req.version is not None:
        new = ids.version(req.version)
        if current is not None and ids.Version.parse(new) < ids.Version.parse(current):
            raise BadInput(f"{new} is older than {task.id}'s current version {current}",
                           f"versions only move forward; to go back run `clawback rollback --task {task.id} --to {new}`")
    else:
        if current is None:
            raise BadInput(f"task {task.id} has no valid version to bump ({task.version!r})",
                           "pass --version X.Y.Z")
        if req.bump is None and cfg_version is not None and _valid_or_none(cfg_version) != current:
            raise BadInput(f"registry says {current} but {task.config_path} says {cfg_version}",
                           "pass --version to choose the new version explicitly")
        tagged = git.tag_info(ids.version_tag(task.id, current)) is not None
        if req.bump is None and not tagged and ids.is_hotfix(current):
            raise BadInput(f"{task.id}'s version {current} is a hotfix version that was never "
                           "snapshotted", "hotfix versions are made by `clawback snapshot "
                           "--hotfix`: set the version back to its base, then run that")
        if req.bump is None and not tagged:
            new = current  # the version was bumped by hand and never snapshotted
        else:
            new = str(ids.Version.parse(current).bump(req.bump or "patch"))
    tag = ids.version_tag(task.id, new)
    if git.tag_info(tag) is not None:
        raise Conflict(f"tag {tag} already exists",
                       "another hotfix was just made: run it again for the next one" if req.hotfix
                       else "tags are immutable: choose a new version (--bump or --version)")
    versioned = versioned_paths(ws, task)
    if task.config_path not in versioned:
        why = ("the task's state_paths make it runtime state" if task.is_state(task.config_path)
               else ".gitignore ignores it (check `git check-ignore -v " + task.config_path + "`)")
        raise BadInput(f"{task.config_path} would not be versioned: {why}, so a snapshot of "
                       f"{task.id} would not hold its config (and maybe none of its files)",
                       "a task's config and code must be versioned: narrow the .gitignore rule "
                       "or the state_paths pattern, or move the task out of an ignored directory")
    filenames.refuse_unstorable(git, ws.root, versioned, "the snapshot would silently leave {it} out")
    parsed = ids.Version.parse(new)
    return SnapshotPlan(ws=ws, task=task, from_version=current, version=new, tag=tag,
                created_at=clock.format(), creator=actor(),
                hotfix_of=str(parsed.base) if parsed.is_hotfix else None,
                # the message lands in the commit and the tag: never a secret value in it
                request=replace(req, message=masking.mask(
                    req.message, values=masking.for_workspace(ws.root))))


def config_text(ws: Workspace, task: Task) -> str:
    """The task's config as text, read without following a symlink: a config that is a link
    (or lies behind one) is refused, since its version line is edited in place."""
    found = safefs.entry(ws.root, task.config_path)
    if found.kind == "missing":
        raise NotFound(f"{task.config_path} not found", "every task needs its config file")
    if found.kind != "file" or found.data is None:
        what = {"link": "a symlink", "behind-link": "behind a symlink"}.get(found.kind, "not a file")
        raise BadInput(f"{task.config_path} is {what}",
                       "make it a regular file inside the task directory: clawback edits its "
                       "version line in place and never writes through a symlink")
    try:
        return found.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFile(f"{task.config_path} is not UTF-8 text (bad byte at offset "
                            f"{exc.start})", "save it as UTF-8 and retry") from None


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _valid_or_none(value: str | None) -> str | None:
    try:
        return ids.version(value) if value is not None else None
    except BadInput:
        return None


# -- secrets -------------------------------------------------------------------------------
def scan_secrets(plan: SnapshotPlan) -> tuple[str, ...]:
    """Refuse plaintext secrets in any file the snapshot commits or in the registry entry
    (files with key paths or lines, never values; docs/design.md "Secrets")."""
    paths = versioned_paths(plan.ws, plan.task)
    plan.scanned.clear()
    plan.scanned.update((p, st) for p in paths if (st := _stat(plan.ws.root / p)) is not None)
    found = secret_scan.scan_task(plan.ws, plan.task, paths, plan.request.message)
    return secret_scan.judge(found, plan.task.id, plan.request.allow_secrets,
                             adopt=plan.request.adopt)


# -- bump ----------------------------------------------------------------------------------
def write_version(plan: SnapshotPlan, journal: Journal) -> None:
    """Set ``version`` in config.yaml (that line only) and the registry, and record the snapshot."""
    ws, task = plan.ws, plan.task
    text = config_text(ws, task)
    if config.read_version(text) != plan.version:
        new = config.set_version(text, plan.version).encode("utf-8")
        journal.restore_file_on_undo(task.config_path, new)
        safefs.write_file(ws.root, task.config_path, new, executable=None)
    reg = ws.load_registry()
    entry = reg.entry(task.id)
    assert entry is not None
    before = reg.entry(task.id)
    entry["version"] = plan.version
    record = registry.snapshot_record(
        plan.version, plan.tag, f".clawback/snapshots/snapshot-{plan.tag}.yaml", plan.created_at,
        **({"stable": True} if plan.request.adopt else {}),
        **({"hotfix_of": plan.hotfix_of} if plan.hotfix_of else {}),
    )
    entry["snapshots"] = [*(entry.get("snapshots") or []), record]
    reg.set_entry(task.id, entry)
    journal.restore_entry_on_undo(reg.path, task.id, before, reg.render(), reg.entry(task.id))
    reg.save()


def _write_atomic(path: Path, text: str) -> None:
    """Tool state under .clawback/ (the exported manifest)."""
    safefs.replace_file(path, text.encode("utf-8"))


# -- dependencies --------------------------------------------------------------------------
def base_interpreter(ws: Workspace, task: Task) -> str:
    """The interpreter a task's environment is built from (venv: clawback's base Python), or the
    one its dependencies are resolved for (an interpreter path; none: the one on PATH)."""
    mode = task.settings.python
    if mode == "venv":
        return getattr(sys, "_base_executable", None) or sys.executable
    if mode == "none":
        found = interpreter.path_python(ws.root)
        return str(found) if found else getattr(sys, "_base_executable", None) or sys.executable
    return str(interpreter.configured_path(task, ws.root))


def resolve_lock(plan: SnapshotPlan) -> deps.Lock:
    """The exact resolved set for the task's requirements.txt (a lock with hashes)."""
    req = plan.ws.root / plan.task.location / "requirements.txt"
    return deps.lock(req if req.is_file() else None, base_interpreter(plan.ws, plan.task),
                     cwd=plan.ws.root / plan.task.location)


def sync_environment(plan: SnapshotPlan, lk: deps.Lock, journal: Journal) -> deps.EnvInfo | None:
    """Make the task's environment match the lock exactly (venv), or install the pins."""
    mode = plan.task.settings.python
    if mode == "none":
        return None
    if mode != "venv":
        install_shared(plan.ws, plan.task, lk, journal, plan.request.allow_shared_install)
        return None
    state = plan.ws.ensure_state_dir()
    link = deps.env_root(state, plan.task.id) / "current"
    before = str(link.parent / os.readlink(link)) if link.is_symlink() else None
    journal.add("switch_env", f"switch {plan.task.id}'s environment back",
                state_dir=str(state), task=plan.task.id, target=before)
    return deps.ensure_env(state, plan.task.id, lk, base_interpreter(plan.ws, plan.task), verify=True)


# -- commit --------------------------------------------------------------------------------
def versioned_paths(ws: Workspace, task: Task) -> list[str]:
    """The task's files as they are now (tracked + untracked, not ignored, never behind a
    symlink), minus state: what a snapshot commits."""
    return list(task_scope(ws, task).inventory(ws.git).live)


def task_scope(ws: Workspace, task: Task) -> Scope:
    """What a snapshot versions: never what this version's rules, or the committed entry's
    (HEAD: the version before), treat as runtime state."""
    committed = committed_state(ws, task.id)
    rules = task.state.union(committed).flattened() if committed else task.state
    return Scope(ws.root, task.location or "", rules)


def commit(plan: SnapshotPlan, journal: Journal) -> str:
    """Commit the task's files; what the commit holds is scanned for secrets once more first
    (the files may have changed since the scan: an agent writing while the environment synced)."""
    ws = plan.ws
    inv = task_scope(ws, plan.task).inventory(ws.git)

    def rescan(entries: list[tuple[str, str, str]]) -> None:
        if plan.request.adopt:
            return  # init: secrets are warned about, never refused
        by_oid = {oid: (path, mode) for path, mode, oid in entries
                  if path != registry.REGISTRY_FILE
                  and not (plan.scanned and plan.scanned.get(path) == _stat(ws.root / path))}
        blobs = [(by_oid[oid][0], by_oid[oid][1], data) for oid, data in ws.git.read_blobs(by_oid)]
        known = masking.secret_items(names=masking.declared_names(ws.root))
        found = [secret_scan.report(f, plan.task)
                 for f in secret_scan.scan_blobs(plan.task, blobs, known)]
        secret_scan.judge(found, plan.task.id, plan.request.allow_secrets)

    return commit_journaled(ws, list(inv.live), plan.commit_message, journal,
                            task_id=plan.task.id, removed=list(inv.gone), check=rescan)


def committed_registry(ws: Workspace, task_id: str) -> bytes | None:
    """The registry to commit for ``task_id``: HEAD's, with only that task's entry taken from the
    working tree, so another task's uncommitted registry edit stays uncommitted (and in the
    working tree). None (commit the working file) when HEAD has no registry or lacks the task."""
    head_bytes = ws.git.show_file("HEAD", registry.REGISTRY_FILE)
    if head_bytes is None:
        return None
    work = ws.load_registry()
    try:
        head = registry.Registry.from_text(head_bytes.decode("utf-8"), ws.registry_path,
                                           ws.registry_parses)
    except (UnicodeDecodeError, MalformedFile):
        return None
    entry = work.entry(task_id)
    if entry is None or head.entry(task_id) is None or head.form != work.form:
        return None
    head.set_entry(task_id, entry)
    return head.render().encode("utf-8")


def commit_journaled(ws: Workspace, paths: list[str], message: str, journal: Journal,
                     task_id: str | None = None, removed: list[str] | None = None,
                     check: Callable[[list[tuple[str, str, str]]], None] | None = None) -> str:
    """``commit_paths`` with its undo recorded first: the index as it was, then HEAD. With
    ``task_id``, the registry is committed too, with only that task's entry changed."""
    index = ws.git.index_path()
    scratch = ws.ensure_state_dir() / "tmp"
    saved_index = scratch / f"index-before-{journal.name}"
    staged = [*paths, *(removed or []), *([registry.REGISTRY_FILE] if task_id else [])]
    if index.exists():
        safefs.replace_file(saved_index, index.read_bytes())
        journal.add("restore_index", "restore the git index entries of the committed paths",
                    saved=str(saved_index), paths=staged)
        journal.on_success(lambda: saved_index.unlink(missing_ok=True))
    journal.add("uncommit", "move HEAD back", old=ws.git.head(), new=None, message=message,
                task=journal.task)
    contents: dict[str, bytes] = {}
    if task_id is not None:
        blob = committed_registry(ws, task_id)
        if blob is None:
            paths = [*paths, registry.REGISTRY_FILE]
        else:
            contents[registry.REGISTRY_FILE] = blob
    new, _ = ws.git.commit_paths(paths, message, scratch, contents, removed=removed or [],
                                 check=check)
    journal.update_last(new=new)
    return new


# -- manifest ------------------------------------------------------------------------------
def build_manifest(plan: SnapshotPlan, commit_id: str, lk: deps.Lock) -> Snapshot:
    """Checksum git's content at ``commit_id`` (not the working tree) and assemble the manifest."""
    ws, task = plan.ws, plan.task
    git = ws.git
    scope = task_scope(ws, task)
    tree = target_files(git, scope, commit_id)  # a submodule is refused
    by_oid: dict[str, list[str]] = {}
    for path, (_, oid) in tree.items():
        by_oid.setdefault(oid, []).append(path)
    sums: dict[str, tuple[str, int]] = {}
    for oid, data in git.read_blobs(by_oid):
        for path in by_oid[oid]:
            sums[path] = (sha256_hex(data), len(data))
    files = tuple(FileEntry(path=p, checksum=sums[p][0], size=sums[p][1], mode=tree[p][0])
                  for p in sorted(tree))
    reg_bytes = git.show_file(commit_id, registry.REGISTRY_FILE)
    if reg_bytes is None:
        raise MalformedFile("task_registry.json is not in the commit", "commit it, then retry")
    entry = registry.Registry.from_text(reg_bytes.decode("utf-8"), ws.registry_path).entry(task.id) or {}
    definition = {k: v for k, v in entry.items() if k not in registry.HISTORY_KEYS}
    cfg_bytes = git.show_file(commit_id, task.config_path) or b""
    cfg_text = cfg_bytes.decode("utf-8")
    declared = [*task.settings.environment_variables,
                *[n for n in entry.get("environment_variables", []) if isinstance(n, str)]]
    env_names = config.env_var_names(config.load(cfg_text), cfg_text, declared)
    runtime = {k: v for k, v in task.settings.as_dict().items()
               if k not in ("environment_variables", "state_paths")}
    runtime["entry_point"] = task.entry_point
    return Snapshot(
        task_id=task.id, version=plan.version, created_at=plan.created_at, git_commit=commit_id,
        git_tag=plan.tag, message=plan.request.message, creator=plan.creator,
        location=task.location or "", files=files, registry_entry=definition,
        registry_checksum=registry.entry_checksum(entry), python_packages=lk.packages,
        python_lock=lk.text, python_lock_digest=lk.digest, python_mode=task.settings.python,
        environment_variables=tuple(env_names), runtime=runtime,
        state_paths=scope.state.patterns, hotfix_of=plan.hotfix_of,
    )


# -- tag, export, push ---------------------------------------------------------------------
def tag(plan: SnapshotPlan, snap: Snapshot, journal: Journal) -> str:
    journal.add("delete_tag", f"delete tag {plan.tag}", name=plan.tag, commit=snap.git_commit)
    obj = plan.ws.git.create_tag(plan.tag, snap.git_commit, snap.tag_message())
    record_verified(plan.ws, plan.tag, obj)  # its checksums were just taken from git's content
    return obj


def export(ws: Workspace, snap: Snapshot) -> Path | None:
    """Write the operator's snapshot-<tag>.yaml under .clawback/snapshots/ (a cache of the tag: the
    snapshot is complete without it, so a failure to write it is no failure; None then)."""
    out = ws.ensure_state_dir() / "snapshots" / f"snapshot-{snap.git_tag}.yaml"
    try:
        _write_atomic(out, snap.to_yaml())
    except OSError:
        return None
    return out


def push(ws: Workspace, plan: SnapshotPlan, commit_id: str) -> str:
    git = ws.git
    remote = git.default_remote()
    if remote is None:
        raise BadInput("--push: the workspace has no git remote", "add one with `git remote add origin URL`")
    branch = git.branch()
    git.push(remote, [f"{commit_id}:refs/heads/{branch}", f"refs/tags/{plan.tag}"])
    return remote
