"""The diff of a rollback as a Prefect markdown artifact (``diff-<task>``): what the rollback
changed, from the version it left to the one it restored (docs/design.md, "Diff").

Published only inside a flow run, after the rollback finished; computing or publishing it can
never fail the rollback (any error is dropped: the rollback's own report and artifact stand).
Everything in it was masked by tasks_lib/versiondiff and is masked again on the way out
(flows/artifacts.py)."""

from __future__ import annotations

import re
from typing import Any

from flows.artifacts import markdown_table, publish_markdown
from flows.steps import in_flow_run
from tasks_lib.core.filenames import shown
from tasks_lib.core.workspace import Workspace
from tasks_lib.secrets import masking

MAX_LINES = 400  # of unified diff in one artifact; the rest is counted, not shown


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(lines: list[str]) -> str:
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(d: Any) -> str:
    """The four sections of a ``TaskDiff`` as markdown."""
    s = d.summary()
    out = [f"# Diff {d.task_id} {d.old} -> {d.new}", "",
           f"- code: {s['changed']} changed, {s['added']} added, {s['removed']} removed "
           f"(+{s['lines_added']} -{s['lines_removed']} lines)",
           f"- config: {len(d.config)} key(s) changed", ""]
    if d.files:
        out += [markdown_table(("file", "change", "lines"), (
            (_cell(shown(f.path)), f.status + (" (binary)" if f.binary else ""),
             f"+{f.added} -{f.removed}") for f in d.files)), ""]
    budget = MAX_LINES
    for f in d.files:
        if not f.lines:
            continue
        if budget <= 0:
            out.append(f"(diff of {_cell(shown(f.path))} and later files left out)")
            break
        lines = list(f.lines[:budget])
        budget -= len(lines)
        fence = _fence(lines)
        out += [f"### {_cell(shown(f.path))}", f"{fence}diff", *lines, fence, ""]
    for title, changes in (("Config", d.config), ("Registry and runtime settings", d.registry)):
        if changes:
            out += [f"## {title}", "", markdown_table(("key", "change", "from", "to"), (
                (_cell(c.path), c.change, _cell(c.old or ""), _cell(c.new or "")) for c in changes)), ""]
    dd = d.dependencies
    rows = [(p.name, p.change, p.old or "", p.new or "") for p in dd.packages]
    rows += [(_cell(r), "requirement added", "", "") for r in dd.requirements_added]
    rows += [(_cell(r), "requirement removed", "", "") for r in dd.requirements_removed]
    if dd.python:
        rows.append(("python", "changed", dd.python[0], dd.python[1]))
    rows += [(n, "environment variable added", "", "") for n in dd.env_added]
    rows += [(n, "environment variable removed", "", "") for n in dd.env_removed]
    if rows:
        out += ["## Dependencies", "", markdown_table(("what", "change", "from", "to"), rows), ""]
    return "\n".join(out)


def publish_rollback_diff(ws: Workspace, task_id: str, from_version: str, to_version: str) -> bool:
    """Publish ``diff-<task>`` for a finished rollback; False (and nothing raised) when it could
    not be made."""
    if not in_flow_run():
        return False
    try:
        from tasks_lib.versiondiff.compare import diff_task

        text = render_markdown(diff_task(ws, task_id, from_version, to_version))
        text = masking.mask(text, values=masking.for_workspace(ws.root))
        publish_markdown(f"diff-{task_id.lower()}", text,
                         f"What the rollback of {task_id} {from_version} -> {to_version} changed")
    except Exception:  # noqa: BLE001 - the diff artifact must never fail a finished rollback
        return False
    return True
