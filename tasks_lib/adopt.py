"""init (docs/design.md, "init"): adopt a workspace. The .gitignore merge lives here; tagging
each task's current version reuses the snapshot steps in adopt mode (flows/init.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks_lib.core import ids, safefs
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import STATE_DIR, Workspace

# The operator's template, plus the tool's own state directory.
GITIGNORE_TEMPLATE: tuple[str, ...] = (
    "# logs", "*.log", "logs/",
    "# data files", "*.db", "*.sqlite", "*.csv", "*.jsonl", "data/",
    "# caches", "__pycache__/", "*.pyc", ".pytest_cache/",
    "# environment files", ".env", ".env.local", ".env.*.local",
    "# IDE files", ".vscode/", ".idea/", "*.swp", "*.swo",
    "# temporary files", "*.tmp", "temp/", "tmp/",
    "# clawback tool state", f"{STATE_DIR}/",
    "# keep the important configuration", "!task_registry.json", "!tasks/*/config.yaml",
)


@dataclass(frozen=True)
class GitignoreMerge:
    changed: bool
    added: tuple[str, ...] = field(default_factory=tuple)
    text: str = ""                     # the merged file (when changed)


def merge_gitignore(ws: Workspace) -> GitignoreMerge:
    """The .gitignore with the template's missing rules appended (existing lines and their
    order are kept); nothing is written here."""
    data = safefs.read_bytes(ws.root, ".gitignore")
    if data is None and safefs.entry(ws.root, ".gitignore", read=False).kind != "missing":
        raise BadInput(".gitignore is not a regular file (a symlink or a directory)",
                       "make it a regular file of the workspace, then run init again")
    text = data.decode("utf-8", "surrogateescape") if data is not None else ""
    have = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_TEMPLATE if not line.startswith("#") and line not in have]
    if not missing:
        return GitignoreMerge(False)
    block: list[str] = ["", "# --- added by clawback init (seed template) ---"] if text else \
        ["# --- clawback init (seed template) ---"]
    for line in GITIGNORE_TEMPLATE:
        if line.startswith("#") or line in missing:
            block.append(line)
    # drop section comments whose rules were all present already
    cleaned = [ln for i, ln in enumerate(block)
               if not (ln.startswith("# ") and not ln.startswith("# ---")
                       and (i + 1 >= len(block) or block[i + 1].startswith("#")))]
    sep = "" if not text or text.endswith("\n") else "\n"
    return GitignoreMerge(True, tuple(missing), text + sep + "\n".join(cleaned) + "\n")


def untagged_tasks(ws: Workspace) -> tuple[list[str], list[str]]:
    """(active tasks whose current version has no tag yet, active tasks already tagged)."""
    tags = {t.name for t in ws.git.tags()}
    todo, done = [], []
    for task in ws.tasks():
        if not task.active:
            continue
        try:
            tag = ids.version_tag(task.id, task.version or "")
        except BadInput:
            todo.append(task.id)  # the adopt step reports the bad version
            continue
        (done if tag in tags else todo).append(task.id)
    return todo, done
