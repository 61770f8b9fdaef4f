"""One levels table (markdown for reports and artifacts, text for the CLI) and one report
writer: the bytes are those the rollback and recovery reports always had."""

from __future__ import annotations

import pytest

from clawback import render
from flows.artifacts import levels_table, markdown_table, save_report
from tasks_lib.core.workspace import Workspace
from tasks_lib.verify_live import Level

LEVELS = (Level(1, "files", True, "12 files match"), Level(4, "readiness", False, "no TOKEN"))


def test_the_markdown_levels_table_is_the_reports_table():
    assert levels_table(LEVELS) == ("| level | check | result | detail |\n|---|---|---|---|\n"
                                    "| 1 | files | ok | 12 files match |\n"
                                    "| 4 | readiness | FAIL | no TOKEN |")
    assert markdown_table(("step", "time"), []) == "| step | time |\n|---|---|\n"


def test_the_text_levels_table_is_the_clis_table():
    assert render.levels("T01", "1.2.0", LEVELS).splitlines() == [
        "verify-rollback T01 1.2.0: FAILED",
        "level  check      result  detail",
        "-----  ---------  ------  --------------",
        "1      files      ok      12 files match",
        "4      readiness  FAIL    no TOKEN",
    ]


def test_a_report_is_written_masked_under_reports(ws: Workspace,
                                                  monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TUSHARE_TOKEN", "s3cr3t-value-123")
    path = save_report(ws, "recovery", "T01", "# Recovery\ntoken s3cr3t-value-123\n", "title")
    assert path.parent == ws.state_dir / "reports" and path.name.startswith("recovery-T01-")
    text = path.read_text()
    assert text.startswith("# Recovery\n") and "s3cr3t-value-123" not in text
