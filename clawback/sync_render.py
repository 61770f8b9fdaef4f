"""Text of ``clawback sync-registry``: one line per mismatch (git hooks show it after every
merge and checkout, so it stays short), then one line of summary."""

from __future__ import annotations

from typing import Any


def report(r: Any) -> str:
    """A check (tasks_lib.registry_sync.SyncReport)."""
    lines = [f.line() for f in r.findings]
    if not lines:
        return f"registry, configs and tags agree ({len(r.tasks)} tasks)"
    fixable = sum(1 for f in r.findings if f.repair is not None)
    summary = f"{len(lines)} mismatch{'es' if len(lines) != 1 else ''}"
    if fixable:
        summary += f"; {fixable} repaired by `clawback sync-registry` (no guess needed)"
    return "\n".join([*lines, summary])


def repaired(result: Any) -> str:
    """A repair run (flows.sync_registry.SyncResult)."""
    lines = [f"{r.task_id}: {'; '.join(x.summary for x in r.repairs)}: commit {r.commit[:12]}"
             for r in result.repaired if r.commit]
    lines += [f"{tid}: repair FAILED: {why}" for tid, why in result.failed.items()]
    left = result.remaining.needs_person() if result.remaining is not None else ()
    if left:
        lines.append("needs a person:")
        lines += [f"  {f.line()}" for f in left]
    elif not result.failed:
        lines.append("registry, configs and tags agree")
    return "\n".join(lines)
