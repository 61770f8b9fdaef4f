"""``clawback preview``: the time machine never touches the live task (files, state, HEAD, the
index, the registry, the environments, the running process), masks secrets, refuses hostile
input with exit 2 and nothing changed, and ``--cleanup`` removes only its own trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process
from tests.conftest import git, tree

TOKEN = "8700aa11bb22cc33dd44ee55"          # a plaintext token stored at 1.2.0 (allowed)
V110_ENV = [""]                              # the environment --smoke of 1.1.0 builds
RAW_NAME = b"caf\xe9.py"                     # a file name that is not UTF-8
QUIET_MAIN = """\
import json, os, time
if __name__ == "__main__":   # writes one run, then only sleeps: its files stay as they are
    os.makedirs("logs", exist_ok=True)
    with open("logs/runs.jsonl", "a") as fh:
        fh.write(json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ok": True}) + "\\n")
    while True:
        time.sleep(5)
"""


def cli(ws: Workspace, *args: str | bytes, env: dict[str, str] | None = None,
        text: bool = True) -> subprocess.CompletedProcess[Any]:
    full = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none", **(env or {})}
    argv = [sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)]
    return subprocess.run(argv, env=full, capture_output=True, text=text, timeout=300, check=False,
                          errors="surrogateescape" if text else None)


def doc(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def versions(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """T01 1.1.0 (stable, from init) and 1.2.0: a tracked link into state, an executable, Chinese
    text and name, a non-UTF-8 name, a binary file, a plaintext token (allowed) in its config
    and its code, and a newer dependency."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value-xyz")
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "main.py").write_text(QUIET_MAIN)
    (t01 / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(t01 / "run.sh", 0o755)
    os.symlink("state/positions.json", t01 / "positions_link")
    (t01 / "策略.py").write_text("# 涨停策略\nNAME = '涨停'\n", encoding="utf-8")
    (t01 / os.fsdecode(RAW_NAME)).write_bytes(b"X = 1\n")
    (t01 / "model.bin").write_bytes(b"\x00\x01\x02binary\xff")
    (t01 / "fetch.py").write_text(f'TUSHARE_TOKEN = "{TOKEN}"\n')
    (t01 / "requirements.txt").write_text("clawdemo-signals==1.1.0\n")
    cfg = t01 / "config.yaml"
    cfg.write_text(cfg.read_text() + f"api_key: {TOKEN}\n")
    run_snapshot(str(ws.root), "T01", bump="minor", message="quiet main, 中文",
                 allow_secrets=["api_key", "fetch.py:TUSHARE_TOKEN"])
    return ws


def world(ws: Workspace) -> dict[str, Any]:
    """Everything a preview must leave exactly as it was."""
    env_root = deps.env_root(ws.state_dir, "T01")
    live = deps.current_env(ws.state_dir, "T01")
    return {
        "tasks": tree(ws.root / "tasks"),                        # files and state, with mtimes
        "registry": (ws.root / "task_registry.json").read_bytes(),
        "head": git(ws, "rev-parse", "HEAD"),
        "refs": git(ws, "for-each-ref"),
        "index": (ws.root / ".git/index").read_bytes(),
        "status": subprocess.run(  # (GIT_OPTIONAL_LOCKS=0: status would refresh the index)
            ["git", "status", "--porcelain", "--ignored"], cwd=ws.root, capture_output=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, check=True).stdout,
        "current": os.readlink(env_root / "current"),
        "live_env": tree(live) if live else None,
        "envs": sorted(p.name for p in env_root.iterdir() if p.name != V110_ENV[0]),
    }


def test_every_mode_leaves_the_live_task_and_its_process_as_they_were(versions: Workspace) -> None:
    ws = versions
    state = process.start(ws, ws.task("T01"))
    try:
        deadline = time.monotonic() + 30
        runs = ws.root / "tasks/T01/logs/runs.jsonl"
        while not (runs.exists() and runs.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        # 1.1.0's environment goes, so --smoke has to build it (never the live one)
        old = deps.env_root(ws.state_dir, "T01")
        for child in old.iterdir():
            if child.name != "current" and child != deps.current_env(ws.state_dir, "T01"):
                shutil.rmtree(child)
                V110_ENV[0] = child.name
        before = world(ws)
        out_dir = ws.root.parent / "outside"
        for args in (["--version", "1.1.0"], ["--version", "1.2.0", "--json"],
                     ["--version", "1.2.0", "--show", "config.yaml"],
                     ["--version", "1.2.0", "--show", "model.bin"],
                     ["--version", "1.2.0", "--materialize"],
                     ["--version", "1.2.0", "--materialize", str(out_dir)],
                     ["--version", "1.1.0", "--smoke", "--json"],
                     ["--version", "1.2.0", "--smoke", "--materialize"]):
            proc = cli(ws, "preview", "--task", "T01", *args)
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
            if "--smoke" in args and "1.1.0" in args:
                assert doc(proc)["result"]["environment_reused"] is False  # built, not switched
            assert TOKEN not in proc.stdout + proc.stderr
            assert world(ws) == before, args
        smoke = doc(cli(ws, "preview", "--task", "T01", "--version", "1.1.0", "--smoke", "--json"))
        assert [lv["ok"] for lv in smoke["result"]["levels"]] == [True, True, True]
        assert smoke["result"]["environment_reused"] is True  # built by the first --smoke
        proc = cli(ws, "preview", "--cleanup", "--json")
        assert proc.returncode == 0 and len(doc(proc)["result"]["removed"]) == 3
        assert not out_dir.exists()
        assert world(ws) == before
        after = process.run_state(ws, ws.task("T01"))
        assert after.running and after.pid == state.pid
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_summary_shows_the_version_with_secrets_masked(versions: Workspace) -> None:
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--json")
    assert proc.returncode == 0, proc.stderr
    r = doc(proc)["result"]
    files = {f["path"]: f for f in r["files"]}
    assert files["main.py"]["size"] == len(QUIET_MAIN)
    assert files["positions_link"]["mode"] == "120000" and files["run.sh"]["mode"] == "100755"
    assert "策略.py" in files and os.fsdecode(RAW_NAME) in {
        p.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") for p in files}
    assert not any(p.startswith("state/") for p in files)
    assert TOKEN not in proc.stdout and 'api_key: "***"' in r["config"]
    assert "${TUSHARE_TOKEN}" in r["config"] and r["config_masked"] == ["at api_key"]
    assert r["python_packages"] == ["clawdemo-signals==1.1.0"]
    assert r["environment_variables"] == ["TUSHARE_TOKEN"]
    assert r["runtime"]["entry_point"] == "main.py" and r["runtime"]["python"] == "venv"
    assert r["marks"] == {"stable": False, "quarantined": False, "recorded": True, "current": True}
    assert r["message"] == "quiet main, 中文" and r["creator"] == "tester@ci" and r["created_at"]
    old = doc(cli(versions, "preview", "--task", "T01", "--version", "v1.1.0", "--json"))["result"]
    assert old["marks"]["stable"] is True and old["marks"]["current"] is False
    text = cli(versions, "preview", "--task", "T01", "--version", "1.2.0")
    assert "[current]" in text.stdout and "api_key: \"***\"" in text.stdout
    assert TOKEN not in text.stdout + text.stderr


def test_show_prints_the_exact_bytes_or_masks_secret_values(versions: Workspace) -> None:
    t01 = versions.root / "tasks/T01"
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show", "main.py",
               text=False)
    assert proc.returncode == 0 and proc.stdout == QUIET_MAIN.encode()
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show", "model.bin",
               text=False)
    assert proc.stdout == (t01 / "model.bin").read_bytes()        # binary to a pipe: exact
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show", "策略.py",
               text=False)
    assert proc.stdout == "# 涨停策略\nNAME = '涨停'\n".encode()
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show",
               os.fsdecode(RAW_NAME), text=False)
    assert proc.returncode == 0 and proc.stdout == b"X = 1\n"
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show", "fetch.py")
    assert proc.stdout == 'TUSHARE_TOKEN = "***"\n' and "line 1" in proc.stderr
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show",
               "positions_link", "--json")
    assert doc(proc)["result"]["target"] == "state/positions.json"
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--show", "config.yaml",
               "--json")
    assert TOKEN not in proc.stdout and doc(proc)["result"]["masked"] == ["at api_key"]


def test_show_binary_on_a_terminal_is_described_not_dumped(versions: Workspace,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from clawback.cli import main

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["preview", "--task", "T01", "--version", "1.2.0", "--show", "model.bin",
                 "--workspace", str(versions.root)]) == 0
    out = capsys.readouterr().out
    assert "a binary file" in out and "binary\xff" not in out and "\x00" not in out


def test_materialize_writes_the_version_exactly_and_never_state(versions: Workspace,
                                                                tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()  # empty: accepted, kept after --cleanup
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--materialize",
               str(dest), "--json")
    assert proc.returncode == 0, proc.stderr
    t01 = versions.root / "tasks/T01"
    assert os.readlink(dest / "positions_link") == "state/positions.json"
    assert not (dest / "state").exists()                      # a link into state, never followed
    assert os.stat(dest / "run.sh").st_mode & 0o100 and not os.stat(dest / "main.py").st_mode & 0o100
    assert (dest / os.fsdecode(RAW_NAME)).read_bytes() == b"X = 1\n"
    assert (dest / "策略.py").read_bytes() == (t01 / "策略.py").read_bytes()
    assert (dest / "config.yaml").read_bytes() == (t01 / "config.yaml").read_bytes()
    names = sorted(p.name for p in dest.iterdir())
    assert ".clawback-preview.json" in names and "logs" not in names
    assert cli(versions, "preview", "--cleanup").returncode == 0
    assert dest.is_dir() and list(dest.iterdir()) == []       # the operator's directory stays


@pytest.mark.parametrize(("args", "words"), [
    (["--task", "../x", "--version", "1.2.0"], "letters, digits"),
    (["--task=-rf", "--version", "1.2.0"], "letters, digits"),
    (["--task", "T42", "--version", "1.2.0"], "unknown task"),
    (["--task", "T01", "--version", "../x"], "MAJOR.MINOR.PATCH"),
    (["--task", "T01", "--version=-rf"], "MAJOR.MINOR.PATCH"),
    (["--task", "T01", "--version", "1.2.0;rm"], "MAJOR.MINOR.PATCH"),
    (["--task", "T01", "--version", "7.7.7"], "known versions of T01: 1.1.0, 1.2.0"),
    (["--task", "T01"], "required"),
    (["--task", "T01", "--version", "1.2.0", "--show", "../T02/main.py"], "not a path inside"),
    (["--task", "T01", "--version", "1.2.0", "--show", "/etc/passwd"], "not a path inside"),
    (["--task", "T01", "--version", "1.2.0", "--show=-rf"], "not a path inside"),
    (["--task", "T01", "--version", "1.2.0", "--show", "state/positions.json"], "runtime state"),
    (["--task", "T01", "--version", "1.2.0", "--show", "nope.py"], "has no file"),
    (["--task", "T01", "--version", "1.2.0", "--show", "main.py", "--smoke"], "goes alone"),
    (["--cleanup", "--task", "T01"], "no other option"),
    (["--task", "T01", "--version", "1.2.0", "--materialize", "{ws}/tasks/T01/x"], "inside the workspace"),
    (["--task", "T01", "--version", "1.2.0", "--materialize", "{ws}/.git/x"], "inside the workspace"),
    (["--task", "T01", "--version", "1.2.0", "--materialize", "-rf"], "unrecognized arguments: -rf"),
])
def test_bad_input_is_exit_2_and_changes_nothing(versions: Workspace, args: list[str],
                                                 words: str) -> None:
    before = world(versions)
    previews = sorted((versions.state_dir / "previews").glob("*")) if (
        versions.state_dir / "previews").exists() else []
    proc = cli(versions, "preview", *(a.replace("{ws}", str(versions.root)) for a in args))
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert world(versions) == before
    now = versions.state_dir / "previews"
    assert (sorted(now.glob("*")) if now.exists() else []) == previews or \
        [p.name for p in now.glob("*")] == ["index.json"]


def test_materialize_refuses_links_and_full_directories(versions: Workspace, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    for dest, words in ((tmp_path / "link", "is a symlink"), (tmp_path / "link" / "sub", "is a symlink"),
                        (full, "not empty"), (full / "keep.txt", "not a directory"),
                        (tmp_path / "no" / "such", "does not exist"),
                        (versions.root.parent, "contains the workspace")):
        proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--materialize",
                   str(dest))
        assert proc.returncode == 2 and words in proc.stderr, (dest, proc.stderr)
    assert list(real.iterdir()) == [] and (full / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "link", "real", "ws"]


def test_cleanup_leaves_foreign_and_replaced_directories_alone(versions: Workspace,
                                                               tmp_path: Path) -> None:
    made = [doc(cli(versions, "preview", "--task", "T01", "--version", v, "--materialize",
                    "--json"))["result"]["path"] for v in ("1.1.0", "1.2.0")]
    outside = tmp_path / "outside"
    doc(cli(versions, "preview", "--task", "T01", "--version", "1.2.0", "--materialize",
            str(outside), "--json"))
    foreign = versions.state_dir / "previews" / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    # a recorded preview whose marker was removed: no longer provably ours
    os.unlink(Path(made[0]) / ".clawback-preview.json")
    # a recorded preview replaced by a link to someone's directory: never followed
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("x")
    shutil.rmtree(outside)
    outside.symlink_to(victim)
    proc = cli(versions, "preview", "--cleanup", "--json")
    assert proc.returncode == 0, proc.stderr
    r = doc(proc)["result"]
    assert r["removed"] == [made[1]]
    left = dict(map(tuple, r["left"]))
    assert "no .clawback-preview.json" in left[made[0]] and "link" in left[str(outside)]
    assert "not a preview clawback recorded" in left[str(foreign)]
    assert (foreign / "notes.txt").read_text() == "keep" and (victim / "precious").exists()
    assert Path(made[0]).is_dir() and not Path(made[1]).exists()
    again = doc(cli(versions, "preview", "--cleanup", "--json"))["result"]
    assert again["removed"] == []   # idempotent: what was left is no longer listed


def test_a_tampered_manifest_is_said_loudly_and_never_materialised(versions: Workspace) -> None:
    ws = versions
    message = ws.git.tag_message("T01-v1.2.0")
    git(ws, "tag", "-d", "T01-v1.2.0")
    ws.git.create_tag("T01-v1.2.0", git(ws, "rev-parse", "HEAD").strip(),
                      message.replace('"size": 20', '"size": 21'))
    proc = cli(ws, "preview", "--task", "T01", "--version", "1.2.0")
    assert proc.returncode == 1 and "DOES NOT VERIFY" in proc.stdout + proc.stderr
    assert "digest mismatch" in proc.stderr
    proc = cli(ws, "preview", "--task", "T01", "--version", "1.2.0", "--materialize")
    assert proc.returncode == 1 and "does not verify" in proc.stderr
    previews = ws.state_dir / "previews"
    assert not previews.exists()   # refused before anything was written


def test_a_deleted_task_can_be_looked_at_but_not_smoke_tested(versions: Workspace) -> None:
    ws = versions
    reg = ws.root / "task_registry.json"
    data = json.loads(reg.read_text())
    data["tasks"][1]["status"] = "deleted"   # T02, tagged 2.0.1 by init
    reg.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    proc = cli(ws, "preview", "--task", "T02", "--version", "2.0.1", "--json")
    assert proc.returncode == 0 and doc(proc)["result"]["version"] == "2.0.1"
    proc = cli(ws, "preview", "--task", "T02", "--version", "2.0.1", "--smoke")
    assert proc.returncode == 2 and "deleted" in proc.stderr
    assert not (ws.state_dir / "envs" / "T02").exists() or "current" in os.listdir(
        ws.state_dir / "envs" / "T02")
    proc = cli(ws, "preview", "--task", "T99", "--version", "0.0.0")
    assert proc.returncode == 2 and "known versions of T99: none" in proc.stderr


def test_a_failing_smoke_is_exit_1(versions: Workspace) -> None:
    from flows.snapshot import run_snapshot

    (versions.root / "tasks/T01/main.py").write_text("import not_a_module_anywhere\n")
    run_snapshot(str(versions.root), "T01", bump="patch",
                 allow_secrets=["api_key", "fetch.py:TUSHARE_TOKEN"])
    proc = cli(versions, "preview", "--task", "T01", "--version", "1.2.1", "--smoke", "--json")
    assert proc.returncode == 1
    levels = doc(proc)["result"]["levels"]
    assert [lv["ok"] for lv in levels] == [True, True, False]
    assert "not_a_module_anywhere" in levels[2]["detail"]


@pytest.mark.parametrize("argv", [
    [], ["--show", "main.py"], ["--materialize"], ["--smoke"],
])
def test_no_mode_imports_prefect(versions: Workspace, argv: list[str]) -> None:
    args = ["preview", "--task", "T01", "--version", "1.1.0", *argv, "--workspace", str(versions.root)]
    code = ("import sys; from clawback.cli import main; "
            f"rc = main({args!r}); assert main(['preview', '--cleanup', '--workspace', "
            f"{str(versions.root)!r}]) == 0; "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_large_workspace(large_ws: Workspace, tmp_path: Path) -> None:
    ws = large_ws
    status = json.loads(cli(ws, "status", "--json").stdout)["result"]["tasks"]
    before = world(ws)
    t01 = next(t for t in status if t["id"] == "T01")
    started = time.monotonic()
    proc = cli(ws, "preview", "--task", "T01", "--version", t01["version"], "--json")
    summary_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    files = doc(proc)["result"]["files"]
    assert len(files) > 5000
    dest = tmp_path / "big"
    started = time.monotonic()
    proc = cli(ws, "preview", "--task", "T01", "--version", t01["version"], "--materialize",
               str(dest), "--json")
    materialize_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert os.path.islink(dest / "latest_positions.json")
    links = [f for f in files if f["mode"] == "120000"]
    assert links and all(os.path.islink(dest / f["path"]) for f in links)
    print(f"large workspace: summary {summary_s:.2f}s, materialize {len(files)} files "
          f"{materialize_s:.2f}s")
    assert cli(ws, "preview", "--cleanup").returncode == 0 and not dest.exists()
    t03 = next(t for t in status if t["id"] == "T03")
    proc = cli(ws, "preview", "--task", "T03", "--version", t03["version"], "--show", "config.yaml")
    assert proc.returncode == 0 and "${TUSHARE_TOKEN}" in proc.stdout
    proc = cli(ws, "preview", "--task", "T98", "--version", "0.3.0")
    assert proc.returncode == 2
    assert world(ws) == before


def test_a_workspace_never_used_with_clawback_stays_untouched(ws: Workspace) -> None:
    proc = cli(ws, "preview", "--cleanup", "--json")
    assert proc.returncode == 0 and doc(proc)["result"]["removed"] == []
    proc = cli(ws, "preview", "--task", "T01", "--version", "1.1.0")
    assert proc.returncode == 2 and "known versions of T01: none" in proc.stderr
    assert not ws.state_dir.exists()
