"""One file's change between two sides: line counts and a unified diff whose every line is masked.

The secret detectors the snapshot uses (tasks_lib/secrets/files.py: code line by line, data files
by key path, ``.env``-like files, whole key files) run over each side's content; a line they
point at shows its name and ``***`` instead of the value, a data file's value at a secret key
path is replaced as ``secrets.configs.redact`` does, a file whose name says it is a key shows no
content at all; a private-key block is masked from its BEGIN line to its END line. Every shown
line also has the values found secret elsewhere in the same diff, issuer token shapes, URL and
command-line credentials masked, and control characters escaped (a file cannot move the
terminal's cursor). Binary content (a NUL in the first 8 KiB, or not UTF-8) is named, never
shown; a symlink is compared by its target. docs/design.md, "Diff".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from tasks_lib.secrets import configs, files
from tasks_lib.secrets.blocks import mask_blocks
from tasks_lib.secrets.commands import mask_commands, values_in
from tasks_lib.secrets.shapes import has_token, token_spans
from tasks_lib.secrets.values import mask_credentials

MASK = "***"
MAX_DIFF_BYTES = 2 * 1024 * 1024   # a side larger than this is counted by size, not diffed
CONTEXT = 3


@dataclass(frozen=True)
class FileDiff:
    path: str                  # repo-relative (the newer side's location)
    status: str                # added | removed | changed
    old_mode: str | None
    new_mode: str | None
    binary: bool = False
    added: int = 0             # lines
    removed: int = 0
    lines: tuple[str, ...] = ()    # the unified diff's hunks, masked
    old_target: str | None = None  # a symlink's target, masked
    new_target: str | None = None
    old_size: int | None = None
    new_size: int | None = None
    note: str = ""

    def without_lines(self) -> FileDiff:
        return replace(self, lines=())


@dataclass(frozen=True)
class _Text:
    lines: list[str]           # as diffed (the raw lines)
    shown: list[str]           # as shown (masked, escaped)
    hidden: str = ""           # why no line of it may be shown


def compare(path: str, old: tuple[str, bytes] | None, new: tuple[str, bytes] | None,
            values: tuple[str, ...] = ()) -> FileDiff:
    """``old``/``new``: (git mode, content) of each side, None where the file is absent;
    ``values``: secret values found elsewhere in the same diff (masked wherever they appear)."""
    status = "added" if old is None else "removed" if new is None else "changed"
    omode, odata = old if old is not None else (None, None)
    nmode, ndata = new if new is not None else (None, None)
    base = FileDiff(path, status, omode, nmode, old_size=_size(odata), new_size=_size(ndata))
    if (omode == "120000") or (nmode == "120000"):
        return replace(base, old_target=_target(path, omode, odata, values),
                       new_target=_target(path, nmode, ndata, values))
    if max(len(odata or b""), len(ndata or b"")) > MAX_DIFF_BYTES:
        return replace(base, note=f"larger than {MAX_DIFF_BYTES // (1024 * 1024)} MiB: not diffed")
    a, b = _text(path, odata, values), _text(path, ndata, values)
    if a is None or b is None:
        return replace(base, binary=True)
    matcher = difflib.SequenceMatcher(None, a.lines, b.lines)
    added = removed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    hidden = a.hidden or b.hidden
    base = replace(base, added=added, removed=removed, note=hidden)
    if hidden:
        return base
    return replace(base, lines=tuple(_hunks(matcher, a.shown, b.shown)))


def secret_values(path: str, data: bytes | None) -> set[str]:
    """What the secret scan finds in a text file's content as values: the string literals (6+
    characters) on the lines it flags and the command-line credentials anywhere, so the rest of
    the diff can mask them where they appear again."""
    if data is None or b"\0" in data[: files.BINARY_PROBE] or len(data) > MAX_DIFF_BYTES:
        return set()
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    found = values_in([text])
    for f in files.scan_file(path, data):
        if f.line is not None and 0 < f.line <= len(lines):
            found |= {m.group()[1:-1] for m in _LITERAL.finditer(lines[f.line - 1])
                      if len(m.group()) >= 8}
    return found


def _size(data: bytes | None) -> int | None:
    return None if data is None else len(data)


def _target(path: str, mode: str | None, data: bytes | None,
            values: tuple[str, ...]) -> str | None:
    if data is None:
        return None
    if mode != "120000":
        return f"(a file of {len(data)} bytes)"
    return mask_line(visible(data.decode("utf-8", "surrogateescape")), values)


def _text(path: str, data: bytes | None, values: tuple[str, ...] = ()) -> _Text | None:
    """The content as lines (None: binary). Absent is empty."""
    if data is None:
        return _Text([], [])
    if b"\0" in data[: files.BINARY_PROBE]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines()
    return _Text(lines, *_masked(path, data, text, lines, values))


def _masked(path: str, data: bytes, text: str, lines: list[str],
            values: tuple[str, ...]) -> tuple[list[str], str]:
    """Each line as it may be shown, and why none may be (a key file, a notebook with a
    secret); the file's findings decide which lines hold a secret. A private-key block is
    masked as a whole first (secrets/blocks.py: the scan names its BEGIN line only)."""
    findings = files.scan_file(path, data)
    if any(f.line is None and f.key is None and f.note not in ("file name", None)
           for f in findings) or any(f.cell is not None for f in findings):
        return [], "content not shown: the secret scan says it holds credentials"
    text = mask_blocks(text)
    shown = text.splitlines()
    if len(shown) != len(lines):
        return [], "content not shown: it holds a secret that spans several lines"
    keys = [f.key for f in findings if f.key is not None]
    if keys:
        redacted = configs.redact(text, [configs.Finding(k, "secret-key") for k in keys]).splitlines()
        if len(redacted) != len(lines):
            return [], "content not shown: it holds a secret that spans several lines"
        shown = redacted
        names = [n for n in {_last_key(k) for k in keys} if n]
        keyed = re.compile(r"\s*(?:-\s*)?[\"']?(?:" + "|".join(map(re.escape, names)) + r")[\"']?\s*[=:]")
        shown = [_mask_named(s, _last_key_in(s, names)) if names and keyed.match(s) else s
                 for s in shown]
    for f in findings:
        if f.line is not None and 0 < f.line <= len(shown):
            i = f.line - 1
            shown[i] = _mask_named(shown[i], f.name)
            while i + 1 < len(shown) and shown[i].rstrip().endswith(_OPEN) and i < f.line + 3:
                i += 1
                shown[i] = _mask_literals(shown[i], force=True)
    return [mask_line(visible(s), values) for s in shown], ""


_OPEN = ("(", "[", "{", "=", ",", ":", "\\", "+")
_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_AFTER_NAME = re.compile(r"[\"'\]\s)]*(?::=|=>|==|=|:|,)?[ \t]*")
_KEY_PART = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)')


def _last_key(path: str) -> str:
    parts = [m.group(1) or m.group(3) for m in _KEY_PART.finditer(path)]
    parts = [p for p in parts if p]
    return parts[-1] if parts else ""


def _last_key_in(line: str, names: list[str]) -> str | None:
    return next((n for n in names if n in line), None)


def _mask_named(line: str, name: str | None) -> str:
    """``line`` with the value after ``name`` (``TOKEN = "…"``, ``token: …``) as ``***``; else
    its string literals; else everything after the first ``=``/``:``; else the whole line."""
    if name and name in line and MASK not in line[line.index(name):]:
        at = line.index(name) + len(name)
        m = _AFTER_NAME.match(line, at)
        end = m.end() if m else at
        if end < len(line.rstrip()):
            return line[:end] + MASK
    if name and MASK in line:
        return line
    return _mask_literals(line, force=True)


def _mask_literals(line: str, *, force: bool = False) -> str:
    masked = _LITERAL.sub(lambda m: MASK if len(m.group()) > 5 else m.group(), line)
    if masked != line or not force:
        return masked
    m = re.search(r"[=:]", line)
    if m and line[m.end():].strip():
        return line[:m.end()] + " " + MASK
    return MASK if line.strip() else line


def mask_line(line: str, values: tuple[str, ...] = ()) -> str:
    """The other masking of every line: a private-key block inside it (an escaped one in a
    JSON value), the ``values`` found secret elsewhere in the same output (longest first),
    issuer token shapes, URL credentials and command-line credentials."""
    line = mask_blocks(line)
    for value in values:
        if value in line:
            line = line.replace(value, MASK)
    if has_token(line):
        for start, end in reversed(list(token_spans(line))):
            line = line[:start] + MASK + line[end:]
    return mask_commands(mask_credentials(line))


def visible(text: str) -> str:
    """Control and format characters (and undecodable bytes) as escapes: a line of a file is
    shown, never obeyed by the terminal."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t" or ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def _hunks(matcher: difflib.SequenceMatcher[str], a: list[str], b: list[str]) -> list[str]:
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(CONTEXT):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + line for line in a[a1:a2]]
                continue
            out += ["-" + line for line in a[a1:a2]]
            out += ["+" + line for line in b[b1:b2]]
    return out


def _range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def display_path(path: str, values: tuple[str, ...] = ()) -> str:
    """A path as shown: a token in a file name replaced, and each of ``values`` (found secret
    elsewhere in the same output) as ``***``, so ``cache-<password>.txt`` is ``cache-***.txt``
    (the rest escaped by the renderer)."""
    for value in values:
        if value in path:
            path = path.replace(value, MASK)
    if not has_token(path):
        return path
    return files.safe_path(path)
