"""Credentials passed on a command line: where they are in a command string, a script's line or
an argv written as code, found by the tool's own flags (docs/design.md "Secrets").

A flag means a password only for the tools that take one there, so ``-p 8080`` (a port, a
path, a database name) is never taken for one:

- an environment assignment before the command: ``PGPASSWORD=… psql``, ``MYSQL_PWD=…``,
  ``REDISCLI_AUTH=…``, ``SSHPASS=…`` (and any credential-named ``NAME=value``: names.py);
- ``mysql``/``mariadb`` and their tools: ``-pVALUE`` glued (``-p VALUE`` is a prompt and a
  database name), ``--password=VALUE``; ``sshpass -p VALUE``; ``redis-cli -a VALUE`` /
  ``--pass VALUE``; the ``mongo`` tools' ``-p VALUE``;
- ``-u user:VALUE`` / ``--user user:VALUE`` / ``--proxy-user`` (curl and the like; another
  tool's ``-u`` only with a value mixing letters and digits, so ``-u app:staff`` stays);
- ``--password VALUE`` / ``--token=VALUE`` (a credential-named long flag, any tool);
- ``docker``/``podman login -p VALUE`` (``--password VALUE``: the named long flag below);
  ``ldapsearch`` and its kin's ``-w VALUE`` (``-W`` prompts); ``smbclient -U user%VALUE``;
  ``zip``/``unzip -P VALUE``;
- ``Authorization: Bearer VALUE`` (any scheme) and a bare ``Bearer VALUE``; an
  ``X-Api-Key: VALUE`` / ``api-key:`` / ``X-Auth-Token:`` / ``Private-Token:`` header (a value
  mixing letters and digits: prose after ``api-key:`` is not one).

References (``-p"$PW"``, ``${TOKEN}``), placeholders and values under 4 characters are not
credentials. ``credential_spans`` returns offsets only, so a caller never holds the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tasks_lib.secrets.logical import logical
from tasks_lib.secrets.names import name_class
from tasks_lib.secrets.values import is_file_path, is_plaintext

__all__ = ["Span", "argv_hits", "credential_spans", "mask_commands", "values_in"]

MASK = "***"
_VAL = r"(?P<q>[\"']?)(?P<val>[^\s\"'`\\;|&<>(){}\[\],]+)"
# what joins a flag to its value: blanks, `=`, or the `", "` of an argv written as a list
_SEP = r"(?:[ \t]+|=|[\"'][ \t]*,[ \t]*)"
_SEGMENT = r"[^\n|;&]*?"  # the rest of the same command (not past a pipe or `;`)
_BEFORE = r"(?<![\w\-.])"


@dataclass(frozen=True)
class Span:
    """A credential's value at ``start:end`` of the text, passed with ``name`` (a flag) in the
    command that starts at ``at`` (a flag on one line, its value on the next: at < start)."""

    start: int
    end: int
    name: str
    at: int = -1


_MYSQL = r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlsh|mariadb|mariadb-dump|mariadb-admin)\b"
_MONGO = r"\b(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop)\b"
_REDIS = r"\b(?:redis-cli|redis-benchmark|keydb-cli|valkey-cli)\b"
_DOCKER = r"\b(?:docker|podman|nerdctl)\b"
_LDAP = r"\bldap(?:search|modify|add|delete|whoami|passwd|compare|modrdn|exop|url)\b"
_SMB = r"\b(?:smbclient|rpcclient|smbcacls|smbget|smbtree|smbmap)\b"
_CURLISH = frozenset({"curl", "wget", "http", "https", "httpie", "lftp", "xh"})

# (words one of which the lower-cased text must hold, pattern, name, mixed): the words keep a
# text without the tool from costing a regular-expression pass; `mixed` wants letters and
# digits in the value (a looser context)
_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], str, bool], ...] = (
    (("mysql", "mariadb"), re.compile(rf"{_MYSQL}{_SEGMENT}{_BEFORE}[\"']?-p{_VAL}"), "-p", False),
    (("sshpass",), re.compile(rf"\bsshpass{_SEGMENT}{_BEFORE}[\"']?-p(?:{_SEP})?{_VAL}"), "-p",
     False),
    (("mongo",), re.compile(rf"{_MONGO}{_SEGMENT}{_BEFORE}[\"']?-p{_SEP}{_VAL}"), "-p", False),
    (("redis-", "keydb-", "valkey-"),
     re.compile(rf"{_REDIS}{_SEGMENT}{_BEFORE}[\"']?(?:-a|--pass){_SEP}{_VAL}"), "-a", False),
    (("docker", "podman", "nerdctl"),
     re.compile(rf"{_DOCKER}[ \t\"',]+login\b{_SEGMENT}{_BEFORE}[\"']?-p{_SEP}{_VAL}"), "-p", False),
    (("ldap",), re.compile(rf"{_LDAP}{_SEGMENT}{_BEFORE}[\"']?-w{_SEP}{_VAL}"), "-w", False),
    (("smb", "rpcclient"), re.compile(rf"{_SMB}{_SEGMENT}{_BEFORE}[\"']?(?:-U|--user){_SEP}?"
                                      rf"[\"']?[^\s%\"'@]+%{_VAL}"), "user:password", False),
    (("zip",), re.compile(rf"\b(?:zip|unzip|zipcloak){_SEGMENT}{_BEFORE}[\"']?-P{_SEP}{_VAL}"), "-P",
     False),
    (("key", "token"), re.compile(r"(?i)(?<![\w\-])(?:x-)?(?:api[-_]?key|auth[-_]token|access[-_]token"
                                  r"|private[-_]token)[ \t]*:[ \t]*" + _VAL), "api key", True),
    (("authoriz",), re.compile(r"(?i)(?<![\w\-])(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*"
                               r"(?:(?:bearer|basic|token|bot|digest|apikey|sso-key)[ \t]+)?"
                               + _VAL), "Authorization", False),
    (("bearer",), re.compile(r"(?i)(?<![\w\-])bearer[ \t]+(?P<q>)(?P<val>[A-Za-z0-9._~+/=\-]{12,})"),
     "Bearer", True),
)
# a credential-named flag or variable holds one of these (names.py's words)
_NAMED = ("pass", "pwd", "token", "secret", "auth", "key", "cred", "cookie", "hook", "dsn",
          "bearer")
_USER_PASS = re.compile(rf"{_BEFORE}[\"']?(?:-u|--user|--proxy-user|-U){_SEP}?[\"']?"
                        r"(?P<user>[^\s:\"'@/]+):(?P<q>)(?P<val>[^\s\"'@\\;|&]+)")
_LONG_FLAG = re.compile(rf"(?<![\w\-])--(?P<flag>[A-Za-z][\w\-]{{1,40}}){_SEP}{_VAL}")
_ENV_ASSIGN = re.compile(rf"(?<![\w$.\-])(?P<flag>[A-Za-z_][A-Za-z0-9_]{{1,63}})={_VAL}")
_REFERENCE = re.compile(r"\$|%[A-Za-z_]+%|\{\{|<[^<>]*>\Z")
_WORDS = frozenset({"password", "passwd", "secret", "token", "prompt", "stdin", "none", "null",
                    "true", "false", "required", "optional", "env", "file", "ask", "askpass"})


def _value_ok(value: str, *, mixed: bool, user: str | None = None) -> bool:
    """A literal credential: long enough, no reference or placeholder, not a path or a flag."""
    if len(value) < 4 or value.startswith("-") or value == user or value.lower() in _WORDS:
        return False
    if _REFERENCE.search(value) or not is_plaintext(value) or is_file_path(value):
        return False
    if mixed:
        return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    return True


def _tool_before(text: str, pos: int) -> str:
    """The command word that starts the command ``pos`` is in (``curl`` of ``curl -u …``)."""
    line_start = max(text.rfind("\n", 0, pos), text.rfind("|", 0, pos), text.rfind(";", 0, pos))
    head = text[line_start + 1:pos].lstrip(" \t\"'[(")
    while True:  # skip `VAR=x` prefixes and `env`, `sudo`, `exec`
        m = re.match(r"(?:[A-Za-z_]\w*=\S*|env|sudo|exec|command|time|nohup)[\"']?[ \t,\"']+", head)
        if m is None:
            break
        head = head[m.end():]
    m = re.match(r"(?:[\w.\-]*/)*(?P<tool>[A-Za-z][\w.\-]*)", head)
    return m.group("tool").lower() if m else ""


def credential_spans(text: str) -> list[Span]:
    """Where command-line credentials are in ``text`` (offsets of the values), in order. A
    command written over several lines (a ``\\`` continuation, a multi-line argv list, adjacent
    string literals) is judged whole (logical.py); a value split by a line break comes back as
    one span per physical part."""
    if not text or not any(mark in text for mark in ("-", "=", "uthoriz", "earer", "EARER")):
        return []
    joined = logical(text)
    if not joined.pieces:
        return _spans(text)
    return [Span(start, end, s.name, next(joined.physical(s.at, s.at + 1), (start, 0))[0])
            for s in _spans(joined.text) for start, end in joined.physical(s.start, s.end)]


def _spans(text: str) -> list[Span]:
    spans: list[Span] = []
    lower = text.lower()
    for words, pattern, name, mixed in _RULES:
        if not any(w in lower for w in words):
            continue
        for m in pattern.finditer(text):
            if _value_ok(m.group("val"), mixed=mixed):
                spans.append(Span(m.start("val"), m.end("val"), name, m.start()))
    if "-u" in text or "--user" in text or "--proxy-user" in text or "-U" in text:
        for m in _USER_PASS.finditer(text):
            curlish = _tool_before(text, m.start()) in _CURLISH
            if _value_ok(m.group("val"), mixed=not curlish, user=m.group("user")):
                spans.append(Span(m.start("val"), m.end("val"), "user:password", m.start()))
    named = any(w in lower for w in _NAMED)
    if named and "--" in text:
        for m in _LONG_FLAG.finditer(text):
            if name_class(m.group("flag")) == "secret" and _value_ok(
                    m.group("val"), mixed=text[m.end("flag")] != "="):
                spans.append(Span(m.start("val"), m.end("val"), "--" + m.group("flag"), m.start()))
    if named and "=" in text:
        for m in _ENV_ASSIGN.finditer(text):
            if name_class(m.group("flag")) == "secret" and _value_ok(m.group("val"), mixed=False):
                spans.append(Span(m.start("val"), m.end("val"), m.group("flag"), m.start()))
    return _disjoint(spans)


def _disjoint(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def mask_commands(text: str) -> str:
    """``text`` with every command-line credential value replaced by ``***``."""
    for s in reversed(credential_spans(text)):
        text = text[:s.start] + MASK + text[s.end:]
    return text


def argv_hits(items: Sequence[object]) -> list[int]:
    """The indices of an argv (a list of strings) that hold a command-line credential, judged
    as the command line they make (``["redis-cli", "-a", "…"]``)."""
    if len(items) < 2 or not all(isinstance(i, str) for i in items):
        return []
    starts, pos = [], 0
    for item in items:
        starts.append(pos)
        pos += len(item) + 1
    joined = " ".join(items)  # type: ignore[arg-type]
    hit: set[int] = set()
    for s in credential_spans(joined):
        for i, start in enumerate(starts):
            if start <= s.start < start + len(items[i]) + 1:  # type: ignore[arg-type]
                hit.add(i)
    return sorted(hit)


def values_in(texts: Iterable[str]) -> set[str]:
    """The credential values themselves (for masking them wherever else they appear)."""
    return {t[s.start:s.end] for t in texts for s in credential_spans(t)}
