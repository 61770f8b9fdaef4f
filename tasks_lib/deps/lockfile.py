r"""A task's dependency lock: an exact, resolved package set in requirements format (docs/design.md,
"What a snapshot guarantees", Dependencies).

``Lock.from_text`` reads what ``uv pip compile --generate-hashes`` writes (or a lock pinned by
hand): comment and blank lines are dropped, names are PEP 503 normalised, and any option but ``-e``
and a per-requirement ``--hash`` is refused, since uv would follow it when the lock is restored.
A requirement itself is read by ``packaging`` (PEP 508: name, extras, version specifiers or a
direct URL, markers); only pip's file format (comments, ``\`` continuations, ``-e``, ``--hash``)
is handled here. An entry is the canonical name with packaging's spelling of the specifier
(``Foo_Bar >= 1.0, < 2`` is ``foo-bar<2,>=1.0``) or ``name @ url``; extras and markers are not
part of it (the lock is resolved for this interpreter already).
``freeze_entry`` puts a ``pip freeze`` line into the same form, so an environment's installed
set compares equal to the lock it was synced to. ``credential_entries`` names the entries whose
URL carries a credential (``pkg @ https://user:token@host/...``: uv writes a direct URL into the
lock as it was given), so a new lock holding one is refused before it is stored anywhere.
Messages quote lock lines with URL credentials masked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from tasks_lib.core.errors import MalformedFile
from tasks_lib.secrets.values import has_credential_url, mask_credentials

if TYPE_CHECKING:
    # imported where a requirement is read: packaging's PEP 508 grammar (markers, specifiers,
    # their tokenizer's regexes) is ~25 ms of imports that diff and the hooks, which read no
    # requirement, would pay at every start
    from packaging.requirements import Requirement

__all__ = ["Lock", "credential_entries", "entry_name", "freeze_entry", "normalize"]


def normalize(name: str) -> str:
    """PEP 503 normalised project name (``packaging.utils.canonicalize_name``)."""
    return canonicalize_name(name)


_EDITABLE = ("-e", "--editable")
_HASH = re.compile(r"--hash[=\s]+[A-Za-z0-9]+:[0-9A-Za-z]+")  # pip's option, not a requirement
_HINT = ("a lock holds `name==version` (or `name @ url`) lines, each with its --hash options; "
         "fix or remove that line, or lock the requirements again")


def _kept_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines a lock keeps: comments and blanks dropped, each line
    right-stripped."""
    return [(n, raw.rstrip())
            for n, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)
            if raw.strip() and not raw.lstrip().startswith("#")]


def _canonical_text(text: str) -> str:
    """The stored form: comment and blank lines dropped, lines right-stripped, ``\\n`` ends."""
    return "".join(line + "\n" for _, line in _kept_lines(text))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, requirements-file line) with backslash continuations joined; the
    numbers are those of ``text`` as given (comments and blanks counted)."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for n, line in _kept_lines(text):
        start = start or n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, (pending + line).strip()))
        pending, start = "", 0
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _shown(line: str) -> str:
    """A lock line for a message: credentials in URLs masked, at most 80 characters."""
    return repr(mask_credentials(line)[:80])


def _parse_entry(n: int, line: str) -> tuple[str, bool]:
    """Logical lock line ``n`` -> (package entry, has a hash)."""
    tokens = line.split()
    if tokens[0] in _EDITABLE or tokens[0].startswith("--editable="):
        if tokens[0].startswith("--editable="):
            target = tokens[0].split("=", 1)[1]
        else:
            target = tokens[1] if len(tokens) > 1 else ""
        if not target:
            raise MalformedFile(f"lock line {n} has no target: {_shown(line)}", _HINT)
        return f"-e {target}", False
    if tokens[0].startswith("-"):
        # only requirement lines with per-requirement --hash options belong in a lock: an
        # option like -r/-c/--index-url in a stored lock would be followed by uv at restore
        raise MalformedFile(f"unexpected option in lock line {n}: {tokens[0][:40]!r}", _HINT)
    first = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    spec, options = " ".join(tokens[:first]), tokens[first:]
    for opt in options:
        if opt.startswith("-") and opt.split("=", 1)[0] != "--hash":
            raise MalformedFile(f"unexpected option in lock line {n}: {opt[:40]!r}", _HINT)
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        why = mask_credentials(str(exc).splitlines()[0]) if str(exc) else "not PEP 508"
        raise MalformedFile(f"unreadable lock line {n} ({why}): {_shown(line)}", _HINT) from None
    return _entry(req), bool(_HASH.search(" ".join(options)))


def entry_name(entry: str) -> str:
    """What an entry (a lock's or :func:`freeze_entry`'s) is compared by: its canonical project
    name; an editable, or a line that is no requirement, by the whole entry."""
    if entry.startswith("-e "):
        return entry
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return canonicalize_name(Requirement(entry).name)
    except InvalidRequirement:
        return entry


def _entry(req: Requirement) -> str:
    name = canonicalize_name(req.name)
    return f"{name} @ {req.url}" if req.url else name + str(req.specifier)


@dataclass(frozen=True)
class Lock:
    """An exact, resolved set of packages in requirements format (hashes where available)."""

    text: str
    packages: tuple[str, ...]
    digest: str

    @classmethod
    def from_text(cls, text: str) -> Lock:
        """Parse a lock (with or without hashes); comments and blank lines are dropped."""
        if not isinstance(text, str):
            raise MalformedFile("a lock must be text")
        canonical = _canonical_text(text)
        packages = sorted(_parse_entry(n, line)[0] for n, line in _logical_lines(text))
        digest = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return cls(text=canonical, packages=tuple(packages), digest=digest)

    @classmethod
    def empty(cls) -> Lock:
        return cls.from_text("")

    @property
    def digest_hex(self) -> str:
        return self.digest.split(":", 1)[1]

    @property
    def is_empty(self) -> bool:
        return not self.packages

    @property
    def hashed(self) -> bool:
        """True when every entry carries a hash (so ``--require-hashes`` can be used)."""
        entries = [_parse_entry(n, line) for n, line in _logical_lines(self.text)]
        return bool(entries) and all(has for _, has in entries)


def credential_entries(lock: Lock) -> tuple[str, ...]:
    """The entries (package name, or ``-e`` for an editable) whose URL holds a credential:
    ``user:password@``, a token as the user, a secret query parameter. ``${NAME}`` references
    are not credentials: uv keeps them as written and expands them when it installs."""
    found: list[str] = []
    for entry in lock.packages:
        if "://" in entry and has_credential_url(entry):
            name = "-e" if entry.startswith("-e ") else entry.split(" @ ", 1)[0]
            found.append(name)
    return tuple(dict.fromkeys(found))


def freeze_entry(line: str) -> str:
    """A ``pip freeze`` line in the lock's package form (``name==version``, ``name @ url``)."""
    if line.startswith(_EDITABLE):
        return line
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return _entry(Requirement(line))
    except InvalidRequirement:
        return line
