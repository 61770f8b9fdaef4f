"""One file of a stored version, as it was, secret values masked (docs/design.md, "Preview (the
time machine)", ``--show``).

The path is relative to the task directory and must name a file of the manifest: absolute
paths, ``..``, runtime state and anything the version did not store are bad input. The bytes
come from git's blob at the snapshot's commit and are checked against the manifest's sha256.

Secrets: the file is judged by the snapshot's own scanner (``secrets.files.scan_file``) and
what it finds is masked, never shown: a private-key block from its BEGIN line to its END line
(``secrets.blocks``), a value at a key path of a data file (``configs.redact``, the format
kept), a string literal or assigned value on a flagged line of code or text, token shapes, URL
and command-line credentials anywhere, and the values of the secret environment variables set
here. A file that is a secret as a whole (``id_rsa``, a ``.key``) and a binary file holding a
token shape are refused (exit 3). There is no opt-out: the stored bytes stay in git for whoever
may read the repository, and a preview is what an agent would use to look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tasks_lib.core.errors import BadInput, NotFound, SecretsFound, VerificationFailed
from tasks_lib.core.filenames import shown
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import FileEntry, sha256_hex
from tasks_lib.preview import versionvalues
from tasks_lib.preview.resolve import Resolved
from tasks_lib.secrets import configs, masking
from tasks_lib.secrets.blocks import mask_blocks
from tasks_lib.secrets.commands import mask_commands
from tasks_lib.secrets.files import BINARY_PROBE, SECRET_FILE, scan_file
from tasks_lib.secrets.shapes import token_spans
from tasks_lib.secrets.values import mask_credentials

_LITERAL = re.compile(r"""([rbuRBU]{0,2})("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")
_ASSIGNED = re.compile(r"^(\s*[^=:#]*?[=:]\s*)(\S.*?)(\s*)$")


@dataclass(frozen=True)
class ShownFile:
    path: str            # relative to the task directory
    repo_path: str
    mode: str            # 100644, 100755, 120000
    size: int
    checksum: str
    binary: bool
    masked: tuple[str, ...] = ()     # where values were masked (key paths, lines), never values
    data: bytes = field(default=b"", repr=False)   # what may be shown (masked when text)

    @property
    def symlink(self) -> bool:
        return self.mode == "120000"

    def as_dict(self) -> dict[str, object]:
        text = None if self.binary else self.data.decode("utf-8", "surrogateescape")
        return {"path": self.path, "repo_path": self.repo_path, "mode": self.mode,
                "size": self.size, "checksum": self.checksum, "binary": self.binary,
                "symlink": self.symlink, "masked": list(self.masked),
                ("target" if self.symlink else "text"): text}


def manifest_file(res: Resolved, path: str) -> FileEntry:
    """The manifest's entry for ``path`` (relative to the task directory): BadInput for a path
    that is absolute, climbs with ``..``, is runtime state or is not one of the version's
    files (the message says how to list them)."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise BadInput("--show needs a file path", "give a path relative to the task directory")
    listing = f"list them with `clawback preview --task {res.task_id} --version {res.version}`"
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or path.startswith("-"):
        raise BadInput(f"{shown(path)} is not a path inside the task directory",
                       f"give a path relative to {res.snapshot.location}, e.g. main.py; {listing}")
    rel = "/".join(p for p in pure.parts if p != ".")
    if res.state.matches(rel):
        raise BadInput(f"{shown(path)} is runtime state of {res.task_id}: no version stores it",
                       f"runtime state is never snapshotted; {listing}")
    by_path = {f.path: f for f in res.snapshot.files}
    found = by_path.get(f"{res.snapshot.location}/{rel}")
    if found is None:
        raise NotFound(f"{res.tag} has no file {shown(path)}", listing)
    return found


def show(ws: Workspace, res: Resolved, path: str) -> ShownFile:
    """``path`` as version ``res`` stored it, masked as the module docstring says."""
    entry = manifest_file(res, path)
    data = ws.git.show_file(res.snapshot.git_commit, entry.path)
    if data is None or sha256_hex(data) != entry.checksum:
        raise VerificationFailed(f"{shown(entry.path)} at {res.snapshot.git_commit[:12]} does not "
                                 "match the manifest's checksum",
                                 f"run `clawback verify-snapshot --task {res.task_id} --version "
                                 f"{res.version}`")
    rel = res.rel(entry.path)
    symlink = entry.mode == "120000"
    findings = scan_file(entry.path, data, symlink=symlink)
    binary = not symlink and b"\0" in data[:BINARY_PROBE]
    whole = [f for f in findings if f.kind == SECRET_FILE or f.note in ("binary content",
                                                                         "symlink target")]
    if whole:
        raise SecretsFound(f"{shown(rel)} at {res.version} holds a secret "
                           f"({whole[0].note or whole[0].kind}): not shown",
                           paths=[entry.path],
                           hint="a preview never shows a secret value; read the file's other "
                                "facts with `clawback preview` (size, checksum)")
    shown_data, where = data, ()
    if not binary:
        # the version's own secrets (its config, registry entry, runtime settings) wherever
        # they appear: the same set the summary masks
        values = versionvalues.version_values(ws, res)
        text, where = mask_text(data.decode("utf-8", "surrogateescape"), findings, values)
        shown_data = text.encode("utf-8", "surrogateescape")
    return ShownFile(rel, entry.path, entry.mode, entry.size, entry.checksum, binary,
                     where, shown_data)


def mask_text(text: str, findings: list, values: list[str]) -> tuple[str, tuple[str, ...]]:
    """``text`` with what the findings locate masked, then token shapes, credential URLs and
    the secret environment values set here; the places masked (never the values)."""
    where: list[str] = []
    masked_blocks = mask_blocks(text)  # a private key's body is no line the scan names
    if masked_blocks != text:
        text = masked_blocks
        where.append("private-key blocks")
    keys = [configs.Finding(f.key, f.kind) for f in findings if f.key is not None]
    if keys:
        text = configs.redact(text, keys)
        where += [f"at {k.path}" for k in keys]
    lines = sorted({f.line for f in findings if f.key is None and f.line is not None})
    if lines:
        split = text.splitlines(keepends=True)
        for n in lines:
            if 1 <= n <= len(split):
                split[n - 1] = _mask_line(split[n - 1])
        text = "".join(split)
        where += [f"line {n}" for n in lines]
    for start, end in reversed(list(token_spans(text))):
        text = text[:start] + masking.MASK + text[end:]
    before = text
    text = mask_commands(masking.mask(mask_credentials(text), values=values))
    if text != before and not where:
        where.append("values of secret environment variables or credentials in URLs")
    return text, tuple(where)


def _mask_line(line: str) -> str:
    """A flagged line with its string literals masked, or else the value after its first
    ``=`` or ``:``."""
    body = line.rstrip("\r\n")
    ending = line[len(body):]
    if _LITERAL.search(body):
        return _LITERAL.sub(lambda m: f'{m.group(1)}"{masking.MASK}"', body) + ending
    m = _ASSIGNED.match(body)
    if m:
        return m.group(1) + masking.MASK + m.group(3) + ending
    return masking.MASK + ending
