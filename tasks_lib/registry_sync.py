"""sync-registry (docs/design.md, "Registry sync"): do the registry, each task's config.yaml
``version:``, the version tags and the ``snapshots[]`` records agree?

:func:`check` reads and reports: one :class:`Finding` per mismatch (a kind, the task, a detail,
and either the :class:`Repair` sync-registry makes itself, because it needs no guess, or the
command with which a person decides). It is what git hooks run after every merge and checkout,
so its cost is a constant number of git processes whatever the number of tasks: the tags and
their messages through one ``cat-file`` (:meth:`Git.tag_messages`), reachability of every tag
in one ``rev-list`` (:meth:`Git.unreached`), no file hashed. :func:`apply` is the repair of one
entry, as data; flows/sync_registry.py commits it. Plain Python, no Prefect.

Only validated strings (task ids, versions, tag names, canonical locations) are ever put in a
finding: a registry value that is not one is described, never echoed (it could be a secret).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tasks_lib.core import ids, safefs
from tasks_lib.core.errors import BadInput, ClawbackError
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.formats import config, registry
from tasks_lib.version_tags import VersionTag, tag_version, version_tags

# the kinds, in the order a task's findings are listed
KINDS = ("unusable-entry", "location-missing", "config-unreadable", "version-mismatch",
         "not-snapshotted", "record-tag-missing", "record-mismatch", "tag-without-record",
         "tag-unreachable")


@dataclass(frozen=True)
class Repair:
    """A change sync-registry makes to one task's entry: ``add-record`` (a ``snapshots[]``
    record from a tag's manifest) or ``set-version`` (the registry's ``version``)."""

    action: Literal["add-record", "set-version"]
    version: str
    tag: str | None = None
    record: dict[str, Any] | None = None

    @property
    def summary(self) -> str:
        if self.action == "add-record":
            return f"record {self.tag}"
        return f"version {self.version}"


@dataclass(frozen=True)
class Finding:
    kind: str
    task: str
    detail: str
    fix: str | None = None          # what a person runs to decide it
    repair: Repair | None = None    # what `sync-registry` (without --check) does itself
    tag: str | None = None
    version: str | None = None

    def line(self) -> str:
        """One line: the task, the kind, the detail, then the repair or the command."""
        then = (f"sync-registry repairs it ({self.repair.summary})" if self.repair
                else f"fix: {self.fix}" if self.fix else "")
        return f"{self.task} {self.kind}: {self.detail}" + (f" -> {then}" if then else "")


@dataclass(frozen=True)
class SyncReport:
    tasks: tuple[str, ...]          # the tasks checked, in registry order
    skipped: tuple[str, ...]        # deleted tasks and tasks without a location
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def repairs(self) -> dict[str, tuple[Repair, ...]]:
        """What needs no guess, by task (registry order)."""
        found: dict[str, list[Repair]] = {}
        for f in self.findings:
            if f.repair is not None:
                found.setdefault(f.task, []).append(f.repair)
        return {t: tuple(r) for t, r in found.items()}

    def needs_person(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.repair is None)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` result (hooks and scripts read it: keep it stable)."""
        return {"ok": self.ok, "tasks": list(self.tasks), "skipped": list(self.skipped),
                "findings": [dataclasses.asdict(f) for f in self.findings]}


def check(ws: Workspace, task_id: str | None = None) -> SyncReport:
    """Every active task's mismatches (``task_id``: that task's only; unknown, deleted or
    unusable is bad input, as for any command on one task). Deleted tasks are skipped; an entry
    that cannot be used is one finding, and the others are checked all the same."""
    reg = ws.load_registry()
    if task_id is not None:
        tasks, broken = [ws.task(task_id, reg)], []
        pattern = f"refs/tags/{task_id}-v*"
    else:
        scan = ws.scan(reg)
        tasks, broken = scan.tasks, [b for b in scan.broken if b.status != "deleted"]
        pattern = "refs/tags"
    active = [t for t in tasks if t.active]
    git = ws.git
    tags = version_tags(git.tag_messages(pattern), {t.id for t in active})
    commits = [t.info.commit for ts in tags.values() for t in ts if t.info.commit]
    unreached = git.unreached(commits) if commits else set()
    findings: list[Finding] = []
    remote: list[str | None] = []   # the default remote, looked up once and only if needed

    def fetch_hint(tag: str) -> str:
        if not remote:
            remote.append(git.default_remote())
        return (f"git fetch {remote[0]} tag {tag}, or remove the record from task_registry.json"
                if remote[0] else "remove the record from task_registry.json")

    order = {tid: n for n, tid in enumerate(reg.task_ids())}
    for b in broken:
        findings.append(Finding("unusable-entry", b.id, b.error.message, fix=b.error.hint
                                or "fix the entry in task_registry.json"))
    for task in active:
        findings += _check_task(ws, task, tags.get(task.id, []), unreached, fetch_hint)
    findings.sort(key=lambda f: (order.get(f.task, len(order)), KINDS.index(f.kind)))
    return SyncReport(tuple(t.id for t in active), tuple(t.id for t in tasks if not t.active),
                      tuple(findings))


def _check_task(ws: Workspace, task: Task, tags: list[VersionTag], unreached: set[str],
                fetch_hint: Any) -> list[Finding]:
    tid = task.id
    out: list[Finding] = []
    verify = f"clawback verify-snapshot --task {tid} --version "
    by_name = {t.info.name: t for t in tags}
    usable = {t.version for t in tags if t.problem is None}
    tagged = {t.version for t in tags}
    reg_version = _valid(task.version)

    # the location and the config's version
    cfg_version: str | None = None
    location = task.location or ""
    if safefs.check_dir(ws.root, location) == "missing":
        out.append(Finding("location-missing", tid, f"{location} does not exist", fix=(
            f"clawback recover --task {tid} --target-version {reg_version}"
            if reg_version in usable else
            f'restore {location}, or set "status": "deleted" for {tid} in task_registry.json')))
    else:
        cfg_version, problem = _config_version(ws, task)
        if problem:
            out.append(Finding("config-unreadable", tid, problem,
                               fix=f"make {task.config_path} a regular UTF-8 file with a "
                                   "`version: X.Y.Z` line"))
    if cfg_version is not None and cfg_version != reg_version:
        registry_says = reg_version or "no valid version"
        if cfg_version in usable:
            out.append(Finding("version-mismatch", tid, f"registry {registry_says}, "
                               f"{task.config_file} {cfg_version} (tagged)", version=cfg_version,
                               repair=Repair("set-version", cfg_version)))
        else:
            out.append(Finding("version-mismatch", tid, f"registry {registry_says}, "
                               f"{task.config_file} {cfg_version}", version=cfg_version,
                               fix=f"clawback snapshot --task {tid} --version {cfg_version}"))
    claimed = cfg_version or reg_version
    if claimed is not None and claimed not in tagged:
        how = "" if claimed == reg_version else f" --version {claimed}"
        out.append(Finding("not-snapshotted", tid, f"{claimed} has no tag "
                           f"{ids.version_tag(tid, claimed)}", version=claimed,
                           fix=f"clawback snapshot --task {tid}{how}"))
    elif claimed is None:
        out.append(Finding("version-mismatch", tid, "the registry's version is not "
                           "MAJOR.MINOR.PATCH", fix=f"set {tid}'s version in task_registry.json"))

    # the records against the tags
    recorded: set[str] = set()
    for n, rec in enumerate(task.entry.get("snapshots") or []):
        where = f"snapshots[{n}]"
        if not isinstance(rec, dict):
            out.append(Finding("record-mismatch", tid, f"{where} is not an object",
                               fix=f"fix {tid}'s {where} in task_registry.json"))
            continue
        version = _valid(rec.get("version"))
        name = rec.get("git_tag", ids.version_tag(tid, version) if version else None)
        if not isinstance(name, str) or tag_version(name, tid) is None:
            out.append(Finding("record-mismatch", tid, f"{where} names no version tag of {tid}",
                               version=version, fix=f"fix {tid}'s {where} in task_registry.json"))
            continue
        recorded.add(name)
        tag = by_name.get(name)
        if tag is None:
            out.append(Finding("record-tag-missing", tid, f"{where} records {name}, which does "
                               "not exist", tag=name, version=version, fix=fetch_hint(name)))
        elif tag.problem is not None:
            out.append(Finding("record-mismatch", tid, f"{name}: {tag.problem}", tag=name,
                               version=tag.version, fix=verify + tag.version))
        else:
            differ = _differences(rec, tag)
            if differ:
                out.append(Finding("record-mismatch", tid, f"{where} disagrees with the manifest "
                                   f"of {name} ({', '.join(differ)})", tag=name,
                                   version=tag.version,
                                   fix=f"correct {tid}'s {where} in task_registry.json: the tag "
                                       "is the source of truth"))

    # tags without a record, and tags no branch reaches
    for tag in sorted(tags, key=lambda t: t.info.name):
        name = tag.info.name
        if name not in recorded:
            if tag.problem is None:
                out.append(Finding("tag-without-record", tid, f"{name} has no snapshots[] "
                                   "record (made on another clone?)", tag=name,
                                   version=tag.version, repair=_add_record(tag)))
            else:
                out.append(Finding("tag-without-record", tid, f"{name} has no record and "
                                   f"{tag.problem}", tag=name, version=tag.version,
                                   fix=verify + tag.version))
        if tag.info.commit in unreached:
            out.append(Finding("tag-unreachable", tid, f"{name} points at a commit no branch "
                               "reaches", tag=name, version=tag.version,
                               fix=f"git branch keep/{name} {name} (or merge it)"))
    return out


def _differences(rec: dict[str, Any], tag: VersionTag) -> list[str]:
    assert tag.manifest is not None
    snap = tag.manifest.snapshot
    wanted = {"version": snap.version, "git_tag": snap.git_tag, "created_at": snap.created_at}
    if "digest" in rec:
        wanted["digest"] = tag.manifest.recorded_digest or ""
    return [key for key, value in wanted.items() if rec.get(key) != value]


def _add_record(tag: VersionTag) -> Repair:
    assert tag.manifest is not None
    snap = tag.manifest.snapshot
    record = registry.snapshot_record(snap.version, snap.git_tag,
                                      f".clawback/snapshots/snapshot-{snap.git_tag}.yaml",
                                      snap.created_at)
    return Repair("add-record", snap.version, snap.git_tag, record)


def _config_version(ws: Workspace, task: Task) -> tuple[str | None, str | None]:
    """(the config's valid version, None) or (None, what is wrong), never following a link."""
    found = safefs.entry(ws.root, task.config_path)
    if found.kind == "missing":
        return None, f"{task.config_path} does not exist"
    if found.kind != "file" or found.data is None:
        return None, f"{task.config_path} is not a regular file"
    try:
        text = found.data.decode("utf-8")
        raw = config.read_version(text)
    except (UnicodeDecodeError, ClawbackError):
        return None, f"{task.config_path} is not UTF-8 text"
    if raw is None:
        return None, f"{task.config_path} has no `version:`"
    version = _valid(raw)
    if version is None:
        return None, f"{task.config_path}'s version is not MAJOR.MINOR.PATCH"
    return version, None


def _valid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return ids.version(value)
    except BadInput:
        return None


def apply(entry: dict[str, Any], repairs: Sequence[Repair]) -> dict[str, Any]:
    """A copy of ``entry`` with ``repairs`` made: records appended (once: a record of the tag
    already there is kept as it is), the version set."""
    new = copy.deepcopy(entry)
    records = list(new.get("snapshots") or [])
    have = {r.get("git_tag") for r in records if isinstance(r, dict)}
    for r in repairs:
        if r.action == "add-record" and r.record is not None and r.tag not in have:
            records.append(copy.deepcopy(r.record))
            have.add(r.tag)
        elif r.action == "set-version":
            new["version"] = r.version
    if len(records) != len(new.get("snapshots") or []):
        new["snapshots"] = records
    return new
