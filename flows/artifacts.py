"""Reports: the markdown written under ``.clawback/reports/`` and published as Prefect artifacts
with stable keys (published only inside a flow run)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from flows.steps import in_flow_run
from tasks_lib.core import safefs
from tasks_lib.core.workspace import Workspace
from tasks_lib.secrets import masking
from tasks_lib.verify_live import LEVEL_HEADERS, Level


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table: the header lines end with a newline, the rows are joined by one (no
    newline after the last)."""
    return (f"| {' | '.join(headers)} |\n" + "|" + "---|" * len(headers) + "\n"
            + "\n".join(f"| {' | '.join(row)} |" for row in rows))


def levels_table(levels: Iterable[Level]) -> str:
    """The verification levels as a markdown table (the CLI's text table: clawback/render.py)."""
    return markdown_table(LEVEL_HEADERS, (lv.cells() for lv in levels))


def save_report(ws: Workspace, kind: str, task_id: str, text: str, title: str) -> Path:
    """Write a report (``<kind>-<TASK>-<local time>.md`` under ``.clawback/reports/``, secret
    values masked) and publish it as the artifact ``<kind>-<task>``; its path."""
    folder = ws.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{task_id}-{time.strftime('%Y%m%dT%H%M%S')}.md"
    text = masking.mask(text, values=masking.for_workspace(ws.root))
    safefs.replace_file(path, text.encode("utf-8"))
    publish_markdown(f"{kind}-{task_id.lower()}", text, title)
    return path


def publish_markdown(key: str, markdown: str, description: str) -> None:
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact

    safe = re.sub(r"[^a-z0-9-]", "-", key.lower())[:100]
    values = masking.secret_values()
    create_markdown_artifact(key=safe, markdown=masking.mask(markdown, values=values),
                             description=masking.mask(description, values=values))


def publish_table(key: str, rows: list[dict[str, str]], description: str) -> None:
    """A table artifact, every cell masked (tasks_lib/secrets/masking.py)."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    values = masking.secret_values()
    create_table_artifact(key=key, table=masking.mask_data(rows, values),  # type: ignore[arg-type]
                          description=masking.mask(description, values=values))


class Progress:
    """A Prefect progress artifact (0-100 %) for a long operation, updated at a few milestones:
    the UI shows how far a rollback got while its dependency sync runs. A no-op outside a flow
    run. Each update is one API call, so it is called at milestones, not for every step."""

    def __init__(self, key: str, description: str) -> None:
        self.id = None
        self.description = description
        if in_flow_run():
            from prefect.artifacts import create_progress_artifact

            safe = re.sub(r"[^a-z0-9-]", "-", key.lower())[:100]
            self.id = create_progress_artifact(0.0, key=safe, description=description)

    def at(self, percent: float, what: str) -> None:
        if self.id is None:
            return
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.id, min(100.0, max(0.0, percent)),
                                 description=f"{self.description}: {what}")
