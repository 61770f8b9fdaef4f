"""The rollback flow publishes what it changed as the markdown artifact ``diff-<task>``; a diff
that cannot be made never fails the rollback."""

from __future__ import annotations

from typing import Any

import pytest

from flows import diffreport
from tasks_lib.versiondiff.compare import diff_task
from tests.flows.test_flows import _api


def _latest(key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    async def by_key(client: Any) -> Any:
        return await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])))

    return _api(by_key)


def test_rollback_publishes_the_diff_and_a_failing_diff_never_fails_it(
        prefect_server: str, story, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.prefect_flows import rollback_flow

    ws, _ = story
    result = rollback_flow(str(ws.root), "T01", "1.2.0", reason="diff artifact")
    assert result.to_version == "1.2.0"
    (art,) = _latest("diff-t01")
    text = str(art.data)
    assert "# Diff T01 1.3.0 -> 1.2.0" in text and "tasks/T01/added_in_13.py" in text
    assert "clawdemo-risk" in text and "removed" in text

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("injected: the diff cannot be made")

    monkeypatch.setattr("tasks_lib.versiondiff.compare.diff_task", broken)
    again = rollback_flow(str(ws.root), "T01", "1.1.0", reason="diff fails")
    assert again.to_version == "1.1.0" and ws.task("T01").version == "1.1.0"


def test_markdown_fences_and_cells_cannot_be_broken_out_of(story) -> None:
    ws, _ = story
    (ws.root / "tasks/T01/notes.md").write_text("a | b\n````\n# not a heading\n")
    md = diffreport.render_markdown(diff_task(ws, "T01"))
    assert "`````diff" in md and "| tasks/T01/notes.md | added | +3 -0 |" in md
