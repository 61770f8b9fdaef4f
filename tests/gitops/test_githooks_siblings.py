"""A chained operator's hook still finds its siblings through ``$0``: a library sourced from
``dirname "$0"``, a ``"$0.d"/*`` multiplexer, a ``basename "$0"`` dispatcher all behave as before
init, a sibling made after init is found too, and uninstall puts the hooks directory back
byte-exactly (docs/design.md, "Git hooks"). Real git, real processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flows.init import run_init
from tasks_lib import githooks
from tasks_lib.core.workspace import Workspace
from tests.gitops.test_githooks import HOOKS, edit_and_commit, foreign, hooks_tree, run


def operator_hooks(ws: Workspace, log: Path) -> Path:
    """lib.sh sourced by pre-commit, a pre-push that runs ``$0.d/*`` (one refuses), a
    post-merge dispatcher keyed on ``basename "$0"``."""
    hooks = ws.root / HOOKS
    hooks.mkdir(exist_ok=True)
    (hooks / "lib.sh").write_text(f'note() {{ echo "$1" >> {log}; }}\n')
    foreign(ws, "pre-commit", '. "$(dirname "$0")/lib.sh" || exit 1\nnote lib-sourced')
    foreign(ws, "pre-push", 'rc=0\nfor h in "$0.d"/*; do [ -x "$h" ] || continue; '
                            '"$h" "$@" || rc=1; done\nexit $rc')
    (hooks / "pre-push.d").mkdir()
    foreign(ws, "pre-push.d/no-wip", f"echo no-wip >> {log}; exit 1")
    foreign(ws, "post-merge", f'echo "$(basename "$0")" >> {log}')
    return hooks


def behaviour(ws: Workspace, log: Path, bare: Path, n: int) -> tuple[int, int, list[str]]:
    log.unlink(missing_ok=True)
    committed = edit_and_commit(ws, f"n: {n}\n").returncode
    pushed = run(ws, "push", "-q", str(bare), f"HEAD:refs/heads/b{n}").returncode
    run(ws, "checkout", "-q", "-b", f"side{n}")
    edit_and_commit(ws, f"side: {n}\n")
    run(ws, "checkout", "-q", "main")
    run(ws, "merge", "-q", "--no-edit", f"side{n}")
    return committed, pushed, log.read_text().split() if log.exists() else []


def test_chained_hooks_find_their_siblings_as_before(ws: Workspace, tmp_path: Path) -> None:
    log, bare = tmp_path / "log", tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    hooks = operator_hooks(ws, log)
    before = behaviour(ws, log, bare, 1)
    assert before == (0, 1, ["lib-sourced", "no-wip", "lib-sourced", "post-merge"])
    tree = hooks_tree(ws)
    assert {h.name: h.action for h in run_init(str(ws.root)).hooks}["pre-push"] == "chained"
    assert os.readlink(hooks / githooks.CHAIN_DIR / "lib.sh") == "../lib.sh"
    assert behaviour(ws, log, bare, 2) == before  # the push is still refused by no-wip
    foreign(ws, "lib2.sh", 'note() { echo "lib2-$1" >> "$LOG"; }')  # a sibling made after init
    foreign(ws, "pre-commit.pre-clawback", '. "$(dirname "$0")/lib2.sh" || exit 1\nnote late')
    assert edit_and_commit(ws, "n: 3\n", env={"LOG": str(log)}).returncode == 0
    assert log.read_text().split()[-1] == "lib2-late"
    os.unlink(hooks / "lib2.sh")
    foreign(ws, "pre-commit.pre-clawback", '. "$(dirname "$0")/lib.sh" || exit 1\nnote lib-sourced')
    run_init(str(ws.root), hooks="none")
    assert hooks_tree(ws) == tree  # nothing of ours left, all put back


def test_mirrors_never_write_through_a_link_or_over_a_name(ws: Workspace, tmp_path: Path) -> None:
    """A name the operator put into pre-clawback/ is kept; a pre-clawback that is a link gets
    nothing through it; uninstall removes only the X -> ../X links, only when no hook is chained."""
    log = tmp_path / "log"
    hooks = operator_hooks(ws, log)
    (hooks / githooks.CHAIN_DIR).mkdir()
    (hooks / githooks.CHAIN_DIR / "lib.sh").write_text("theirs\n")
    os.symlink("elsewhere", hooks / githooks.CHAIN_DIR / "pre-push.d")
    run_init(str(ws.root), hooks="pre-commit,pre-push")
    assert (hooks / githooks.CHAIN_DIR / "lib.sh").read_text() == "theirs\n"
    run_init(str(ws.root), hooks="pre-push")  # pre-push still chained: the mirrors stay
    assert not os.path.lexists(hooks / githooks.CHAIN_DIR / "post-merge")  # a hook: never mirrored
    assert os.readlink(hooks / githooks.CHAIN_DIR / "pre-push") == "../pre-push.pre-clawback"
    run_init(str(ws.root), hooks="none")
    left = sorted(os.listdir(hooks / githooks.CHAIN_DIR))
    assert left == ["lib.sh", "pre-push.d"]  # the operator's own entries, nothing of ours
    outside = tmp_path / "outside"
    outside.mkdir()
    for p in (hooks / githooks.CHAIN_DIR).iterdir():
        p.unlink()
    (hooks / githooks.CHAIN_DIR).rmdir()
    os.symlink(outside, hooks / githooks.CHAIN_DIR)
    os.symlink(hooks / "pre-commit.pre-clawback", outside / "pre-commit")  # so the script uses it
    run_init(str(ws.root), hooks="pre-commit")
    assert "lib.sh" in edit_and_commit(ws, "n: 9\n").stderr  # ran through it (no lib.sh there)
    assert os.listdir(outside) == ["pre-commit"]  # and nothing was written through the link
