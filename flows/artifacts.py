"""Prefect artifacts for reports, with stable keys (published only inside a flow run)."""

from __future__ import annotations

import re

from flows.steps import in_flow_run


def publish_markdown(key: str, markdown: str, description: str) -> None:
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact

    safe = re.sub(r"[^a-z0-9-]", "-", key.lower())[:100]
    create_markdown_artifact(key=safe, markdown=markdown, description=description)
