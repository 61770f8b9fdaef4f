"""No secret value is stored or shown anywhere, on real workspaces: every file a
snapshot would commit is scanned, the refusal is exit 3 and changes nothing, and the value is in
no message, audit entry, tag message or exported manifest; --allow-secret spellings keep one
finding or a whole file; the pre-commit hook judges every staged file of an active task; a lock
never holds a credential; a credential is never accepted where a variable name belongs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.snapshot as fs
from flows.init import run_init
from tasks_lib import snapshot as s
from tasks_lib.core.errors import SecretsFound
from tasks_lib.core.workspace import Workspace
from tests.authindex import auth_index
from tests.conftest import git
from tests.test_snapshot import state_of

TOK = "8700" + "deadbeefcafe0123456789"
GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PW = "hunter2" + "-Pw9"


def snap(ws: Workspace, **kw: object) -> fs.s.SnapshotResult:
    return fs.run_snapshot(str(ws.root), **kw)  # type: ignore[arg-type]


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    result = run_init(str(ws.root))
    assert not result.failures
    return ws


def refused(ws: Workspace, *values: str, **kw: object) -> SecretsFound:
    """Snapshot T01, expect the refusal, and check that nothing changed and nothing leaked."""
    before = state_of(ws)
    audit_before = (ws.state_dir / "audit.jsonl").read_text()
    with pytest.raises(SecretsFound) as info:
        snap(ws, task_id="T01", bump="patch", **kw)
    exc = info.value
    assert exc.exit_code == 3
    assert state_of(ws) == before
    shown = f"{exc} {exc!r} {exc.args} {exc.paths} {exc.hint}"
    audit = (ws.state_dir / "audit.jsonl").read_text()
    assert audit.startswith(audit_before)
    for value in values:
        assert value not in shown and value not in audit
    return exc


def no_value_stored(ws: Workspace, tag: str, *values: str) -> None:
    message = ws.git.tag_message(tag)
    export = (ws.state_dir / "snapshots" / f"snapshot-{tag}.yaml").read_text()
    audit = (ws.state_dir / "audit.jsonl").read_text()
    for value in values:
        assert value not in message and value not in export and value not in audit


def test_a_token_in_a_new_python_file_is_refused_then_allowed_by_name(adopted: Workspace) -> None:
    ws = adopted
    fetch = ws.root / "tasks/T01/fetch.py"
    fetch.write_text(f'import os\n\nTUSHARE_TOKEN = "{TOK}"\n')
    exc = refused(ws, TOK)
    assert exc.paths == ["fetch.py:TUSHARE_TOKEN"]
    assert "tasks/T01/fetch.py line 3 (TUSHARE_TOKEN)" in exc.message
    assert 'os.environ["TUSHARE_TOKEN"]' in exc.hint and "--allow-secret fetch.py:TUSHARE_TOKEN" in exc.hint
    r = snap(ws, task_id="T01", bump="patch", allow_secrets=["fetch.py:TUSHARE_TOKEN"])
    assert r.version == "1.1.1" and any("allowed by --allow-secret" in w for w in r.warnings)
    assert all(TOK not in w for w in r.warnings)
    no_value_stored(ws, "T01-v1.1.1", TOK)


@pytest.mark.parametrize("name, content, spelling", [
    ("secrets.yaml", f"tushare:\n  token: {TOK}\nregion: cn\n", "secrets.yaml:tushare.token"),
    (".env.production", f"TUSHARE_TOKEN={TOK}\n", ".env.production:TUSHARE_TOKEN"),
    ("notes/clone.md", f"git clone https://{GHP}@github.com/o/r.git\n", "notes/clone.md:1"),
    ("explore.ipynb", json.dumps({"cells": [{"cell_type": "code", "source": [
        f'ts.set_token("{TOK}")\n'], "outputs": []}], "metadata": {}}), "explore.ipynb:ts.set_token"),
])
def test_every_committed_file_is_scanned(adopted: Workspace, name: str, content: str,
                                         spelling: str) -> None:
    ws = adopted
    path = ws.root / "tasks/T01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    exc = refused(ws, TOK, GHP)
    assert exc.paths == [spelling]
    # the whole file, spelled from the task directory or from the workspace
    whole = spelling.split(":", 1)[0]
    r = snap(ws, task_id="T01", bump="patch", allow_secrets=[f"tasks/T01/{whole}"])
    assert f"tasks/T01/{name}" in git(ws, "ls-tree", "-r", "--name-only", r.tag)
    no_value_stored(ws, r.tag, TOK, GHP)


def test_the_config_key_path_spelling_still_works(adopted: Workspace) -> None:
    ws = adopted
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text() + f"broker:\n  api_key: {TOK}\n")
    exc = refused(ws, TOK)
    assert exc.paths == ["broker.api_key"] and "tasks/T01/config.yaml at broker.api_key" in exc.message
    assert "`api_key: ${BROKER_API_KEY}` at broker.api_key" in exc.hint
    r = snap(ws, task_id="T01", bump="patch", allow_secrets=["broker.api_key", "typo.key"])
    assert any("typo.key matched no finding" in w for w in r.warnings)


def test_an_ignored_env_file_is_not_scanned_and_not_committed(adopted: Workspace) -> None:
    ws = adopted
    (ws.root / "tasks/T01/.env").write_text(f"TUSHARE_TOKEN={TOK}\n")  # init's .gitignore: .env
    r = snap(ws, task_id="T01", bump="patch")
    assert "tasks/T01/.env" not in git(ws, "ls-tree", "-r", "--name-only", r.tag)
    # force-added, it would be committed: then it is scanned
    git(ws, "add", "-f", "--", "tasks/T01/.env")
    exc = refused(ws, TOK)
    assert exc.paths == [".env:TUSHARE_TOKEN"]


def test_requirements_with_an_index_credential_are_refused_before_uv_runs(adopted: Workspace) -> None:
    ws = adopted
    req = ws.root / "tasks/T01/requirements.txt"
    req.write_text(f"--extra-index-url https://ci:{PW}@idx.example/simple\nclawdemo-signals>=1.0\n")
    exc = refused(ws, PW)
    assert exc.paths == ["requirements.txt:1"] and "UV_INDEX_<NAME>_USERNAME" in exc.hint


def test_a_credential_reaching_the_lock_from_outside_the_task_is_refused(
    adopted: Workspace, wheelhouse: Path
) -> None:
    ws = adopted
    shared = ws.root / "shared"  # not the task's: not committed, not scanned
    shared.mkdir()
    with auth_index(wheelhouse, "ci", PW) as index:
        host = index.url.split("://", 1)[1]
        (shared / "private.txt").write_text(
            f"clawdemo-signals @ http://ci:{PW}@{host}/files/clawdemo_signals-1.0.0-py3-none-any.whl\n")
        (ws.root / "tasks/T01/requirements.txt").write_text("-r ../../shared/private.txt\n")
        exc = refused(ws, PW)
    assert exc.paths == ["clawdemo-signals"] and "netrc" in exc.hint
    assert index.authorized  # uv resolved it (with the credential), the lock was refused after
    log = [json.loads(line) for line in (ws.state_dir / "audit.jsonl").read_text().splitlines()]
    assert log[-1]["action"] == "snapshot" and log[-1]["result"] == "failed"


@pytest.mark.parametrize("where", ["config", "entry"])
def test_a_credential_where_a_name_belongs_is_refused_and_cannot_be_allowed(
    adopted: Workspace, where: str
) -> None:
    ws = adopted
    if where == "config":
        cfg = ws.root / "tasks/T01/config.yaml"
        cfg.write_text(cfg.read_text() + f"environment_variables: [TUSHARE_TOKEN, {GHP}]\n")
        label = "environment_variables[1]"
    else:
        reg = ws.root / "task_registry.json"
        doc = json.loads(reg.read_text())
        doc["tasks"][0]["environment_variables"] = ["FEISHU_APP_SECRET", GHP]
        reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        label = "environment_variables[1]"
    exc = refused(ws, GHP, allow_secrets=[f"config.yaml:{label}", f"registry.{label}", "config.yaml"])
    assert label in exc.message and "not a variable name" in exc.message


def test_symlinks_are_committed_as_links_and_judged_by_their_target(adopted: Workspace,
                                                                     tmp_path: Path) -> None:
    ws = adopted
    outside = tmp_path / "credentials"
    outside.write_text(f"[default]\naws_secret_access_key = {TOK}\n")
    t01 = ws.root / "tasks/T01"
    os.symlink(outside, t01 / "aws-credentials")  # its content is not what git commits
    os.symlink("/dev/zero", t01 / "zero")          # reading through it would never end
    r = snap(ws, task_id="T01", bump="patch")
    os.symlink(GHP, t01 / "clone-token")           # the target itself is the secret
    exc = refused(ws, GHP)
    assert exc.paths == ["clone-token"] and "(symlink target)" in exc.message
    assert r.version == "1.1.1"


def test_a_credential_in_the_snapshot_message_is_refused(adopted: Workspace) -> None:
    exc = refused(adopted, GHP, TOK, message=f"rotated the token, new one {GHP}")
    assert "the snapshot message (line 1)" in exc.message
    refused(adopted, TOK, message=f"set TUSHARE_TOKEN={TOK} on the box", allow_secrets=["message"])
    assert snap(adopted, task_id="T01", bump="patch", message="rotate the tushare token").version


def test_a_large_file_is_streamed_not_read_whole(adopted: Workspace) -> None:
    big = adopted.root / "tasks/T01/dump.txt"
    with open(big, "wb") as fh:
        for _ in range(10):
            fh.write(b"a,b,c\n" * (1024 * 1024 // 6))
        fh.write(f"{GHP}\n".encode())
    lines = big.read_bytes().count(b"\n")
    exc = refused(adopted, GHP)
    assert exc.paths == [f"dump.txt:{lines}"]


def test_init_only_warns_about_secrets_in_task_files(tmp_path: Path, offline: dict) -> None:
    from clawback.demo import sample

    root = sample.make_workspace(tmp_path / "w", commit=False)
    (root / "tasks/T02/fetch.py").write_text(f'TUSHARE_TOKEN = "{TOK}"\n')
    result = run_init(str(root))
    assert not result.failures
    assert any("tasks/T02/fetch.py line 1 (TUSHARE_TOKEN)" in w for w in result.warnings)
    assert all(TOK not in w for w in result.warnings)


def test_the_scan_of_a_500_file_task_is_cheap(adopted: Workspace, capsys) -> None:
    ws = adopted
    t01 = ws.root / "tasks/T01"
    module = ('"""Signals."""\nimport os\nimport pandas as pd\n\nTOKEN = os.environ["TUSHARE_TOKEN"]\n\n'
              + "".join(f"def signal_{i}(df, key='close', window={i}):\n"
                        f"    return df[key].rolling(window).mean()  # {i}\n\n" for i in range(40)))
    for i in range(500):
        sub = t01 / f"pkg{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"mod_{i}.py").write_text(module)
    plan = s.prepare(ws, s.SnapshotRequest("T01", bump="patch"))
    started = time.perf_counter()
    assert s.scan_secrets(plan) == ()
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nscan of {len(s.versioned_paths(ws, plan.task))} files "
              f"({500 * len(module) / 1e6:.1f} MB): {elapsed:.2f} s")
    assert elapsed < 5


# --- the pre-commit hook ----------------------------------------------------------------------


def commit(ws: Workspace, *paths: str) -> subprocess.CompletedProcess[str]:
    subprocess.run(["git", "add", "--", *paths], cwd=ws.root, check=True)
    return subprocess.run(["git", "commit", "-m", "agent edit"], cwd=ws.root, capture_output=True,
                          text=True, check=False)


def test_hook_refuses_any_staged_task_file_with_a_secret(adopted: Workspace) -> None:
    ws = adopted
    head = git(ws, "rev-parse", "HEAD")
    (ws.root / "tasks/T02/fetch.py").write_text(f'import os\nTUSHARE_TOKEN = "{TOK}"\n')
    proc = commit(ws, "tasks/T02/fetch.py")
    assert proc.returncode != 0, proc.stderr
    assert "tasks/T02/fetch.py: line 2 (TUSHARE_TOKEN)" in proc.stderr
    assert TOK not in proc.stderr + proc.stdout and git(ws, "rev-parse", "HEAD") == head
    # a symlink staged with a token as its target
    git(ws, "reset", "-q")
    (ws.root / "tasks/T02/fetch.py").unlink()
    os.symlink(GHP, ws.root / "tasks/T02/tok")
    proc = commit(ws, "tasks/T02/tok")
    assert proc.returncode != 0 and "tasks/T02/tok: (symlink target)" in proc.stderr
    assert GHP not in proc.stderr + proc.stdout


def test_hook_sees_commit_all_and_commit_with_paths(adopted: Workspace) -> None:
    """`git commit -a` and `git commit -- PATH` commit a temporary index (GIT_INDEX_FILE)."""
    ws = adopted
    head = git(ws, "rev-parse", "HEAD")
    main = ws.root / "tasks/T02/main.py"
    clean = main.read_text()
    main.write_text(clean + f'\nTUSHARE_TOKEN = "{TOK}"\n')
    for argv in (["commit", "-am", "agent"], ["commit", "-m", "agent", "--", "tasks/T02/main.py"]):
        proc = subprocess.run(["git", *argv], cwd=ws.root, capture_output=True, text=True)
        assert proc.returncode != 0 and "tasks/T02/main.py: line" in proc.stderr, argv
        assert TOK not in proc.stderr + proc.stdout
    assert git(ws, "rev-parse", "HEAD") == head
    main.write_text(clean + "\n# fine\n")
    proc = subprocess.run(["git", "commit", "-am", "clean"], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_hook_judges_staged_content_and_only_active_task_locations(adopted: Workspace) -> None:
    ws = adopted
    fetch = ws.root / "tasks/T02/fetch.py"
    fetch.write_text('import os\nTUSHARE_TOKEN = os.environ["TUSHARE_TOKEN"]\n')
    subprocess.run(["git", "add", "--", str(fetch)], cwd=ws.root, check=True)
    fetch.write_text(f'TUSHARE_TOKEN = "{TOK}"\n')  # not staged: not part of this commit
    (ws.root / "scratch.py").write_text(f'TUSHARE_TOKEN = "{TOK}"\n')  # outside every task
    proc = commit(ws, "scratch.py")
    assert proc.returncode == 0, proc.stderr


def test_cli_help_documents_the_spellings() -> None:
    proc = subprocess.run([sys.executable, "-m", "clawback", "snapshot", "--help"],
                          capture_output=True, text=True, check=True)
    text = " ".join(proc.stdout.split())
    assert "FILE:NAME" in text and "registry." in text and "data_sources.tushare.token" in text
