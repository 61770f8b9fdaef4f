"""The verdict history and what the health flow does with streaks: promotion after K consecutive
healthy checks, one escalation (audited and alerted) after N unreadable checks in a row."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

import tasks_lib.health.history as v
from clawback.sink import http_sink
from flows.health import run_health
from tasks_lib.health.stable import is_stable
from tasks_lib.state.audit import AuditLog
from tests.conftest import git
from tests.health.test_health_cli import clawback, runs

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def rec(verdict: str, version: str = "1.3.0", minutes: int = 0) -> v.Record:
    return v.Record(T0 + timedelta(minutes=minutes), version, verdict)


def test_history_round_trip_newest_first_skipping_garbage(tmp_path) -> None:
    log = v.VerdictLog(tmp_path)
    assert log.recent("T01") == []
    log.append("T01", rec("healthy"))
    with log.path("T01").open("a") as fh:
        fh.write("not json\n{\"verdict\": 3}\n")
    log.append("T01", v.Record(T0, "1.3.0", "breach", 20, 5))
    assert log.recent("T01") == [v.Record(T0, "1.3.0", "breach", 20, 5), rec("healthy")]
    assert log.recent("T02") == []


def test_history_is_trimmed_to_its_newest_lines(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(v, "TRIM_AT", 2000)
    monkeypatch.setattr(v, "KEEP", 10)
    log = v.VerdictLog(tmp_path)
    for i in range(100):
        log.append("T01", rec("healthy", minutes=i))
    kept = log.recent("T01")
    assert len(kept) <= 30 and kept[0] == rec("healthy", minutes=99)
    assert log.path("T01").stat().st_size <= 2000 + 100


def test_the_hold_round_trip_and_a_hold_file_that_cannot_be_read(tmp_path) -> None:
    log = v.VerdictLog(tmp_path)
    assert log.held("T01") is None and not log.release("T01")
    log.hold("T01", "T01-1.3.0-x", "no target", None, T0)
    assert log.held("T01") == v.Escalated("T01-1.3.0-x", "2026-11-29T12:00:00Z", "no target", None)
    log.hold_path("T01").write_text("not json")
    assert log.held("T01") == v.Escalated(None)                      # held at no breach
    secret = tmp_path / "elsewhere.json"
    secret.write_text('{"breach": "T01-1.3.0-x"}')
    log.hold_path("T01").unlink()
    log.hold_path("T01").symlink_to(secret)
    assert log.held("T01") == v.Escalated(None)                      # never read through a link
    assert log.release("T01") and secret.exists()                    # the link goes, not its file


def test_hostile_task_id_never_makes_a_path(tmp_path) -> None:
    from tasks_lib.core.errors import BadInput

    with pytest.raises(BadInput):
        v.VerdictLog(tmp_path).path("../../etc/passwd")


@pytest.mark.parametrize(("newest_first", "expected"), [
    ([rec("healthy"), rec("healthy")], 2),
    ([rec("healthy"), rec("inconclusive"), rec("healthy")], 2),   # too few runs: no break
    ([rec("healthy"), rec("breach"), rec("healthy")], 1),
    ([rec("healthy"), rec("unhealthy"), rec("healthy")], 1),      # a live check failed
    ([rec("healthy"), rec("healthy", version="1.2.0")], 1),       # another version
    ([rec("error"), rec("healthy")], 0),
    ([], 0),
])
def test_healthy_streak(newest_first, expected) -> None:
    assert v.healthy_streak(newest_first, "1.3.0") == expected


def test_error_streak() -> None:
    assert v.error_streak([rec("error"), rec("error", "1.2.0"), rec("healthy"), rec("error")]) == 2
    assert v.error_streak([rec("inconclusive"), rec("error")]) == 0


def test_promoted_after_k_consecutive_healthy_checks(story) -> None:
    ws, _ = story
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=30, failed=0, version="1.3.0")
    first = run_health(str(ws.root), "T01", promote_after=2)
    assert first.results[0].verdict == "healthy" and first.actions == ()
    assert not is_stable(ws.load_registry().entry("T01"), "1.3.0")
    second = run_health(str(ws.root), "T01", promote_after=2)
    assert [(a.action, a.to_version) for a in second.actions] == [("promoted", "1.3.0")]
    assert is_stable(ws.load_registry().entry("T01"), "1.3.0")
    assert "promote v1.3.0 to stable: automatic: 2 consecutive healthy checks" in \
        git(ws, "log", "-1", "--format=%s")
    third = run_health(str(ws.root), "T01", promote_after=2)
    assert third.actions == ()                                       # stable already


def test_a_breach_breaks_the_streak_and_quarantined_versions_are_never_promoted(story) -> None:
    ws, _ = story
    log = ws.root / "tasks/T01/logs/runs.jsonl"
    runs(log, ok=30, failed=0, version="1.3.0")
    run_health(str(ws.root), "T01", promote_after=2)
    runs(log, ok=0, failed=30, version="1.3.0")
    assert run_health(str(ws.root), "T01", promote_after=2).results[0].verdict == "breach"
    runs(log, ok=600, failed=0, version="1.3.0")                    # healthy again
    assert run_health(str(ws.root), "T01", promote_after=2).actions == ()  # streak restarts at 1
    assert [a.action for a in run_health(str(ws.root), "T01", promote_after=2).actions] == ["promoted"]


def test_repeated_source_errors_escalate_once_with_an_alert(story, monkeypatch) -> None:
    ws, _ = story
    source = ws.root / "tasks/T01/logs/runs.jsonl"
    source.unlink(missing_ok=True)
    source.mkdir(parents=True)                                       # unreadable: a directory
    with http_sink() as (url, got):
        monkeypatch.setenv("CLAWBACK_NOTIFY_URLS", url)
        verdicts = []
        for _ in range(4):
            run = run_health(str(ws.root), "T01", errors_before_alert=3, auto_rollback=True)
            verdicts.append((run.results[0].rate.verdict, [a.action for a in run.actions]))
    assert verdicts == [("error", []), ("error", []), ("error", ["source-errors"]), ("error", [])]
    assert len(got) == 1 and "T01" in got[0]["title"] and "could not be read" in got[0]["message"]
    entries = list(AuditLog(ws.state_dir).entries("T01"))
    assert [e["action"] for e in entries[-2:]] == ["escalate", "alert"]
    assert ws.task("T01").version == "1.3.0"                          # never a rollback
    shutil.rmtree(source)


def test_cli_rejects_a_bad_count(story) -> None:
    ws, _ = story
    proc = clawback("health", "--promote-after", "-1", "--workspace", str(ws.root))
    assert proc.returncode == 2 and "whole number" in proc.stderr
