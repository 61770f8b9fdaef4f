"""The four git hooks init installs, run by real git: commit, push to a bare remote, merge and
checkout; chained with the operator's hooks, uninstalled byte for byte, skipped on request."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from flows.init import run_init
from tasks_lib import githooks
from tasks_lib.core.workspace import Workspace
from tasks_lib.hookchecks import check_push
from tests.conftest import git

HOOKS = Path(".git/hooks")


def hooks_tree(ws: Workspace | Path) -> dict[str, object]:
    """Every entry of the hooks directory (a subdirectory's too): bytes or link target, mode, inode."""
    d = ws.root / HOOKS if isinstance(ws, Workspace) else ws
    out: dict[str, object] = {}
    for p in sorted(d.rglob("*")) if d.is_dir() else []:
        if p.name.endswith(".sample"):  # git init's templates
            continue
        st = p.lstat()
        body = os.readlink(p) if p.is_symlink() else "<dir>" if p.is_dir() else p.read_bytes()
        out[str(p.relative_to(d))] = (body, stat.S_IMODE(st.st_mode), st.st_ino)
    return out


def clawback(ws: Workspace, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none", **kw.pop("env", {})}  # type: ignore[dict-item]
    return subprocess.run([sys.executable, "-m", "clawback", argv[0], "--workspace", str(ws.root),
                           *argv[1:]],
                          capture_output=True, text=True, check=False, env=env, **kw)  # type: ignore[call-overload]


def run(ws: Workspace, *args: str, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ws.root, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, input=input)


def foreign(ws: Workspace, name: str, body: str, mode: int = 0o755) -> Path:
    path = ws.root / HOOKS / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def edit_and_commit(ws: Workspace, text: str = "note: fine\n", *,
                    env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
                    ) -> subprocess.CompletedProcess[str]:
    cfg = ws.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + text)
    run(ws, "add", "--", "tasks/T02/config.yaml")
    return run(ws, "commit", *extra, "-m", "agent edit", env=env)


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    result = run_init(str(ws.root))
    assert {h.name: h.action for h in result.hooks} == dict.fromkeys(githooks.HOOKS, "installed")
    assert not result.failures
    return ws


@pytest.fixture
def remote(adopted: Workspace, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(adopted, "remote", "add", "origin", str(bare))
    return bare


def remote_tags(bare: Path) -> str:
    return subprocess.run(["git", "tag", "-l"], cwd=bare, capture_output=True, text=True).stdout


# -- install, chain, uninstall --------------------------------------------------------------
def test_init_is_idempotent_and_never_wraps_itself(adopted: Workspace) -> None:
    before = hooks_tree(adopted)
    again = run_init(str(adopted.root))
    assert {h.action for h in again.hooks} == {"unchanged"}
    assert hooks_tree(adopted) == before
    assert not any(n.endswith(githooks.CHAINED_SUFFIX) or n == githooks.CHAIN_DIR for n in before)


def test_a_foreign_hook_is_chained_runs_first_and_is_put_back_exactly(ws: Workspace) -> None:
    hook = foreign(ws, "pre-commit", 'echo "operator hook $#" >> "$(git rev-parse --git-dir)/ran"', 0o750)
    original = hooks_tree(ws)["pre-commit"]
    first = run_init(str(ws.root))
    assert next(h for h in first.hooks if h.name == "pre-commit").action == "chained"
    chained = hook.with_name("pre-commit" + githooks.CHAINED_SUFFIX)
    assert hooks_tree(ws)[chained.name] == original  # same bytes, mode and inode: renamed
    assert run_init(str(ws.root)).hooks[0].action == "unchanged"  # not chained twice
    assert edit_and_commit(ws).returncode == 0
    assert (ws.root / ".git/ran").read_text() == "operator hook 0\n"
    proc = edit_and_commit(ws, "broker:\n  password: hunter2-very-secret\n")
    assert proc.returncode != 0 and "broker.password" in proc.stderr  # ours still refuses
    assert "hunter2" not in proc.stderr + proc.stdout
    undone = run_init(str(ws.root), hooks="none")
    assert {h.name: h.action for h in undone.hooks}["pre-commit"] == "restored"
    assert hooks_tree(ws) == {"pre-commit": original}


def test_a_failing_foreign_hook_still_blocks_the_commit(ws: Workspace) -> None:
    foreign(ws, "pre-commit", "echo 'operator says no' >&2; exit 7")
    run_init(str(ws.root))
    head = git(ws, "rev-parse", "HEAD")
    proc = edit_and_commit(ws)
    assert proc.returncode != 0 and "operator says no" in proc.stderr
    assert git(ws, "rev-parse", "HEAD") == head


def test_a_symlinked_foreign_hook_is_restored_as_the_same_link(ws: Workspace) -> None:
    (ws.root / ".git/my-hook").write_text("#!/bin/sh\nexit 0\n")
    (ws.root / ".git/my-hook").chmod(0o755)
    (ws.root / HOOKS).mkdir(exist_ok=True)
    os.symlink("../my-hook", ws.root / HOOKS / "pre-push")
    before = hooks_tree(ws)
    run_init(str(ws.root))
    assert os.readlink(ws.root / HOOKS / ("pre-push" + githooks.CHAINED_SUFFIX)) == "../my-hook"
    run_init(str(ws.root), hooks="none")
    assert hooks_tree(ws) == before


def test_a_hand_edited_hook_of_ours_is_left_alone(adopted: Workspace) -> None:
    path = adopted.root / HOOKS / "pre-push"
    path.write_text(path.read_text() + "echo my addition\n")
    edited = hooks_tree(adopted)["pre-push"]
    for choice in ("all", "none"):
        result = run_init(str(adopted.root), hooks=choice)
        change = next(h for h in result.hooks if h.name == "pre-push")
        assert change.action == "kept" and "edited by hand" in change.reason
        assert hooks_tree(adopted)["pre-push"] == edited


def test_the_previous_pre_commit_hook_is_upgraded(ws: Workspace) -> None:
    path = ws.root / HOOKS / "pre-commit"
    path.parent.mkdir(exist_ok=True)
    path.write_text(githooks._v1_script(sys.executable))
    result = run_init(str(ws.root))
    assert result.hooks[0].action == "updated"
    assert path.read_text() == githooks.script("pre-commit", sys.executable)
    path.write_text(githooks._v1_script(sys.executable) + "# mine\n")  # edited: not upgraded
    assert githooks.classify(path, "pre-commit") == "edited"


def test_a_hook_that_already_calls_the_check_is_not_wrapped(ws: Workspace) -> None:
    foreign(ws, "pre-commit", f"{sys.executable} -m clawback hook pre-commit || exit 1")
    before = hooks_tree(ws)
    result = run_init(str(ws.root))
    assert result.hooks[0].action == "kept" and result.hooks[0].installed
    assert hooks_tree(ws)["pre-commit"] == before["pre-commit"]


def test_a_hook_and_a_leftover_chained_file_are_both_kept(ws: Workspace) -> None:
    foreign(ws, "post-merge", "exit 0")
    foreign(ws, "post-merge" + githooks.CHAINED_SUFFIX, "exit 1")
    before = hooks_tree(ws)
    change = next(h for h in run_init(str(ws.root)).hooks if h.name == "post-merge")
    assert change.action == "kept" and not change.installed and "merge them" in change.reason
    assert {k: v for k, v in hooks_tree(ws).items() if k.startswith("post-merge")} == before


def test_init_hooks_chooses_and_uninstalls_the_rest(adopted: Workspace) -> None:
    result = run_init(str(adopted.root), hooks="pre-commit,post-merge")
    actions = {h.name: h.action for h in result.hooks}
    assert actions == {"pre-commit": "unchanged", "pre-push": "removed",
                       "post-merge": "unchanged", "post-checkout": "removed"}
    assert sorted(hooks_tree(adopted)) == ["post-merge", "pre-commit"]
    assert run_init(str(adopted.root), hooks="none").hooks and not hooks_tree(adopted)
    assert run_init(str(adopted.root), hooks="none").hooks == ()


@pytest.mark.parametrize("value", ["bogus", "pre-commit,bogus", "", "all,none", "../x",
                                   "pre-commit;rm -rf /", "-rf", "PRE-COMMIT"])
def test_init_hooks_bad_names_exit_2_and_change_nothing(ws: Workspace, value: str) -> None:
    foreign(ws, "pre-commit", "exit 0")
    before = (hooks_tree(ws), git(ws, "rev-parse", "HEAD"), git(ws, "status", "--porcelain"),
              (ws.root / "task_registry.json").read_bytes(), git(ws, "tag", "-l"))
    proc = clawback(ws, "init", f"--hooks={value}")
    assert proc.returncode == 2, proc.stderr
    assert "pre-commit, pre-push" in proc.stderr and "Traceback" not in proc.stderr
    assert (hooks_tree(ws), git(ws, "rev-parse", "HEAD"), git(ws, "status", "--porcelain"),
            (ws.root / "task_registry.json").read_bytes(), git(ws, "tag", "-l")) == before
    assert not (ws.root / ".clawback").exists()


def test_a_hooks_dir_among_the_versioned_files_gets_nothing(ws: Workspace) -> None:
    os.symlink("tasks/T01", ws.root / "hooks-link")
    git(ws, "config", "core.hooksPath", "hooks-link")
    before = sorted(p.name for p in (ws.root / "tasks/T01").iterdir())
    result = run_init(str(ws.root))
    assert all(h.action == "kept" and "versioned files" in h.reason for h in result.hooks)
    assert sorted(p.name for p in (ws.root / "tasks/T01").iterdir()) == before


# -- pre-commit: version bumps --------------------------------------------------------------
def test_pre_commit_warns_about_a_bump_without_a_snapshot(adopted: Workspace) -> None:
    cfg = adopted.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text().replace("version: 2.0.1", "version: 2.0.2"))
    run(adopted, "add", "--", "tasks/T02/config.yaml")
    proc = run(adopted, "commit", "-m", "bump")
    assert proc.returncode == 0, proc.stderr  # a warning, not a refusal
    assert "T02: version '2.0.2' (tasks/T02/config.yaml) has no tag" in proc.stderr
    assert "clawback snapshot --task T02" in proc.stderr
    quiet = edit_and_commit(adopted, "other: 1\n")  # no version change: no warning
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_pre_commit_warns_about_a_registry_version_bump(adopted: Workspace) -> None:
    reg = adopted.root / "task_registry.json"
    doc = json.loads(reg.read_text())
    tasks = doc["tasks"]
    entry = tasks["T01"] if isinstance(tasks, dict) else next(t for t in tasks if t["id"] == "T01")
    entry["version"] = "1.1.1"
    reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    run(adopted, "add", "--", "task_registry.json")
    proc = run(adopted, "commit", "-m", "registry bump")
    assert proc.returncode == 0 and "T01: version '1.1.1' (task_registry.json)" in proc.stderr
    # back to a tagged version: nothing to say
    entry["version"] = "1.1.0"
    reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    run(adopted, "add", "--", "task_registry.json")
    assert "warning" not in run(adopted, "commit", "-m", "back").stderr


def test_skips_and_a_vanished_interpreter(adopted: Workspace, tmp_path: Path) -> None:
    secret = "token: 8700aa11bb22cc33dd\n"
    assert edit_and_commit(adopted, secret, env={"CLAWBACK_SKIP_HOOKS": "1"}).returncode == 0
    assert edit_and_commit(adopted, "password: hunter2-very-secret\n",
                           extra=("--no-verify",)).returncode == 0
    githooks.apply(adopted, str(tmp_path / "gone" / "python"))
    proc = edit_and_commit(adopted, "api_key: sk-live-1234567890abcdef\n")
    assert proc.returncode == 0 and "is gone; secret check skipped" in proc.stderr


# -- pre-push --------------------------------------------------------------------------------
def retag(ws: Workspace, tag: str, edit: str) -> None:
    """Re-make ``tag`` with an edited manifest (``edit``: which damage)."""
    message = subprocess.run(["git", "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}"],
                             cwd=ws.root, capture_output=True, text=True, check=True).stdout
    commit = git(ws, "rev-parse", f"{tag}^{{commit}}").strip()
    if edit == "checksum":  # digest left stale
        message = message.replace('"sha256:', '"sha256:0', 1)
    (ws.root / ".git/msg").write_text(message)
    git(ws, "tag", "-f", "-a", "--cleanup=verbatim", "-F", ".git/msg", tag, commit)


def test_pre_push_passes_good_tags_and_refuses_a_tampered_one(adopted: Workspace,
                                                               remote: Path) -> None:
    good = run(adopted, "push", "origin", "main", "T02-v2.0.1")
    assert good.returncode == 0, good.stderr
    retag(adopted, "T01-v1.1.0", "checksum")
    proc = run(adopted, "push", "origin", "--tags")
    assert proc.returncode != 0
    assert "refusing to push T01-v1.1.0: manifest intact" in proc.stderr
    assert "clawback verify-snapshot --task T01 --version 1.1.0" in proc.stderr
    assert "T01-v1.1.0" not in remote_tags(remote)
    assert run(adopted, "push", "--no-verify", "origin", "T01-v1.1.0").returncode == 0
    deleted = run(adopted, "push", "origin", ":refs/tags/T01-v1.1.0")  # a deletion: not judged
    assert deleted.returncode == 0, deleted.stderr
    skip = run(adopted, "push", "origin", "T01-v1.1.0", env={"CLAWBACK_SKIP_HOOKS": "1"})
    assert skip.returncode == 0 and "T01-v1.1.0" in remote_tags(remote)


def test_pre_push_refuses_a_version_name_given_to_something_else(adopted: Workspace,
                                                                  remote: Path) -> None:
    git(adopted, "tag", "T01-v7.0.0")  # lightweight: no manifest
    light = run(adopted, "push", "origin", "T01-v7.0.0")
    assert light.returncode != 0 and "refusing to push T01-v7.0.0: tag annotated" in light.stderr
    renamed = run(adopted, "push", "origin", "T02-v2.0.1:refs/tags/T01-v8.0.0")
    assert renamed.returncode != 0 and "is not the local tag T01-v8.0.0" in renamed.stderr
    git(adopted, "tag", "-a", "-m", "mine", "release-2026;rm")  # foreign names pass untouched
    assert run(adopted, "push", "origin", "main", "release-2026;rm").returncode == 0
    assert remote_tags(remote).split() == ["release-2026;rm"]


def test_the_chained_pre_push_gets_the_same_input(ws: Workspace, tmp_path: Path) -> None:
    foreign(ws, "pre-push", f'echo "$1 $2" > {tmp_path}/args; cat > {tmp_path}/stdin')
    run_init(str(ws.root))
    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    (tmp_path / "tmp").mkdir()
    proc = run(ws, "push", str(bare), "T01-v1.1.0", env={"TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # the saved input is removed
    oid = git(ws, "rev-parse", "refs/tags/T01-v1.1.0").strip()
    assert (tmp_path / "stdin").read_text() == \
        f"refs/tags/T01-v1.1.0 {oid} refs/tags/T01-v1.1.0 {'0' * 40}\n"
    assert (tmp_path / "args").read_text() == f"{bare} {bare}\n"


@pytest.mark.parametrize("line", [
    "refs/tags/T01-v1.1.0 notasha refs/tags/T01-v1.1.0 " + "0" * 40,
    "refs/tags/T01-v1.1.0 " + "a" * 40 + " refs/tags/T01-v1.1.0",
    "a b c d e",
])
def test_unreadable_pre_push_input_refuses(adopted: Workspace, line: str) -> None:
    result = check_push(adopted, (line + "\n").encode())
    assert not result.ok and result.unreadable


def test_hostile_pushed_names_never_reach_git(adopted: Workspace) -> None:
    z = "0" * 40
    names = ["refs/tags/../../x", "refs/tags/-rf", "refs/tags/T01-v1.1.0;rm",
             "refs/tags/T01-v1.2.0\udcff", "refs/tags/T01-v01.1.0", "refs/heads/T01-v1.1.0"]
    stdin = "".join(f"{n} {'1' * 40} {n} {z}\n" for n in names).encode("utf-8", "surrogateescape")
    result = check_push(adopted, stdin)
    assert result.ok and result.tags == ()
    proc = clawback(adopted, "hook", "--json", "pre-push", "--", "origin", "-rf",
                    input="refs/tags/T01-v1.1.0 " + "b" * 40 + " refs/tags/T01-v1.1.0 " + z + "\n")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and "is not the local tag" in doc["result"]["tags"][0]["problems"][0]


def test_rollback_markers_and_deletions_are_skipped(adopted: Workspace) -> None:
    z = "0" * 40
    stdin = (f"(delete) {z} refs/tags/T01-v1.1.0 {'c' * 40}\n"
             f"refs/tags/T01-v1.1.0-rollback-from-v1.2.0 {'d' * 40} "
             f"refs/tags/T01-v1.1.0-rollback-from-v1.2.0 {z}\n").encode()
    result = check_push(adopted, stdin)
    assert result.ok and len(result.skipped) == 2 and result.tags == ()


# -- post-merge / post-checkout --------------------------------------------------------------
def test_post_hooks_never_fail_and_honour_the_chained_status(adopted: Workspace,
                                                              tmp_path: Path) -> None:
    run(adopted, "checkout", "-q", "-b", "side")
    assert edit_and_commit(adopted, "side: 1\n").returncode == 0
    run(adopted, "checkout", "-q", "main")
    merged = run(adopted, "merge", "--no-edit", "side")
    assert merged.returncode == 0, merged.stderr
    assert clawback(adopted, "hook", "post-merge", "--", "0").returncode == 0
    foreign(adopted, "post-checkout.pre-clawback", f'echo "$3" >> {tmp_path}/flags; exit 3')
    branch = run(adopted, "checkout", "-q", "side")
    assert branch.returncode != 0  # git reports the operator's post-checkout failure, as before
    (adopted.root / "tasks/T02/config.yaml").write_text("scratch: 1\n")
    assert run(adopted, "checkout", "--", "tasks/T02/config.yaml").returncode != 0
    assert (tmp_path / "flags").read_text() == "1\n0\n"
    doc = json.loads(clawback(adopted, "hook", "--json", "post-checkout", "--", "a", "b", "0").stdout)
    assert doc["ok"] and doc["result"]["ran"] is False


@pytest.mark.parametrize("argv", [["pre-commit", "--"], ["post-merge", "--", "0"],
                                  ["post-checkout", "--", "a", "b", "1"], ["pre-push", "--", "o", "u"]])
def test_the_hook_checks_never_import_prefect(adopted: Workspace, argv: list[str]) -> None:
    code = ("import sys; from clawback.cli import main; "
            f"rc = main(['hook', '--workspace', {str(adopted.root)!r}, *{argv!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          input="")
    assert proc.returncode == 0, proc.stderr


def test_post_merge_warns_with_what_sync_registry_check_reports(
        adopted: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The real sync-registry --check's report is a warning, exit 0; whatever the check prints
    reaches git's stderr masked."""
    import argparse
    import types

    import clawback.commands
    from clawback.cli import main
    from clawback.commands.interface import Outcome

    assert main(["hook", "--workspace", str(adopted.root), "post-merge", "--", "0"]) == 0
    assert capsys.readouterr().err == ""  # everything agrees: quiet
    config = adopted.root / "tasks/T01/config.yaml"
    config.write_text(config.read_text().replace("version: 1.1.0", "version: 1.1.7"))
    assert main(["hook", "--workspace", str(adopted.root), "post-merge", "--", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: the registry, the configs and the tags disagree" in err
    assert "T01 version-mismatch" in err and "clawback snapshot --task T01" in err

    seen: list[bool] = []

    def register(p: argparse.ArgumentParser) -> None:
        p.add_argument("--check", action="store_true")

    def run_check(args: argparse.Namespace) -> Outcome:
        seen.append(args.check)
        print("stdout of the check")
        return Outcome(1, {}, f"T01: registry says 1.1.0, config says 1.2.0 (token {os.environ['TUSHARE_TOKEN']})")

    fake = types.SimpleNamespace(NAME="sync-registry", HELP="", register=register, run=run_check)
    monkeypatch.setenv("TUSHARE_TOKEN", "tok-8f3a9c2e7d")
    others = tuple(c for c in clawback.commands.COMMANDS if c.NAME != "sync-registry")
    monkeypatch.setattr(clawback.commands, "COMMANDS", (*others, fake))
    assert main(["hook", "--workspace", str(adopted.root), "post-merge", "--", "0"]) == 0
    err = capsys.readouterr().err
    assert seen == [True] and "warning: the registry, the configs and the tags disagree" in err
    assert "T01: registry says 1.1.0" in err and "stdout of the check" in err
    assert "tok-8f3a9c2e7d" not in err


def test_hooks_on_the_large_workspace(large_ws: Workspace, tmp_path: Path) -> None:
    """6,000 files, a list registry with deleted tasks, links into state, Chinese names: the hooks
    init installed there warn about a bump, pass a good tag and refuse a damaged one."""
    assert {h.action for h in githooks.apply(large_ws, sys.executable)} == {"unchanged"}
    cfg = large_ws.root / "tasks/T03/config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.0.1"),
                   encoding="utf-8")
    run(large_ws, "add", "--", "tasks/T03/config.yaml")
    proc = run(large_ws, "commit", "-m", "北向资金 bump")
    assert proc.returncode == 0 and "clawback snapshot --task T03" in proc.stderr
    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    good = run(large_ws, "push", str(bare), "T01-v1.1.0", "T03-v1.0.0")
    assert good.returncode == 0, good.stderr
    retag(large_ws, "T02-v2.0.1", "checksum")
    bad = run(large_ws, "push", str(bare), "T02-v2.0.1")
    assert bad.returncode != 0 and "refusing to push T02-v2.0.1" in bad.stderr
