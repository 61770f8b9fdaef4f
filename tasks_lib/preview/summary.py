"""What a stored version is, at a glance (docs/design.md, "Preview (the time machine)"): its
files with sizes (from the manifest), its config as git holds it at the snapshot's commit with
secret values masked, its dependencies, runtime settings and environment variable names, its
stable / quarantined mark (the live registry's ``snapshots[]`` records), and when, who and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tasks_lib.core import ids
from tasks_lib.core.workspace import Workspace
from tasks_lib.preview.resolve import Resolved, marks
from tasks_lib.preview.show import mask_text
from tasks_lib.secrets import masking
from tasks_lib.secrets.files import scan_file


@dataclass(frozen=True)
class PreviewFile:
    path: str     # relative to the task directory
    size: int
    mode: str


@dataclass(frozen=True)
class PreviewSummary:
    task_id: str
    version: str
    tag: str
    commit: str
    created_at: str
    creator: str
    message: str
    location: str
    marks: dict[str, bool]
    files: tuple[PreviewFile, ...]
    total_bytes: int
    config_file: str
    config: str | None           # the config's text at the version, secret values masked
    config_masked: tuple[str, ...]
    python: str
    python_packages: tuple[str, ...]
    lock_digest: str
    environment_variables: tuple[str, ...]
    runtime: dict[str, Any]
    state_paths: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())   # the manifest cannot be trusted: exit 1

    @property
    def ok(self) -> bool:
        return not self.problems


def summarize(ws: Workspace, res: Resolved) -> PreviewSummary:
    snap = res.snapshot
    values = masking.for_workspace(ws.root)
    files = tuple(PreviewFile(res.rel(f.path), f.size, f.mode) for f in snap.files)
    config_file = snap.registry_entry.get("configuration_file", "config.yaml")
    if not isinstance(config_file, str) or not ids.safe_relative_path(config_file):
        config_file = "config.yaml"
    text, where = _config(ws, res, config_file, values)
    return PreviewSummary(
        task_id=res.task_id, version=res.version, tag=res.tag, commit=snap.git_commit,
        created_at=snap.created_at, creator=snap.creator,
        message=masking.mask(snap.message, values=values), location=snap.location,
        marks=marks(res), files=files, total_bytes=sum(f.size for f in files),
        config_file=config_file, config=text, config_masked=where, python=snap.python_mode,
        python_packages=snap.python_packages, lock_digest=snap.python_lock_digest,
        environment_variables=snap.environment_variables,
        runtime=masked_settings(snap.runtime, values), state_paths=snap.state_paths,
        problems=res.problems)


def _config(ws: Workspace, res: Resolved, config_file: str,
            values: list[str]) -> tuple[str | None, tuple[str, ...]]:
    path = f"{res.snapshot.location}/{config_file}"
    entry = next((f for f in res.snapshot.files if f.path == path), None)
    if entry is None:
        return None, ()
    data = ws.git.show_file(res.snapshot.git_commit, path)
    if data is None:
        return None, ()
    if entry.mode == "120000":
        return f"(a symlink to {data.decode('utf-8', 'surrogateescape')})", ()
    return mask_text(data.decode("utf-8", "surrogateescape"), scan_file(path, data), values)


def masked_settings(runtime: dict[str, Any], values: list[str]) -> dict[str, Any]:
    """The runtime settings with what the secret scanner finds in them masked (a token in a
    ``run.command`` argv, a webhook URL): judged as the YAML document they would be."""
    text = yaml.safe_dump(runtime, allow_unicode=True, sort_keys=False)
    masked, where = mask_text(text, scan_file("runtime.yaml", text.encode("utf-8")), values)
    if masked == text:
        return runtime
    loaded = yaml.safe_load(masked)
    return loaded if isinstance(loaded, dict) else {"masked": masking.MASK}
