"""What a stored version is, at a glance (docs/design.md, "Preview (the time machine)"): its
files with sizes (from the manifest), its config as git holds it at the snapshot's commit with
secret values masked, its dependencies, runtime settings and environment variable names, its
stable / quarantined mark (the live registry's ``snapshots[]`` records), and when, who and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks_lib.core.workspace import Workspace
from tasks_lib.preview import versionvalues
from tasks_lib.preview.resolve import Resolved, marks
from tasks_lib.preview.show import mask_text
from tasks_lib.secrets import configs, masking
from tasks_lib.secrets.configs import _join as join_key  # the findings' own path spelling
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
    config_file = versionvalues.config_file(res)
    raw = versionvalues.config_bytes(ws, res, config_file)
    # a value found secret anywhere in the version (its config, stored registry entry, runtime
    # settings) is masked wherever else the summary shows it: text, file names, the message
    values = versionvalues.version_values(ws, res, raw)
    files = tuple(PreviewFile(versionvalues.mask_path(res.rel(f.path), values), f.size, f.mode)
                  for f in snap.files)
    text, where = _config(res, config_file, raw, values)
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


def _config(res: Resolved, config_file: str, raw: tuple[str, bytes] | None,
            values: list[str]) -> tuple[str | None, tuple[str, ...]]:
    if raw is None:
        return None, ()
    mode, data = raw
    if mode == "120000":
        return f"(a symlink to {data.decode('utf-8', 'surrogateescape')})", ()
    path = f"{res.snapshot.location}/{config_file}"
    return mask_text(data.decode("utf-8", "surrogateescape"), scan_file(path, data), values)


def masked_settings(runtime: dict[str, Any], values: list[str]) -> dict[str, Any]:
    """The runtime settings with what the secret scanner finds in them masked (a token in a
    ``run.command`` argv, ``PGPASSWORD=… psql`` in ``smoke``, a webhook URL): a value at a
    path the scan flags is ``***``; every other string is masked as text (``values``, blocks,
    token shapes, URL and command-line credentials)."""
    secret = {f.path for f in configs.scan(runtime)}

    def walk(data: Any, path: str) -> Any:
        if path and any(path == s or path.startswith((s + ".", s + "[")) for s in secret):
            return masking.MASK
        if isinstance(data, dict):
            return {k: walk(v, join_key(path, k)) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(data)]
        if isinstance(data, str):
            return mask_text(data, [], values)[0]
        return data

    shown = walk(runtime, "")
    return shown if isinstance(shown, dict) else {"masked": masking.MASK}
