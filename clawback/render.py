"""Text and JSON rendering of command results. Nothing here computes anything."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks_lib.core.filenames import shown


def jsonable(value: Any) -> Any:
    own = getattr(value, "as_dict", None)
    if callable(own) and not isinstance(value, type):  # a result that says how it is shown
        return jsonable(own())
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.repr or f.name != "snapshot"}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _timings(t: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in t.items())


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def snapshot(r: Any) -> str:
    frm = f"{r.from_version} -> " if r.from_version and r.from_version != r.version else ""
    env = "none" if r.environment is None else ("reused" if r.environment_reused else "built")
    lines = [
        f"snapshot {r.task_id} {frm}{r.version}: tag {r.tag} (commit {r.commit[:12]})"
        + (f", a hotfix of {r.hotfix_of}" if getattr(r, "hotfix_of", None) else ""),
        f"  files: {r.files}   packages: {', '.join(r.packages) or '(none)'}   environment: {env}",
        f"  manifest: {r.digest}",
        f"  exported: {r.exported}",
    ]
    if r.pushed:
        lines.append(f"  pushed to {r.pushed}")
    if r.push_error:
        lines.append(f"  PUSH FAILED (the snapshot is complete locally): {r.push_error}")
    lines += [f"  warning: {w}" for w in r.warnings]
    lines.append(f"  timings: {_timings(r.timings)}")
    return "\n".join(lines)


def init(r: Any) -> str:
    lines = [f"init {r.workspace}"]
    if r.gitignore_added:
        lines.append(f"  .gitignore: added {len(r.gitignore_added)} rules")
    groups: list[list[Any]] = []  # hooks with the same outcome and reason: one line
    for h in r.hooks:
        if groups and (groups[-1][0].action, groups[-1][0].reason) == (h.action, h.reason):
            groups[-1].append(h)
        else:
            groups.append([h])
    for g in groups:
        names = ", ".join(h.name for h in g)
        lines.append(f"  {names} hook{'s' if len(g) > 1 else ''}: {g[0].action}"
                     + (f" ({g[0].reason})" if g[0].reason else ""))
    for s in r.adopted:
        lines.append(f"  adopted {s.tag} (stable, {s.files} files, commit {s.commit[:12]})")
    for tid in r.already_tagged:
        lines.append(f"  {tid}: already tagged")
    for tid, why in r.failures.items():
        lines.append(f"  FAILED {tid}: {why}")
    lines += [f"  warning: {w}" for w in r.warnings]
    if not (r.adopted or r.already_tagged or r.failures):
        lines.append("  no active tasks in the registry")
    return "\n".join(lines)


def verification(v: Any) -> str:
    rows = [[("ok" if c.ok else ("warn" if c.warning else "FAIL")), c.name, c.detail]
            for c in v.checks]
    verdict = "verified" if v.ok else f"FAILED ({len(v.failures)} check(s))"
    return f"verify-snapshot {v.tag}: {verdict}\n" + table(["result", "check", "detail"], rows)


def status(rows: list[Any]) -> str:
    body = []
    for r in rows:
        running = {True: f"running ({r.pid})", False: "stopped", None: "-"}[r.running]
        drift = f"{len(r.drift)} file(s)" if r.drift else ("-" if r.status == "deleted" else "none")
        body.append([r.id, r.version or "-", r.status, "yes" if r.tagged else "no",
                     ",".join(r.stable) or "-", running, drift, r.note])
    out = [table(["task", "version", "status", "tagged", "stable", "process", "drift", "note"], body)]
    found = [(r.id, i) for r in rows for i in r.interrupted]
    if found:
        out.append("\ninterrupted operations:")
    for task_id, i in found:
        versions = f" {i.from_version or '?'} -> {i.to_version or '?'}" if i.from_version or i.to_version else ""
        writer = f" (pid {i.pid})" if i.pid else ""
        out.append(f"  {task_id} {i.action}{versions}{writer}: {_OUTCOME.get(i.outcome, i.outcome)}")
        out += [f"    put back: {d}" for d in i.undone]
        out += [f"    NOT UNDONE: {d}" for d in i.not_undone]
        out += [f"    newer work kept first in {ref} (git show {ref} --stat)" for ref in i.backups]
        out.append(f"    journal: {i.journal}")
        if i.detail:
            out.append(f"    {'next' if i.problem else 'note'}: {i.detail}")
    return "\n".join(out)


_OUTCOME = {
    "undone": "its process was gone; undone now (everything it changed is put back)",
    "undo-failed": "its process was gone; the undo COULD NOT COMPLETE",
    "in-progress": "in progress (its task lock is held); left alone",
    "deferred": "its process was gone, but the workspace stayed locked; not undone yet",
    "interrupted": "interrupted; not undone",
    "undo-failed-earlier": "an earlier undo COULD NOT COMPLETE",
}


_ACTION_WORDS = {
    "rolled-back": "rolled back {a.from_version} -> {a.to_version}",
    "rollback-running": "rollback {a.from_version} -> {a.to_version} still running",
    "escalated": "ESCALATED",
    "source-errors": "ESCALATED (health source unreadable)",
    "promoted": "promoted {a.to_version} to stable",
    "promote-skipped": "not promoted",
    "held": "held (escalated before)",
    "released": "hold released",
}


def health(run: Any) -> str:
    from tasks_lib.health.checkup import table_rows

    rows = table_rows(run.results)
    out = [table(list(rows[0]), [list(r.values()) for r in rows]) if rows else "no active tasks"]
    for r in run.results:
        for e in r.rate.top_errors:
            out.append(f"  {r.task_id} error x{e.count}: {e.message}")
    for a in run.actions:
        what = _ACTION_WORDS.get(a.action, a.action).format(a=a)
        alerted = f" [alert {a.alerted}]" if a.alerted else ""
        link = f" ({a.run_url})" if a.run_url else ""
        out.append(f"  {a.task_id}: {what}: {a.detail}{link}{alerted}")
    bad = ", ".join(run.unhealthy)
    out.append(f"unhealthy: {bad}" if bad else "all healthy or inconclusive")
    return "\n".join(out)


def promote(r: Any) -> str:
    if r.commit is None:
        return f"{r.task_id} {r.version} is stable already; nothing changed"
    lifted = " (quarantine lifted)" if r.lifted_quarantine else ""
    return f"{r.task_id} {r.version} marked stable{lifted}: commit {r.commit[:12]}"


def history(h: Any) -> str:
    out = [f"history {h.id} (current {h.current})"]
    rows = [[v["version"], v["tag"], ", ".join(
                ([f"hotfix of {v['hotfix_of']}"] if v.get("hotfix_of") else [])
                + (["stable"] if v.get("stable") else ["quarantined"] if v.get("quarantined") else [])),
             v["at"], v["by"], v["subject"]]
            for v in h.versions]
    out.append(table(["version", "tag", "mark", "when", "who", "what"], rows))
    if h.rollbacks:
        out.append("rollbacks:")
        for r in h.rollbacks:
            out.append(f"  {r.get('from_version', '?')} -> {r.get('to_version', r.get('version', '?'))}"
                       f" at {r.get('rolled_back_at', r.get('at', '?'))}: {r.get('reason', r.get('subject', ''))}"
                       f"{' (' + r['tag'] + ')' if r.get('tag') else ''}")
    if h.events:
        out.append("audit log:")
        for e in h.events[-20:]:
            frm, to = e.get("from"), e.get("to")
            versions = f"{frm} -> {to}" if frm and to else (frm or to or "")
            out.append(f"  {e['ts']} {e['actor']} {e['action']} {versions} {e['result']}"
                       f"{' (' + e['reason'] + ')' if e.get('reason') else ''}")
    return "\n".join(out)


def staged_secrets(r: Any) -> str:
    if r.ok:
        return ""
    lines = ["clawback: refusing to commit plaintext secrets (key paths; values never shown):"]
    lines += [f"  {path}: {', '.join(keys)}" for path, keys in r.findings.items()]
    lines.append("  next: replace each value with a reference like `token: ${TUSHARE_TOKEN}` and set the")
    lines.append("  variable where the task runs; to commit anyway once: git commit --no-verify")
    return "\n".join(lines)


def levels(task: str, expected: str, lvls: Any) -> str:
    ok = all(lv.ok for lv in lvls)
    from tasks_lib.verify_live import LEVEL_HEADERS  # imported already: it made the levels

    head = f"verify-rollback {task} {expected}: {'verified' if ok else 'FAILED'}"
    return head + "\n" + table(list(LEVEL_HEADERS), [lv.cells() for lv in lvls])


def rollback(r: Any) -> str:
    f = r.files
    proc = f"restarted (pid {r.pid})" if r.was_running else "was not running: left stopped"
    return "\n".join([
        (f"repair {r.task_id} {r.to_version} from its snapshot" if r.from_version == r.to_version
         else f"rollback {r.task_id} {r.from_version} -> {r.to_version}")
        + f": tag {r.tag} (commit {r.commit[:12]})",
        f"  files: {len(f.changed)} changed, {len(f.added)} restored, {len(f.removed)} removed",
        f"  packages: {', '.join(r.packages) or '(none)'}   process: {proc}",
        f"  backup of what was there: {r.backup_ref}",
        levels(r.task_id, r.to_version, r.levels),
        f"  timings: {_timings(r.timings)}",
    ])


def rollback_plan(p: Any) -> str:
    f = p["files"]
    lines = [f"rollback {p['task']} {p['from']} -> {p['to']} (dry run: nothing changed)",
             f"  tag to create: {p['tag']}",
             f"  files changed: {_names(f.changed)}",
             f"  files restored: {_names(f.added)}",
             f"  files removed: {_names(f.removed)}",
             f"  packages removed: {', '.join(p['packages_removed']) or '-'}",
             f"  packages added: {', '.join(p['packages_added']) or '-'}",
             f"  process: {p['process']}"]
    return "\n".join(lines)


def _names(paths: Any) -> str:
    return ", ".join(shown(p) for p in paths) or "-"


def demo(r: Any) -> str:
    return r.summary
