"""The git hooks and other repositories: a hooks directory other repositories use (core.hooksPath
at global or system scope, one outside the git directory, a linked .git/hooks) gets nothing, and
what an earlier init put there is taken back; our script and ``clawback hook`` do nothing outside
their workspace; the operator's chained hook runs under its own name (docs/design.md, "Git hooks").
Real git, real processes; the machine's git configuration is a temporary one (HOME,
GIT_CONFIG_GLOBAL, GIT_CONFIG_SYSTEM), so the real ~/.gitconfig is never read or touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clawback.demo import sample
from flows.init import run_init
from tasks_lib import githooks
from tasks_lib.core.workspace import Workspace
from tests.conftest import git
from tests.gitops.test_githooks import HOOKS, clawback, edit_and_commit, hooks_tree, run

SECRET = "broker:\n  password: hunter2-very-secret\n"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """This test's own machine-wide git configuration files (global and system)."""
    home = tmp_path / "home"
    home.mkdir()
    files = {"global": home / ".gitconfig", "system": tmp_path / "etc-gitconfig"}
    files["global"].write_text("[user]\n\tname = Other Dev\n\temail = dev@example.invalid\n")
    files["system"].write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(files["global"]))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(files["system"]))
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM", raising=False)
    return files


def plain_repo(root: Path, text: str = SECRET) -> Path:
    """A repository that is no clawback workspace, with ``text`` staged."""
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "settings.yaml").write_text(text)
    subprocess.run(["git", "add", "settings.yaml"], cwd=root, check=True)
    return root


def commit_in(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "commit", "-q", "-m", "work"], cwd=root, capture_output=True,
                          text=True, check=False)


def logging_hook(path: Path, log: Path) -> None:
    """An operator's hook (or dispatcher) that logs the name it runs under and refuses a name
    it does not know, as shared hook managers do."""
    path.write_text('#!/bin/sh\nname=$(basename "$0")\n'
                    f'echo "$name" >> {log}\n'
                    'case "$name" in pre-commit|pre-push|post-merge|post-checkout) exit 0;; esac\n'
                    'echo "dispatch: unknown hook $name" >&2; exit 1\n')
    path.chmod(0o755)


# -- shared hooks directories ----------------------------------------------------------------
@pytest.mark.parametrize("scope", ["global", "system"])
def test_a_machine_wide_hooks_path_gets_nothing(ws: Workspace, machine: dict[str, Path],
                                                 tmp_path: Path, scope: str) -> None:
    shared, log = tmp_path / "team-hooks", tmp_path / "log"
    shared.mkdir()
    logging_hook(shared / "pre-commit", log)
    subprocess.run(["git", "config", "--file", str(machine[scope]), "core.hooksPath", str(shared)],
                   check=True)
    before = hooks_tree(shared)
    proc = clawback(ws, "init")
    assert proc.returncode == 0, proc.stderr  # the rest of init went ahead
    assert "adopted T01-v1.1.0" in proc.stdout and "adopted T02-v2.0.1" in proc.stdout
    assert "pre-commit, pre-push, post-merge, post-checkout hooks: kept" in proc.stdout
    assert f"core.hooksPath is set in the {scope} git configuration" in proc.stdout
    assert f"`git config core.hooksPath {ws.root}/.git/hooks`" in proc.stdout
    assert "-m clawback hook NAME" in proc.stdout
    assert hooks_tree(shared) == before
    other = plain_repo(tmp_path / "other")
    assert commit_in(other).returncode == 0 and log.read_text() == "pre-commit\n"

    # the advice, followed: a hooks directory of its own, the shared hook linked in and chained
    git(ws, "config", "core.hooksPath", str(ws.root / HOOKS))
    os.symlink(shared / "pre-commit", ws.root / HOOKS / "pre-commit")
    actions = {h.name: h.action for h in run_init(str(ws.root)).hooks}
    assert actions == {"pre-commit": "chained", "pre-push": "installed", "post-merge": "installed",
                       "post-checkout": "installed"}
    refused = edit_and_commit(ws, SECRET)
    assert refused.returncode != 0 and "broker.password" in refused.stderr
    assert log.read_text() == "pre-commit\npre-commit\n"  # the team's hook, under its own name
    assert hooks_tree(shared) == before


def test_an_earlier_inits_hooks_in_a_shared_directory_are_harmless_and_taken_back(
        ws: Workspace, machine: dict[str, Path], tmp_path: Path) -> None:
    shared, log = tmp_path / "team-hooks", tmp_path / "log"
    shared.mkdir()
    logging_hook(shared / "pre-commit", log)
    before = hooks_tree(shared)
    git(ws, "config", "--file", str(machine["global"]), "core.hooksPath", str(shared))
    for name in githooks.HOOKS:  # what init did before it knew better
        githooks.install(shared / name, name, sys.executable)
    assert (shared / "pre-commit.pre-clawback").is_file()
    other = plain_repo(tmp_path / "other")
    proc = commit_in(other)
    assert proc.returncode == 0 and proc.stderr == ""
    assert log.read_text() == "pre-commit\n"  # the chained hook still runs there
    # another clawback workspace using the shared directory: the script is not in its git
    # directory, so it checks nothing there (without that, this secret is refused)
    another = Workspace(sample.make_workspace(tmp_path / "another").resolve())
    assert edit_and_commit(another, SECRET).returncode == 0
    proc = clawback(ws, "init")
    assert proc.returncode == 0, proc.stderr
    assert "pre-commit hook: restored (pre-commit.pre-clawback put back; " in proc.stdout
    assert "pre-push, post-merge, post-checkout hooks: removed" in proc.stdout
    assert hooks_tree(shared) == before  # the operator's hook exactly as it was


def test_a_local_hooks_path_outside_the_git_dir_is_refused_inside_it_is_used(
        ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "team-hooks"
    outside.mkdir()
    git(ws, "config", "core.hooksPath", str(outside))
    changes = githooks.apply(ws, sys.executable)
    assert [h.action for h in changes] == ["kept"] * 4 and not any(h.installed for h in changes)
    assert "outside this repository's git directory" in changes[0].reason
    assert f"`git config core.hooksPath {ws.root}/.git/hooks`" in changes[0].reason
    assert list(outside.iterdir()) == []
    git(ws, "config", "core.hooksPath", ".git/my-hooks")  # relative: from the top level
    assert {h.action for h in githooks.apply(ws, sys.executable)} == {"installed"}
    assert sorted(p.name for p in (ws.root / ".git/my-hooks").iterdir()) == sorted(githooks.HOOKS)
    refused = edit_and_commit(ws, SECRET)
    assert refused.returncode != 0 and "broker.password" in refused.stderr


def test_a_linked_hooks_directory_is_shared(ws: Workspace, tmp_path: Path) -> None:
    shared = tmp_path / "shared-hooks"
    shared.mkdir()
    if (ws.root / HOOKS).exists():
        (ws.root / HOOKS).rename(tmp_path / "old-hooks")
    os.symlink(shared, ws.root / HOOKS)
    result = run_init(str(ws.root))
    assert not any(h.installed for h in result.hooks) and not result.failures
    assert f"make {ws.root / HOOKS} a directory, not a link to {shared}" in result.hooks[0].reason
    assert list(shared.iterdir()) == [] and (ws.root / HOOKS).is_symlink()


# -- outside the workspace: nothing ----------------------------------------------------------
def hook(cwd: Path, *argv: str, env: dict[str, str] | None = None,
         input: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawback", "hook", *argv], cwd=cwd, input=input,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none", **(env or {})})


def test_clawback_hook_outside_a_workspace_does_nothing(ws: Workspace, tmp_path: Path) -> None:
    other = plain_repo(tmp_path / "other")
    (other / "sub").mkdir()
    pointed = {"CLAWBACK_WORKSPACE": str(ws.root)}  # names a workspace; git runs the hook in other
    line = f"refs/tags/T01-v1.1.0 {'a' * 40} refs/tags/T01-v1.1.0 {'0' * 40}\n"
    for argv, stdin in ((["pre-commit", "--"], ""), (["pre-push", "--", "o", "u"], line),
                        (["post-merge", "--", "0"], ""), (["post-checkout", "--", "a", "b", "1"], "")):
        for cwd in (other, other / "sub"):
            proc = hook(cwd, *argv, env=pointed, input=stdin)
            assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), argv
    (tmp_path / "not-git").mkdir()
    assert hook(tmp_path / "not-git", "pre-commit", "--").returncode == 0
    doc = json.loads(hook(other, "--json", "pre-commit", "--").stdout)
    assert doc["result"] == {"ran": False, "reason": f"{other} has no task_registry.json: not a "
                                                        "clawback workspace"}
    bad = hook(other, "--workspace", str(tmp_path / "missing"), "pre-commit", "--")
    assert bad.returncode == 2 and "not a directory" in bad.stderr
    # the workspace git runs the hook in is judged, whatever $CLAWBACK_WORKSPACE says
    cfg = ws.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + SECRET)
    run(ws, "add", "--", "tasks/T02/config.yaml")
    judged = hook(ws.root, "pre-commit", "--", env={"CLAWBACK_WORKSPACE": str(other)})
    assert judged.returncode == 1 and "broker.password" in judged.stderr


# -- the chained hook's name -----------------------------------------------------------------
def test_a_chained_hook_runs_under_its_own_name(ws: Workspace, tmp_path: Path) -> None:
    """A dispatcher keyed on basename "$0" (linked in from outside), a relative symlink and a
    plain file: each still runs as the hook git would have run, and comes back byte for byte."""
    log = tmp_path / "log"
    hooks = ws.root / HOOKS
    hooks.mkdir(exist_ok=True)
    logging_hook(tmp_path / "dispatch.sh", log)
    os.symlink(tmp_path / "dispatch.sh", hooks / "pre-push")
    logging_hook(ws.root / ".git/dispatch-rel", log)
    os.symlink("../dispatch-rel", hooks / "pre-commit")  # relative to the hooks directory
    logging_hook(hooks / "post-merge", log)
    before = hooks_tree(ws)
    actions = {h.name: h.action for h in run_init(str(ws.root)).hooks}
    assert actions == {"pre-commit": "chained", "pre-push": "chained", "post-merge": "chained",
                       "post-checkout": "installed"}
    assert edit_and_commit(ws).returncode == 0
    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    pushed = run(ws, "push", str(bare), "main", "T01-v1.1.0")
    assert pushed.returncode == 0, pushed.stderr
    run(ws, "checkout", "-q", "-b", "side")
    edit_and_commit(ws, "side: 1\n")
    run(ws, "checkout", "-q", "main")
    assert run(ws, "merge", "-q", "--no-edit", "side").returncode == 0
    assert log.read_text().split() == ["pre-commit", "pre-push", "pre-commit", "post-merge"]
    run_init(str(ws.root), hooks="none")
    assert hooks_tree(ws) == before


def test_a_chain_made_before_the_link_and_a_foreign_link_folder(ws: Workspace,
                                                                  tmp_path: Path) -> None:
    log = tmp_path / "log"
    (ws.root / HOOKS).mkdir(exist_ok=True)
    logging_hook(ws.root / HOOKS / "pre-commit", log)
    run_init(str(ws.root), hooks="pre-commit")
    folder = ws.root / HOOKS / githooks.CHAIN_DIR
    shutil.rmtree(folder)  # as an earlier init chained it: no links (rmtree follows none)
    assert edit_and_commit(ws).returncode != 0  # it still runs, under the old name
    assert log.read_text() == "pre-commit.pre-clawback\n"
    assert run_init(str(ws.root), hooks="pre-commit").hooks[0].action == "updated"
    assert edit_and_commit(ws).returncode == 0 and log.read_text().endswith("\npre-commit\n")
    run_init(str(ws.root), hooks="none")
    folder.write_text("not ours\n")  # something of someone else's where the links go
    run_init(str(ws.root), hooks="pre-commit")
    assert folder.read_text() == "not ours\n"
    edit_and_commit(ws, "more: 1\n")
    assert log.read_text().endswith("\npre-commit.pre-clawback\n")  # run all the same
    run_init(str(ws.root), hooks="none")
    assert folder.read_text() == "not ours\n" and (ws.root / HOOKS / "pre-commit").is_file()


# -- inside the workspace: still checked -----------------------------------------------------
def test_the_guard_still_checks_its_own_workspace(tmp_path: Path, offline: dict[str, str]) -> None:
    """The "not my repository" test must never turn the check off where it belongs: a path with
    spaces and glob characters, a linked worktree (it shares the git directory), a commit made
    with GIT_DIR and GIT_WORK_TREE from another directory."""
    ws = Workspace(sample.make_workspace(tmp_path / "a b [x] *" / "ws").resolve())
    run_init(str(ws.root), hooks="pre-commit")
    refused = edit_and_commit(ws, SECRET)
    assert refused.returncode != 0 and "broker.password" in refused.stderr
    run(ws, "reset", "-q", "--hard")
    linked = tmp_path / "linked"
    assert run(ws, "worktree", "add", "-q", "-b", "side", str(linked)).returncode == 0
    cfg = linked / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + SECRET)
    subprocess.run(["git", "add", "--", "tasks/T02/config.yaml"], cwd=linked, check=True)
    in_linked = commit_in(linked)
    assert in_linked.returncode != 0 and "broker.password" in in_linked.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = ws.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + SECRET)
    env = {**os.environ, "GIT_DIR": str(ws.root / ".git"), "GIT_WORK_TREE": str(ws.root)}
    subprocess.run(["git", "add", "--", "tasks/T02/config.yaml"], cwd=elsewhere, env=env, check=True)
    from_afar = subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=elsewhere, env=env,
                               capture_output=True, text=True, check=False)
    assert from_afar.returncode != 0 and "broker.password" in from_afar.stderr
