"""Automatic rollback on a breach: to the newest stable, non-quarantined older version, at most
once per task per interval, otherwise an escalation; through the real CLI on the seed story."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from tasks_lib.formats.registry import Registry
from tasks_lib.health import policy as autorollback
from tasks_lib.state.audit import AuditLog
from tests.conftest import last_run_version
from tests.health.test_health_cli import clawback, runs

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def entry(*history: dict) -> dict:
    return {"snapshots": [{"version": "1.1.0", "stable": True}, {"version": "1.2.0", "stable": True},
                          {"version": "1.3.0"}],
            "rollback_history": list(history)}


def auto(at: datetime) -> dict:
    return {"from_version": "1.4.0", "to_version": "1.3.0", "reason": "automatic: error rate 50%",
            "rolled_back_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.mark.parametrize(("verdict", "history", "expected"), [
    ("healthy", (), ("none", None)),
    ("inconclusive", (), ("none", None)),
    ("error", (), ("none", None)),                      # errors in measuring are not failures
    ("breach", (), ("rollback", "1.2.0")),
    ("breach", (auto(NOW - timedelta(minutes=59)),), ("escalate", "1.2.0")),
    ("breach", (auto(NOW - timedelta(minutes=60)),), ("rollback", "1.2.0")),
    ("breach", ({**auto(NOW - timedelta(minutes=5)), "reason": "by hand"},), ("rollback", "1.2.0")),
])
def test_decide(verdict: str, history: tuple, expected: tuple) -> None:
    d = autorollback.decide(entry(*history), verdict, "1.3.0", NOW)
    assert (d.action, d.target) == expected


def test_no_target_escalates() -> None:
    d = autorollback.decide({"snapshots": [{"version": "1.3.0", "stable": True}]}, "breach", "1.3.0", NOW)
    assert d.action == "escalate" and "no stable" in d.why


def test_breach_rolls_back_once_then_escalates(story) -> None:
    import flows.promote as fp

    ws, old_pid = story
    fp.run_promote(str(ws.root), "T01", "1.2.0")
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=10, failed=10, version="1.3.0")
    proc = clawback("health", "--auto-rollback", "--json", "--workspace", str(ws.root))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    action = doc["actions"][0]
    assert (action["task_id"], action["action"], action["from_version"], action["to_version"]) == \
        ("T01", "rolled-back", "1.3.0", "1.2.0")
    t01 = Registry.load(ws.registry_path).entry("T01")
    assert t01["version"] == "1.2.0"
    assert any(s.get("quarantined") for s in t01["snapshots"] if s["version"] == "1.3.0")
    # the running task adds its own ok runs meanwhile
    assert re.match(r"automatic: error rate \d+\.\d% \(10/2\d runs of 1\.3\.0\) above the threshold 0\.1\Z",
                    t01["rollback_history"][-1]["reason"])
    assert last_run_version(ws) in ("1.2.0", "1.3.0") and ws.task("T01").version == "1.2.0"

    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=0, failed=12, version="1.2.0")  # 1.2.0 fails too
    again = clawback("health", "--auto-rollback", "--json", "--workspace", str(ws.root))
    assert again.returncode == 1
    action = json.loads(again.stdout)["result"]["actions"][0]
    assert action["action"] == "escalated" and "already ran" in action["detail"]
    assert "clawback rollback --task T01 --to 1.1.0" in action["detail"]
    assert ws.task("T01").version == "1.2.0"                              # held, not ping-ponged
    last = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert last["action"] == "escalate" and last["to"] == "1.1.0"

    # the same breach is escalated once: later checks hold quietly, no new audit entry or alert
    held = clawback("health", "--auto-rollback", "--json", "--workspace", str(ws.root))
    action = json.loads(held.stdout)["result"]["actions"][0]
    assert action["action"] == "held" and "held until the operator acts" in action["detail"]
    assert list(AuditLog(ws.state_dir).entries("T01"))[-1]["hash"] == last["hash"]
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=300, failed=0, version="1.2.0")  # healthy again
    healthy = clawback("health", "--auto-rollback", "--json", "--workspace", str(ws.root))
    assert [a["action"] for a in json.loads(healthy.stdout)["result"]["actions"]] == ["released"]


def test_a_failed_automatic_rollback_is_undone_escalated_and_alerted(story, monkeypatch) -> None:
    import flows.promote as fp
    import flows.rollback as fr
    from clawback.sink import http_sink
    from flows.health import run_health
    from tests.conftest import failing_after, world

    ws, _ = story
    fp.run_promote(str(ws.root), "T01", "1.2.0")
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=0, failed=15, version="1.3.0",
         error="token=abcd1234secret rejected")
    before = world(ws)
    monkeypatch.setattr(fr, "verify", failing_after(fr.verify, "verify"))
    with http_sink() as (url, got):
        (ws.state_dir / "notify-urls").write_text(f"# the ops channel\n{url}\n")
        run = run_health(str(ws.root), "T01", auto_rollback=True)
    (action,) = run.actions
    assert (action.action, action.from_version, action.to_version) == ("escalated", "1.3.0", "1.2.0")
    assert "the automatic rollback to 1.2.0 failed" in action.detail and action.alerted == "sent"
    assert world(ws) == before                                          # everything put back
    assert ws.task("T01").version == "1.3.0"
    (alert,) = got
    assert alert["title"].startswith("clawback: T01 automatic rollback 1.3.0 → 1.2.0 FAILED")
    assert "clawback rollback --task T01 --to 1.2.0" in alert["message"]
    assert "abcd1234secret" not in json.dumps(alert) and "hold:" in alert["message"]
    tail = [e["action"] for e in AuditLog(ws.state_dir).entries("T01")][-3:]
    assert tail == ["rollback", "escalate", "alert"]
