"""No secret value is shown anywhere: the values of the variables a task declares
and of every set variable whose name looks secret are masked in error messages, audit entries,
reports, artifacts, alerts, Prefect logs and the CLI's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flows.rollback as fr
from clawback.cli import main
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import VerificationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry

TOKEN = "tok-8700abcdef123456"          # TUSHARE_TOKEN: the name says secret
ACCOUNT = "acct-99887766"               # BROKER_ACCOUNT: declared by the task, name says nothing
ECHO = ("import os, sys; print('token', os.environ['TUSHARE_TOKEN'], 'account', "
        "os.environ['BROKER_ACCOUNT'], file=sys.stderr); sys.exit(1)")


def test_the_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks_lib.secrets import masking

    env = {"TUSHARE_TOKEN": TOKEN, "BROKER_ACCOUNT": ACCOUNT, "HOME": "/root", "DEBUG": "true",
           "API_KEY": "ab", "X_KEY": "AKIAIOSFODNN7EXAMPLE"}
    text = f"{TOKEN} {ACCOUNT} /root true ab AKIAIOSFODNN7EXAMPLE https://u:pw@host/x"
    masked = masking.mask(text, env, names={"BROKER_ACCOUNT", "HOME"})
    assert TOKEN not in masked and ACCOUNT not in masked and "AKIAIOSFODNN7EXAMPLE" not in masked
    assert "/root" in masked and " true " in masked and " ab " in masked   # not secrets / too short
    assert "pw@" not in masked
    assert ACCOUNT in masking.mask(text, env)                      # undeclared and harmless-named


@pytest.fixture
def echoing(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """1.2.0's smoke test echoes both values and fails; 1.3.0's passes."""
    monkeypatch.setenv("TUSHARE_TOKEN", TOKEN)
    monkeypatch.setenv("BROKER_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    run_init(str(ws.root))

    def settings(smoke: list[str]) -> None:
        reg = Registry.load(ws.registry_path)
        entry = reg.entry("T01")
        entry["clawback"] = {"python": "none", "smoke": smoke,
                             "environment_variables": ["BROKER_ACCOUNT"]}
        reg.set_entry("T01", entry)
        reg.save()

    (ws.root / "tasks/T01/main.py").write_text("X = 1\n")
    settings(["python3", "-c", ECHO])
    run_snapshot(str(ws.root), "T01", bump="minor")                 # 1.2.0
    settings(["python3", "-c", "pass"])
    run_snapshot(str(ws.root), "T01", bump="minor")                 # 1.3.0
    return ws


def leaks(text: str) -> list[str]:
    return [v for v in (TOKEN, ACCOUNT) if v in text]


def test_a_smoke_test_echoing_secrets_leaks_them_nowhere(echoing: Workspace,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ws = echoing
    with pytest.raises(VerificationFailed, match="level 3 smoke") as err:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert "token ***" in str(err.value) and not leaks(str(err.value))
    for argv in (["rollback", "--task", "T01", "--to", "1.2.0"],
                 ["rollback", "--task", "T01", "--to", "1.2.0", "--json"],
                 ["verify-rollback", "--task", "T01", "--expected", "1.2.0", "--json"]):
        code = main([*argv, "--workspace", str(ws.root)])
        out = capsys.readouterr()
        assert code == 1 and not leaks(out.out + out.err), argv
    audit = (ws.state_dir / "audit.jsonl").read_text()
    assert "level 3 smoke" in audit and not leaks(audit)
    for report in (ws.state_dir / "reports").glob("*"):
        assert not leaks(report.read_text())


def test_a_failing_start_command_echoing_secrets_leaks_them_nowhere(
        echoing: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws = echoing
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"]["run"] = {"type": "command", "start": ["python3", "-c", ECHO]}
    reg.set_entry("T01", entry)
    reg.save()
    code = main(["start", "--task", "T01", "--workspace", str(ws.root)])
    out = capsys.readouterr()
    assert code == 1 and "exited 1" in out.err and not leaks(out.out + out.err)


def test_health_errors_echoing_secrets_are_masked(echoing: Workspace, capsys) -> None:
    ws = echoing
    runs = ws.root / "tasks/T01/logs/runs.jsonl"
    runs.parent.mkdir(exist_ok=True)
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs.write_text("".join(json.dumps({"ts": now, "ok": False, "version": "1.3.0",
                                        "error": f"login failed for {ACCOUNT} with {TOKEN}"}) + "\n"
                            for _ in range(12)))
    code = main(["health", "--task", "T01", "--workspace", str(ws.root), "--json"])
    out = capsys.readouterr()
    assert code == 1 and "login failed" in out.out and not leaks(out.out + out.err)
    assert not leaks((ws.state_dir / "audit.jsonl").read_text())


def test_masked_in_prefect_logs_and_states(prefect_server: str, echoing: Workspace) -> None:
    """The failed rollback's flow run: its state message and every log line are masked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.prefect_flows import rollback_flow
    from tasks_lib.state.audit import AuditLog

    ws = echoing
    with pytest.raises(VerificationFailed):
        rollback_flow(str(ws.root), "T01", "1.2.0")
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    run_id = entry["details"]["flow_run_id"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    text = (run.state.message or "") + "\n".join(log.message for log in logs)
    assert "smoke" in text and not leaks(text), text[-2000:]


def test_names_declared_in_configs_are_found(tmp_path: Path) -> None:
    from tasks_lib.secrets import masking

    (tmp_path / "tasks/T01").mkdir(parents=True)
    (tmp_path / "task_registry.json").write_text(json.dumps({"tasks": [
        {"id": "T01", "location": "tasks/T01", "environment_variables": ["A_NAME"],
         "clawback": {"environment_variables": ["B_NAME"]}}]}))
    (tmp_path / "tasks/T01/config.yaml").write_text(
        "version: 1.0.0\nenvironment_variables:\n  - C_NAME\nurl: ${D_NAME}/x ${HOME}\n")
    assert masking.declared_names(tmp_path) >= {"A_NAME", "B_NAME", "C_NAME", "D_NAME"}
    assert masking.secret_values({"HOME": "/root/x", "D_NAME": "value-1"},
                                 masking.declared_names(tmp_path)) == ["value-1"]
