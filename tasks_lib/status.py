"""status and history (read-only; no Prefect). A constant number of git calls for the whole
workspace, so 100 tasks answer as fast as one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks_lib import ids
from tasks_lib.audit import AuditLog
from tasks_lib.errors import BadInput
from tasks_lib.journal import interrupted
from tasks_lib.process import run_state
from tasks_lib.workspace import Task, Workspace


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


def _marks(task: Task, key: str) -> tuple[str, ...]:
    return tuple(str(s.get("version")) for s in task.entry.get("snapshots") or []
                 if isinstance(s, dict) and s.get(key))


def workspace_status(ws: Workspace) -> list[TaskStatus]:
    git = ws.git
    tasks = ws.tasks()
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
        if interrupted(ws.state_dir, f"{t.id}-"):
            note = "an interrupted operation: the next snapshot of this task undoes it"
        out.append(TaskStatus(t.id, t.status, t.version, tagged, _marks(t, "stable"),
                              _marks(t, "quarantined"), rs.running, rs.pid, tuple(sorted(drift)),
                              note or rs.detail))
    return out


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


def task_history(ws: Workspace, task_id: str) -> TaskHistory:
    task = ws.task(task_id, active=False)
    stable, quarantined = set(_marks(task, "stable")), set(_marks(task, "quarantined"))
    versions, rollback_tags = [], []
    for info in ws.git.tags(f"refs/tags/{task_id}-v*"):
        parsed = ids.parse_tag(info.name)
        if parsed is None or parsed.task != task_id:
            continue
        row = {"tag": info.name, "version": parsed.version, "kind": parsed.kind,
               "commit": (info.commit or "")[:12], "by": info.tagger, "at": info.date,
               "subject": info.subject}
        if parsed.kind == "version":
            row["stable"] = parsed.version in stable
            row["quarantined"] = parsed.version in quarantined
            versions.append(row)
        else:
            rollback_tags.append(row)
    versions.sort(key=lambda r: ids.Version.parse(r["version"]))
    rollbacks = [dict(r) for r in task.entry.get("rollback_history") or [] if isinstance(r, dict)]
    recorded = {r.get("tag") for r in rollbacks}
    rollback_tags = [t for t in rollback_tags if t["tag"] not in recorded]  # e.g. from another branch
    events = [{k: e.get(k) for k in ("ts", "actor", "action", "from", "to", "reason", "result",
                                     "duration_s")}
              for e in AuditLog(ws.state_dir).entries(task_id)]
    return TaskHistory(task_id, task.version, versions, rollbacks + rollback_tags, events)
