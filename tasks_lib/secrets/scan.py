"""The secret check of a snapshot and of the pre-commit hook (docs/design.md, "Secrets").

Every file the commit would hold is scanned (``secret_files.scan_file``): for a snapshot the
task's versioned files as they are on disk (symlinks as their target, as git stores them), for
the hook the staged blobs of active tasks' locations; plus the task's registry entry
(``secrets.scan_entry``). Findings are then judged against ``--allow-secret`` spellings
(docs/design.md "Secrets"):

- a config key path, as before: ``data_sources.tushare.token`` (the task's config file);
- ``registry.<key path>``: the task's registry entry;
- ``FILE:NAME`` (a variable or key named on the line), ``FILE:KEY.PATH`` (a data file),
  ``FILE:LINE``, or ``FILE`` for the whole file; FILE relative to the task directory or to the
  workspace (``fetch.py:TUSHARE_TOKEN``, ``tasks/T01/fetch.py:12``).

The refusal (SecretsFound, exit 3) lists files with key paths or lines and prints the spelling
that allows each finding; a credential where a variable name belongs cannot be allowed.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from tasks_lib.core.errors import MalformedFile, SecretsFound
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.formats import config
from tasks_lib.secrets import configs as secrets
from tasks_lib.secrets import masking
from tasks_lib.secrets.files import (
    FULL_SCAN_LIMIT,
    SECRET_FILE,
    FileFinding,
    scan_file,
    scan_stream,
)
from tasks_lib.secrets.lines import scan_text
from tasks_lib.secrets.shapes import credential_name_error

__all__ = ["Reported", "judge", "scan_blobs", "scan_task"]


@dataclass(frozen=True)
class Reported:
    """One finding as the user sees it: ``label`` in messages, ``spelling`` for
    ``--allow-secret``; ``accepts`` holds every spelling that allows it. No value, by design."""

    label: str
    spelling: str
    accepts: frozenset[str]
    kind: str
    file: str
    key: str | None = None       # a key path in a data file (for the hint's example)
    name: str | None = None      # a variable named in code (for the hint's example)
    allowable: bool = True
    whole: str | None = None     # the spelling that allows the whole file


def _rel(task: Task, path: str) -> str:
    loc = (task.location or "").rstrip("/")
    return path[len(loc) + 1:] if loc and path.startswith(loc + "/") else path


def report(f: FileFinding, task: Task) -> Reported:
    """How a file finding is shown and allowed."""
    rel, full = _rel(task, f.file), f.file
    whole = {rel, full}
    is_config = full == task.config_path
    if f.key is not None:
        accepts = {f"{rel}:{f.key}", f"{full}:{f.key}", *whole}
        if is_config:
            accepts.add(f.key)
        spelling = f.key if is_config else f"{rel}:{f.key}"
    elif f.line is not None and f.cell is None:
        accepts = {f"{rel}:{f.line}", f"{full}:{f.line}", *whole}
        spelling = f"{rel}:{f.line}"
        if f.name:
            accepts |= {f"{rel}:{f.name}", f"{full}:{f.name}"}
            spelling = f"{rel}:{f.name}"
    elif f.name:
        accepts = {f"{rel}:{f.name}", f"{full}:{f.name}", *whole}
        spelling = f"{rel}:{f.name}"
    else:
        accepts, spelling = whole, rel
    allowable = f.kind != secrets.CREDENTIAL_AS_NAME
    return Reported(str(f), spelling, frozenset(accepts), f.kind, full, f.key, f.name, allowable,
                    whole=rel)


def value_findings(path: str, data: bytes, known: list[tuple[str, str]]) -> list[FileFinding]:
    """The values of set secret variables (``known``: (name, value)) found in ``data``, by line:
    whatever the spelling around it, the credential itself is there. Never the value."""
    out = []
    for name, value in known:
        if len(value) < MIN_VALUE_CHARS:
            continue  # a short value ("test") would be found in any file by chance
        raw = value.encode("utf-8", "surrogateescape")
        at = data.find(raw)
        if at >= 0:
            out.append(FileFinding(path, VALUE_KIND, line=data.count(b"\n", 0, at) + 1,
                                   name=f"the value of ${name}"))
    return out


VALUE_KIND = "secret-value"
MIN_VALUE_CHARS = 8


def _scan_path(root: str, path: str, task: Task,
               known: list[tuple[str, str]] = ()) -> list[FileFinding]:
    """Findings in what git would commit for ``path``: the file's bytes (a file over the
    full-scan limit streamed in blocks, never read whole), or a symlink's target (never what it
    points at: a link to /dev/zero or to ~/.aws/credentials is a short path to git)."""
    full = os.path.join(root, path)
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            return scan_file(path, os.fsencode(os.readlink(full)), symlink=True)
        if not stat.S_ISREG(st.st_mode):
            return []  # a submodule, a directory: no content of its own
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:  # swapped for a FIFO since the lstat: never blocks
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            if st.st_size > FULL_SCAN_LIMIT:
                return scan_stream(path, fh)
            data = fh.read()
    except OSError:
        return []  # gone or unreadable: git cannot commit it either
    found = _config_findings(task, data) if path == task.config_path else scan_file(path, data)
    return found + [v for v in value_findings(path, data, known)
                    if not any(f.line == v.line for f in found)]


def _config_findings(task: Task, data: bytes) -> list[FileFinding]:
    """The config is scanned as before: invalid YAML is MalformedFile (exit 2), not skipped."""
    config.load(data.decode("utf-8", "replace"), task.config_path)
    return scan_file(task.config_path, data)


def scan_task(ws: Workspace, task: Task, paths: Iterable[str], message: str = "") -> list[Reported]:
    """Findings in the files at ``paths`` (repo-relative, as on disk), the registry entry and
    the snapshot's ``message`` (it becomes the commit message, the tag's and the audit log's)."""
    found: list[Reported] = []
    for hit in scan_text(message):
        found.append(Reported(f"the snapshot message (line {hit.line})", "", frozenset(),
                              hit.kind, "", allowable=False))
    root = os.fspath(ws.root)
    known = masking.secret_items(names=masking.declared_names(ws.root))
    for path in paths:
        found += [report(f, task) for f in _scan_path(root, path, task, known)]
    for f in secrets.scan_entry(task.entry):
        spelling = f"registry.{f.path}"
        found.append(Reported(f"task_registry.json ({task.id}'s entry) at {f.path}", spelling,
                              frozenset({spelling}), f.kind, "task_registry.json", f.path,
                              allowable=f.kind != secrets.CREDENTIAL_AS_NAME))
    entry_text = json.dumps(task.entry, ensure_ascii=False).encode("utf-8", "surrogateescape")
    for name, value in known:  # a set secret's value in the entry (a smoke argv, a note ...)
        if len(value) >= MIN_VALUE_CHARS and value.encode("utf-8", "surrogateescape") in entry_text:
            found.append(Reported(f"task_registry.json ({task.id}'s entry) holds the value of "
                                  f"${name}", "", frozenset(), VALUE_KIND, "task_registry.json",
                                  allowable=False))
    return found


def scan_blobs(task: Task, blobs: Iterable[tuple[str, str, bytes]],
               known: list[tuple[str, str]] | None = None) -> list[FileFinding]:
    """Findings in staged content: ``(path, mode, bytes)``; mode 120000 is a symlink.
    ``known``: the set secret variables whose values are looked for too (default: the
    environment's secret-looking ones)."""
    known = masking.secret_items() if known is None else known
    out: list[FileFinding] = []
    for path, mode, data in blobs:
        out += value_findings(path, data, known)
        if mode == "160000":
            continue
        if path == task.config_path and mode != "120000":
            try:
                out += _config_findings(task, data)
            except MalformedFile:
                out += scan_file(path, data)  # still scanned; the commands report the YAML
        else:
            out += scan_file(path, data, symlink=mode == "120000")
    return out


# --------------------------------------------------------------------------- judge


def judge(found: list[Reported], task_id: str, allowed: Iterable[str], *,
          adopt: bool = False) -> tuple[str, ...]:
    """Raise SecretsFound for findings no ``allowed`` spelling keeps (adopt: warn only), and
    for any credential where a name belongs; return the warnings."""
    allow = {a.strip() for a in allowed if isinstance(a, str)}
    for r in found:
        if r.allowable:
            continue
        if r.kind == secrets.CREDENTIAL_AS_NAME:
            raise credential_name_error(r.label)
        if r.kind == VALUE_KIND:
            raise SecretsFound(f"{task_id}: {r.label}", paths=[r.label],
                               hint="the registry is committed: refer to the variable by name "
                                    "(${NAME} in the config, environment_variables in the entry), "
                                    "never its value; if it was ever committed, rotate it")
        raise SecretsFound(f"{task_id}: {r.label} holds what looks like a credential",
                           paths=[r.label], hint="write the message without it (it is stored in "
                           "the commit, the tag and the audit log); if it is a real credential, "
                           "rotate it")
    if adopt:
        return tuple(f"{task_id}: plaintext secret in {r.label} (move it to an environment "
                     "variable)" for r in found)
    remaining = [r for r in found if not (r.accepts & allow)]
    if remaining:
        raise _refusal(task_id, remaining)
    used = {a for a in allow if any(a in r.accepts for r in found)}
    warnings = [f"{task_id}: plaintext secret in {r.label} allowed by --allow-secret" for r in found]
    warnings += [f"{task_id}: --allow-secret {a} matched no finding" for a in sorted(allow - used)]
    return tuple(warnings)


def _quoted(spelling: str) -> str:
    return shlex.quote(spelling)


def _refusal(task_id: str, remaining: list[Reported]) -> SecretsFound:
    spellings = list(dict.fromkeys(r.spelling for r in remaining))
    shown = "; ".join(r.label for r in remaining[:8])
    more = f" (and {len(remaining) - 8} more)" if len(remaining) > 8 else ""
    label = "secret" if len(remaining) == 1 else "secrets"
    message = f"{task_id}: plaintext {label} in what the snapshot would commit: {shown}{more}"
    return SecretsFound(message, paths=spellings, hint=_hint(remaining, spellings))


def _hint(remaining: list[Reported], spellings: list[str]) -> str:
    parts: list[str] = []
    keys = [r.key for r in remaining if r.key is not None and r.file != "task_registry.json"]
    if keys or any(r.file == "task_registry.json" for r in remaining):
        examples = [secrets.reference_example(k) for k in keys[:3]]
        parts.append("in a config or data file, write a reference instead of the value"
                     + (": " + "; ".join(examples) if examples else " (`token: ${NAME}`)"))
    names = [r.name for r in remaining if r.name and r.key is None]
    if any(r.kind != SECRET_FILE and r.key is None for r in remaining):
        var = next((n for n in names if n.isupper()), "TUSHARE_TOKEN")
        parts.append(f'in code, read it from the environment: `{var} = os.environ["{var}"]`')
    if any(r.kind == SECRET_FILE or r.file.rsplit("/", 1)[-1].lower().startswith(".env")
           for r in remaining):
        parts.append("keep credential files out of git: list them in .gitignore (init's template "
                     "ignores `.env`, `.env.local`, `.env.*.local`) and load them where the task "
                     "runs")
    if any(r.file.rsplit("/", 1)[-1].lower().startswith("requirements") for r in remaining):
        parts.append("for a package index or a package URL, give uv the credentials outside the "
                     "file: a netrc entry, keyring, or UV_INDEX_URL / UV_INDEX with "
                     "UV_INDEX_<NAME>_USERNAME / _PASSWORD in the environment")
    allow = ", ".join(f"`--allow-secret {_quoted(s)}`" for s in spellings[:6])
    files = [r.whole for r in remaining if r.whole and r.spelling != r.whole]
    whole = f"; a whole file: `--allow-secret {_quoted(files[0])}`" if files else ""
    return (
        "; ".join(parts)
        + ". Set the variable where the task is started and list its name under"
        " `environment_variables:` in the config (names only, never values). If a value was ever"
        f" committed, rotate it. To keep one as it is, pass (once per finding) {allow}{whole}."
    )
