"""What the git hooks and init's hook installation say (docs/design.md, "init"): one line per
finding, the command that fixes it, never a secret value (the caller masks what it prints)."""

from __future__ import annotations

from typing import Any

from clawback import render
from tasks_lib.core.filenames import shown


def staged_secrets(found: Any) -> str:
    return render.staged_secrets(found)


def bumps(found: tuple[Any, ...]) -> str:
    """pre-commit's warning: a version change with no snapshot (the commit still goes ahead)."""
    if not found:
        return ""
    lines = ["clawback: warning: a version changes without a snapshot (the commit goes ahead):"]
    for b in found:
        where = ", ".join(shown(w) for w in b.where)
        if b.valid:
            lines.append(f"  {b.task_id}: version {b.version!r} ({where}) has no tag; "
                         f"to make it a version rollback can return to: {b.next}")
        else:
            lines.append(f"  {b.task_id}: version {b.version!r} ({where}) is not MAJOR.MINOR.PATCH, "
                         f"so it can never be tagged; fix it, then: {b.next}")
    return "\n".join(lines)


def push(result: Any) -> str:
    """pre-push: the refused tags with what failed; nothing when every tag verified."""
    lines: list[str] = []
    if result.unreadable:
        lines.append("clawback pre-push: refusing the push: git's ref lines could not be read: "
                     + ", ".join(result.unreadable))
    bad = [t for t in result.tags if not t.ok]
    for t in bad:
        lines.append(f"clawback pre-push: refusing to push {t.tag}: " + "; ".join(t.problems))
        if t.next:
            lines.append(f"  next: {t.next}")
    if lines:
        lines.append("  a version tag that does not verify must not reach the remote other clones "
                     "trust; to push anyway once: git push --no-verify")
    return "\n".join(lines)


def registry_check(hook: str, check: Any) -> str:
    """post-merge / post-checkout: a warning when sync-registry --check found something."""
    if not check.ran or check.exit_code == 0:
        return ""
    why = ("the registry, the configs and the tags disagree" if check.exit_code == 1
           else "the registry check could not run")
    body = "\n".join(f"  {line}" for line in check.report.splitlines()[:40])
    return (f"clawback {hook}: warning: {why} (the {hook.split('-')[1]} went ahead):\n{body}\n"
            "  next: `clawback sync-registry` repairs what needs no decision and lists the rest")

