"""status and history (no Prefect). A constant number of git calls for the whole workspace, so
100 tasks answer as fast as one.

status reads, with one exception: an operation killed midway leaves its journal in
``.clawback/journal/``; with ``repair=True`` (the CLI's default) status tries that task's lock
without waiting. Held: the operation is really running, and status only says so. Free: the writer
is dead, and status undoes the journal as the next snapshot or rollback would (audited as
``recover-interrupted``). With no journal, status takes no lock and does nothing extra.
"""

from __future__ import annotations

import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import psutil

from tasks_lib.core import ids, safefs
from tasks_lib.core.errors import BadInput, ClawbackError, Conflict, NotFound
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.formats import config
from tasks_lib.runtime.process import run_state
from tasks_lib.secrets import masking
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.oplocks import task_lock, workspace_lock
from tasks_lib.state.recovery import Left, Recovery, left_behind, recover_interrupted
from tasks_lib.versiondiff.keyed import secret_values, shown_values

# how long status waits for the workspace lock (another task's snapshot or rollback is writing
# git or the registry) before leaving an interrupted operation to the next status
WORKSPACE_WAIT_S = 10.0

# Interruption.outcome: what status found and did
UNDONE = "undone"                      # writer gone; undone now
UNDO_FAILED = "undo-failed"            # writer gone; some changes could not be put back
IN_PROGRESS = "in-progress"            # the task lock is held: the operation is running
DEFERRED = "deferred"                  # writer gone, but the workspace lock stayed busy
INTERRUPTED = "interrupted"            # found and left alone (read-only)
FAILED_EARLIER = "undo-failed-earlier"  # a .failed.json an earlier undo kept for a human
PROBLEMS = (UNDO_FAILED, FAILED_EARLIER)


@dataclass(frozen=True)
class Interruption:
    """An operation on a task that did not finish, and what status did about it."""
    action: str                        # rollback, snapshot
    from_version: str | None
    to_version: str | None
    pid: int | None                    # the process that wrote the journal
    outcome: str
    journal: str                       # the journal file; for the failed outcomes, the kept one
    undone: tuple[str, ...] = ()       # changes put back, newest first
    not_undone: tuple[str, ...] = ()   # changes that could not be, with why
    detail: str = ""
    backups: tuple[str, ...] = ()      # refs keeping newer work the undo met (before it restored)

    @property
    def problem(self) -> bool:
        return self.outcome in PROBLEMS


@dataclass(frozen=True)
class TaskStatus:
    id: str
    status: str
    version: str | None
    tagged: bool
    stable: tuple[str, ...]
    quarantined: tuple[str, ...]
    running: bool | None
    pid: int | None
    drift: tuple[str, ...]      # versioned files that differ from the current version's snapshot
    note: str = ""
    interrupted: tuple[Interruption, ...] = ()
    error: str | None = None    # the entry cannot be used as it stands (status "error")


def _marks(task: Task, key: str) -> tuple[str, ...]:
    return tuple(str(s.get("version")) for s in task.entry.get("snapshots") or []
                 if isinstance(s, dict) and s.get(key))


def workspace_status(ws: Workspace, *, repair: bool = False,
                     only: str | None = None) -> list[TaskStatus]:
    """Every task's state. ``repair``: undo interrupted operations whose writer is gone first
    (only ``only``'s, when given), so the rows show the state after the undo."""
    scan = ws.scan()
    tasks = scan.tasks
    found = interruptions(ws, {only} if only else {t.id for t in tasks if t.active}, repair=repair)
    if any(i.outcome in (UNDONE, UNDO_FAILED) for found_ in found.values() for i in found_):
        scan = ws.scan()  # the undo may have put the registry back
        tasks = scan.tasks
    git = ws.git
    tag_names = {t.name for t in git.tags()}
    active = [t for t in tasks if t.active]
    dirty: dict[str, list[str]] = {t.id: [] for t in active}
    if active and git.head() is not None:
        owner = {t.location: t for t in active}
        for path in git.status_paths_many([t.location for t in active]):
            for loc, task in owner.items():
                if path.startswith(loc + "/") and not task.is_state(path):
                    dirty[task.id].append(path)
    # committed changes since the version's tag: compare the task directory's tree ids
    queries: list[str] = []
    for t in active:
        tag = _tag(t)
        if tag and tag in tag_names:
            queries += [f"refs/tags/{tag}^{{commit}}:{t.location}", f"HEAD:{t.location}"]
    trees = git.object_ids(queries)
    out: list[TaskStatus] = []
    order = {tid: n for n, tid in enumerate(ws.load_registry().task_ids())}
    for b in scan.broken:
        out.append(TaskStatus(b.id, "error", b.version, False, (), (), None, None, (),
                              b.error.message, error=str(b.error)))
    for t in tasks:
        if not t.active:
            out.append(TaskStatus(t.id, t.status, t.version, False, _marks(t, "stable"),
                                  _marks(t, "quarantined"), None, None, (), "not managed"))
            continue
        tag = _tag(t)
        tagged = bool(tag and tag in tag_names)
        drift = list(dirty.get(t.id, []))
        if tagged:
            at_tag = trees.get(f"refs/tags/{tag}^{{commit}}:{t.location}")
            at_head = trees.get(f"HEAD:{t.location}")
            if at_tag != at_head:
                drift += [p for p in git.changed_between(f"refs/tags/{tag}", "HEAD", t.location)
                          if not t.is_state(p) and p not in drift]
        rs = run_state(ws, t)
        note = "" if tagged else "current version not snapshotted"
        mine = tuple(found.get(t.id, ()))
        if mine:
            note = "; ".join(_note(i) for i in mine)
        out.append(TaskStatus(t.id, t.status, t.version, tagged, _marks(t, "stable"),
                              _marks(t, "quarantined"), rs.running, rs.pid, tuple(sorted(drift)),
                              note or rs.detail, mine))
    out.sort(key=lambda row: order.get(row.id, len(order)))  # registry order, broken ones too
    return out


# -- interrupted operations ----------------------------------------------------------------
def interruptions(ws: Workspace, task_ids: Collection[str], *,
                  repair: bool) -> dict[str, list[Interruption]]:
    """Journals left in .clawback/journal/ by operations on ``task_ids`` (one directory listing;
    nothing else when there are none), undone where their writer is gone if ``repair``."""
    left = [j for j in left_behind(ws.state_dir) if j.task in task_ids]
    if not left:
        return {}
    found: dict[str, list[Interruption]] = {}
    live: dict[str, list[Left]] = {}
    for j in left:
        if not j.failed:
            live.setdefault(j.task, []).append(j)
    audit = AuditLog(ws.ensure_state_dir()) if repair and live else None  # (checks the links)
    for task_id, journals in live.items():
        if audit is not None:
            found[task_id] = _repair(ws, task_id, journals, audit)
        else:
            found[task_id] = [_found(j, IN_PROGRESS if _writer_alive(j) else INTERRUPTED,
                                     _read_only_detail(j)) for j in journals]
    for j in left:
        if j.failed:
            found.setdefault(j.task, []).append(_found(
                j, FAILED_EARLIER, "an earlier undo could not complete; fix what it names by hand, "
                                   "then delete this file"))
    return found


def _repair(ws: Workspace, task_id: str, journals: list[Left], audit: AuditLog) -> list[Interruption]:
    action = str(journals[0].operation.get("action") or "operation")
    purpose = f"status: undo an interrupted {action}"
    try:
        with task_lock(ws.state_dir, task_id, purpose):
            try:
                with workspace_lock(ws.state_dir, purpose, timeout=WORKSPACE_WAIT_S):
                    recs = recover_interrupted(ws.root, ws.state_dir, task_id, audit,
                                               found_by="status")
            except Conflict as exc:
                return [_found(j, DEFERRED, f"{exc.message}; run status again") for j in journals]
    except Conflict as exc:  # the task lock: its operation is alive; leave everything alone
        return [_found(j, IN_PROGRESS, exc.message) for j in journals]
    pids = {str(j.path): j.pid for j in journals}
    out = [_recovered(rec, pids.get(rec.journal)) for rec in recs]
    handled = {rec.journal for rec in recs}
    out += [_found(j, INTERRUPTED, "not undone: an earlier journal of this task could not be")
            for j in journals if str(j.path) not in handled and j.path.exists()]
    return out


def _recovered(rec: Recovery, pid: int | None) -> Interruption:
    op = rec.operation
    return Interruption(str(op.get("action") or "operation"), op.get("from"), op.get("to"), pid,
                        UNDO_FAILED if rec.failures else UNDONE, rec.kept_as or rec.journal,
                        rec.undone, rec.failures,
                        "fix what could not be undone by hand (see the git log and the audit log), "
                        "then delete the kept journal" if rec.failures else
                        "recorded in the audit log as recover-interrupted", rec.backups)


def _found(j: Left, outcome: str, detail: str) -> Interruption:
    op = j.operation
    return Interruption(str(op.get("action") or "operation"), op.get("from"), op.get("to"), j.pid,
                        outcome, str(j.path), detail=detail)


def _writer_alive(j: Left) -> bool:
    return j.pid is not None and j.host == socket.gethostname() and psutil.pid_exists(j.pid)


def _read_only_detail(j: Left) -> str:
    if _writer_alive(j):
        return f"its process (pid {j.pid}) is alive: probably still running"
    writer = f"its process (pid {j.pid})" if j.pid is not None else "its process"
    return (f"{writer} is gone; `clawback status` without --read-only, or the next snapshot or "
            f"rollback of {j.task}, undoes it")


def _note(i: Interruption) -> str:
    return {
        UNDONE: f"interrupted {i.action} undone",
        UNDO_FAILED: f"interrupted {i.action}: UNDO FAILED",
        IN_PROGRESS: f"{i.action} in progress",
        DEFERRED: f"interrupted {i.action}: not undone yet (workspace busy)",
        INTERRUPTED: f"interrupted {i.action}: not undone",
        FAILED_EARLIER: f"interrupted {i.action}: an earlier undo FAILED",
    }.get(i.outcome, i.outcome)


def _tag(t: Task) -> str | None:
    try:
        return ids.version_tag(t.id, t.version or "")
    except BadInput:
        return None


@dataclass(frozen=True)
class TaskHistory:
    id: str
    current: str | None
    versions: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None    # the registry entry cannot be used as it stands


def task_history(ws: Workspace, task_id: str) -> TaskHistory:
    """Versions, rollbacks and audit events; for an entry that cannot be used as it stands the
    same, read from the raw entry, with ``error`` set (the CLI exits 2)."""
    ids.task_id(task_id)
    error = None
    try:
        task = ws.task(task_id, active=False)
        entry, current = task.entry, task.version
    except NotFound:
        raise
    except ClawbackError as exc:
        entry = ws.load_registry().entry(task_id) or {}
        current = str(entry.get("version")) if entry.get("version") is not None else None
        error = str(exc)
    marks = [s for s in entry.get("snapshots") or [] if isinstance(s, dict)]
    stable = {str(s.get("version")) for s in marks if s.get("stable")}
    quarantined = {str(s.get("version")) for s in marks if s.get("quarantined")}
    versions, rollback_tags = [], []
    for info in ws.git.tags(f"refs/tags/{task_id}-v*"):
        parsed = ids.parse_tag(info.name)
        if parsed is None or parsed.task != task_id:
            continue
        row = {"tag": info.name, "version": parsed.version, "kind": parsed.kind,
               "commit": (info.commit or "")[:12], "by": info.tagger, "at": info.date,
               "subject": info.subject}
        if parsed.carries_manifest:  # a hotfix is a version too, shown with its base
            if parsed.kind == "hotfix":
                row["hotfix_of"] = parsed.base
            row["stable"] = parsed.version in stable
            row["quarantined"] = parsed.version in quarantined
            versions.append(row)
        else:
            rollback_tags.append(row)
    versions.sort(key=lambda r: ids.Version.parse(r["version"]))
    rollbacks = [dict(r) for r in entry.get("rollback_history") or [] if isinstance(r, dict)]
    recorded = {r.get("tag") for r in rollbacks}
    rollback_tags = [t for t in rollback_tags if t["tag"] not in recorded]  # e.g. from another branch
    events = [{k: e.get(k) for k in ("ts", "actor", "action", "from", "to", "reason", "result",
                                     "duration_s")}
              for e in AuditLog(ws.state_dir).entries(task_id)]
    _mask_messages(ws, entry, task if error is None else None, versions + rollback_tags,
                   rollbacks, events)
    return TaskHistory(task_id, current, versions, rollbacks + rollback_tags, events, error)


def _mask_messages(ws: Workspace, entry: dict, task: Task | None, *rows: list[dict]) -> None:
    """A snapshot message is typed by a person: a secret value of the task (its live config,
    its registry entry) or one ``masking.mask`` finds is ``***`` in a subject or a reason.
    docs/design.md, "Secrets"."""
    parsed = None
    if task is not None:
        try:  # best effort: a config that cannot be read masks nothing more (status reports it)
            data = safefs.read_bytes(ws.root, task.config_path)
            parsed = config.load(data.decode("utf-8", "replace"), "config.yaml") if data else None
        except (ClawbackError, OSError):
            parsed = None
    values = sorted({*masking.for_workspace(ws.root), *shown_values(secret_values(entry, parsed))},
                    key=len, reverse=True)
    for group in rows:
        for row in group:
            for key in ("subject", "reason", "message"):
                if isinstance(row.get(key), str):
                    row[key] = masking.mask(row[key], values=values)
