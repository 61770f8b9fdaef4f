"""Prefect artifacts for reports, with stable keys (published only inside a flow run)."""

from __future__ import annotations

import re

from flows.steps import in_flow_run
from tasks_lib.secrets import masking


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
