"""Where init may write git hooks (docs/design.md, "Git hooks"): only into this repository's own
hooks directory.

git's hooks directory is ``git rev-parse --git-path hooks`` (core.hooksPath honoured). Two kinds
are refused. Among the versioned files it would be committed with them. Shared: core.hooksPath set
at global or system scope (a team's ``~/.githooks``), or a directory outside this repository's git
directory, links followed (a linked ``.git/hooks``, a local core.hooksPath pointing at a common
one), which other repositories may run too; clawback's hooks would then run, and refuse, in all of
them. The pre-commit framework refuses any core.hooksPath; a repository-local one inside the git
directory is honoured here.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core.workspace import Workspace


@dataclass(frozen=True)
class HooksDir:
    """The hooks directory git uses here (core.hooksPath honoured) and why nothing may be written
    there ("" when it may). ``shared``: other repositories may run what is there."""

    path: Path
    refusal: str = ""
    shared: bool = False
    own: str = ""  # shared: how to give this repository a hooks directory of its own


def hooks_dir(ws: Workspace) -> HooksDir:
    """Among the versioned files, a directory would be committed with them; set at global or
    system scope, or outside this repository's git directory (links followed), it may be every
    repository's (a team's ``~/.githooks``, a linked ``.git/hooks``): both are refused."""
    path = ws.root / ws.git.out("rev-parse", "--git-path", "hooks").strip()
    real, git_dir = Path(os.path.realpath(path)), Path(os.path.realpath(ws.git.common_dir()))
    if real.is_relative_to(os.path.realpath(ws.root)) and not real.is_relative_to(git_dir):
        return HooksDir(path, f"the hooks directory {path} (core.hooksPath, links followed) lies "
                        f"among the workspace's versioned files ({real}); nothing is written there: "
                        "point core.hooksPath into .git (or `git config --unset core.hooksPath`) and "
                        "run init again")
    found = ws.git.run("config", "--show-scope", "--get", "core.hooksPath", check=False)
    scope = found.stdout.decode("utf-8", "surrogateescape").split("\t", 1)[0] if found.returncode == 0 else ""
    local = f"`git config core.hooksPath {shlex.quote(str(git_dir / 'hooks'))}`"
    if scope not in ("", "local", "worktree"):
        return HooksDir(path, f"core.hooksPath is set in the {scope} git configuration", True, local)
    if not real.is_relative_to(git_dir):
        own = local if scope else f"make {path} a directory, not a link to {real}"
        return HooksDir(path, f"it lies outside this repository's git directory {git_dir} (at "
                        f"{real}, links followed)", True, own)
    return HooksDir(path)


def shared_reason(where: HooksDir, python: str) -> str:
    """What init says instead of writing into a shared directory: the two ways on."""
    return (f"{where.path} may be other repositories' hooks directory too ({where.refusal}); "
            "clawback's hooks there would run in all of them, so none is written. For this "
            f"repository alone: {where.own} and run init again (link in the shared hooks you still want: init chains them); or "
            f"chain the check by hand, `{shlex.quote(python)} -m clawback hook NAME -- \"$@\"` in "
            "the shared NAME hook (pre-push: on git's stdin); outside a clawback workspace it "
            "does nothing")
