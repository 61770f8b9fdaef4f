"""One scanner for any file a commit would hold: ``scan_file(path, data)`` -> findings.

The file's name and content decide how it is read (docs/design.md "Secrets"):

| file | read as |
|---|---|
| ``*.yaml`` ``*.yml`` ``*.json`` ``*.toml`` | data, with the key-path rules of ``secrets.scan`` (every pair kept, duplicates too); comments for token shapes |
| ``*.ipynb`` | each cell as code or text, each output as text, the metadata as data |
| ``.env*`` ``*.ini`` ``*.cfg`` ``*.conf`` ``*.properties`` ``.npmrc`` ``.pypirc`` ``credentials`` | ``KEY=value`` / ``[section]`` lines, as data |
| ``*.py`` and other source code | ``secret_lines.scan_code`` |
| shell scripts, ``Dockerfile``, documentation, any other text | ``secret_lines.scan_text`` (``NAME=value`` lines too) |
| a secret-named data file (``secrets.yaml``, ``credentials.json``, ``.env.production``) | every plaintext value is a secret |
| a key file (``id_rsa``, ``*.p12``, ``.netrc``, ``.pgpass``, a binary ``*.key``) | the whole file is one secret |
| binary (a NUL byte in the first 8 KiB) | token shapes only |
| a symlink | its target (what git stores), token shapes and credential URLs only |
| a file over 8 MiB | token shapes and credential URLs only (a snapshot streams it in blocks: ``scan_stream``); data files over 2 MiB are read as text |

Undecodable bytes are replaced, never fatal. A finding names the file and a key path, or a line
and the variable there; it never holds a value, and a credential-shaped name is not shown. The
readers of structured files live in ``secret_formats``, those of code and text in
``secret_lines``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import BinaryIO

from tasks_lib.secrets.formats import (
    DATA_ERRORS,
    FileFinding,
    scan_data_text,
    scan_kv,
    scan_notebook,
)
from tasks_lib.secrets.lines import Hit, scan_code, scan_shapes, scan_text
from tasks_lib.secrets.names import name_class, printable
from tasks_lib.secrets.shapes import has_token, token_offsets_in_bytes, token_spans
from tasks_lib.secrets.values import credential_url_spans, is_file_path, is_plaintext

__all__ = ["FileFinding", "safe_path", "scan_data_text", "scan_file"]

BINARY_PROBE = 8192
FULL_SCAN_LIMIT = 8 * 1024 * 1024
STRUCTURED_LIMIT = 2 * 1024 * 1024
SECRET_FILE = "secret-file"


# --------------------------------------------------------------------------- by name

_DATA_EXT = frozenset({".yaml", ".yml", ".json", ".toml"})
_KV_EXT = frozenset({".ini", ".cfg", ".conf", ".properties", ".env"})
_KV_NAMES = frozenset({".npmrc", ".pypirc", "credentials", ".envrc", ".pgpass.conf"})
_CODE_EXT = frozenset(
    {".py", ".pyw", ".pyi", ".pyx", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs",
     ".java", ".kt", ".scala", ".rb", ".php", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift",
     ".r", ".jl", ".lua", ".pl", ".dart"}
)  # fmt: skip
_SHELL_EXT = frozenset({".sh", ".bash", ".zsh", ".ksh", ".fish", ".ps1", ".bat", ".cmd"})
_SHELL_NAMES = frozenset({"dockerfile", "makefile", "procfile", "containerfile"})
_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", ".netrc",
     "_netrc", ".pgpass", ".git-credentials", ".htpasswd", "master.key"}
)  # fmt: skip
_KEY_EXT = frozenset({".p12", ".pfx", ".jks", ".keystore", ".kdbx", ".ppk", ".p8"})
_NOT_SECRET_SUFFIX = frozenset(
    {"example", "examples", "sample", "template", "tpl", "dist", "default", "defaults", "schema",
     "spec", "test"}
)  # fmt: skip


def _parts(name: str) -> list[str]:
    return [p for p in name.lower().split(".") if p]


def _env_file(name: str) -> bool:
    low = name.lower()
    return low in (".env", ".envrc") or low.startswith(".env.") or low.endswith(".env")


def secret_named(name: str) -> bool:
    """Does the file's name say it holds credentials? ``secrets.yaml``, ``credentials.json``,
    ``client_secret.json``, ``.env``, ``.env.production`` (not ``.env.example``)."""
    parts = _parts(name)
    if not parts or parts[-1] in _NOT_SECRET_SUFFIX:
        return False
    if _env_file(name):
        return True
    stems = parts[:-1] if len(parts) > 1 else parts
    return any(name_class(p) in ("secret", "container") for p in stems)


# source files whose name says they hold credentials (settings modules named after them); a
# wider rule would take `…_with_new_secrets_.py` (a migration) for one
_SECRET_CODE_STEMS = frozenset(
    {"secrets", "secret", "credentials", "credential", "creds", "passwords", "api_keys", "apikeys",
     "secret_keys", "tokens_secret", "local_secrets", "secrets_local", "private_settings",
     "secret_settings", "settings_secret"}
)  # fmt: skip


def _secret_code(name: str) -> bool:
    return PurePosixPath(name.lower()).stem.strip("_") in _SECRET_CODE_STEMS


def _kind(name: str) -> str:
    low = name.lower()
    suffix = PurePosixPath(low).suffix
    if low in _KEY_NAMES or suffix in _KEY_EXT:
        return "key"
    if suffix == ".ipynb":
        return "notebook"
    if _env_file(name) or suffix in _KV_EXT or low in _KV_NAMES:
        return "kv"
    if suffix in _DATA_EXT:
        return "data"
    if suffix in _CODE_EXT:
        return "code"
    if suffix in _SHELL_EXT or low in _SHELL_NAMES or low.startswith("dockerfile"):
        return "shell"
    return "text"


def safe_path(path: str) -> str:
    """``path`` as a message may show it: a token in a file name is replaced by ``<token>``,
    control characters and undecodable bytes are escaped."""
    spans = list(token_spans(path))
    for start, end in reversed(spans):
        path = path[:start] + "<token>" + path[end:]
    return printable(path)


# --------------------------------------------------------------------------- dispatch


def _from_hits(file: str, hits: list[Hit]) -> list[FileFinding]:
    return [FileFinding(file, h.kind, line=h.line, name=h.name) for h in hits]


def _utf16(data: bytes) -> str | None:
    """UTF-16 text (a BOM, or every other byte NUL) decoded; None for anything else. Its NUL
    bytes would otherwise make it look binary, and its tokens invisible to a byte search."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    probe = data[:BINARY_PROBE]
    if len(probe) >= 8:
        for parity, codec in ((1, "utf-16-le"), (0, "utf-16-be")):
            if probe[parity::2].count(0) >= len(probe) // 2 * 0.9 and b"\0" not in probe[1 - parity::2]:
                return data.decode(codec, "replace")
    return None


def _decode(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return text[1:] if text.startswith("\ufeff") else text


def scan_file(path: str, data: bytes, *, symlink: bool = False) -> list[FileFinding]:
    """Plaintext secrets in ``data``, the content git would commit at ``path`` (repo-relative,
    posix); for a symlink, ``data`` is its target. Never raises on content."""
    file = safe_path(path)
    name = PurePosixPath(path).name
    out: list[FileFinding] = []
    if has_token(path):
        out.append(FileFinding(file, "token", note="file name"))
    if symlink:
        if scan_shapes(_decode(data)):
            out.append(FileFinding(file, "token", note="symlink target"))
        return out
    kind = _kind(name)
    wide = _utf16(data) if b"\0" in data[:BINARY_PROBE] else None
    if wide is not None:
        data = wide.encode("utf-8")
    binary = b"\0" in data[:BINARY_PROBE]
    suffix = PurePosixPath(name.lower()).suffix
    if suffix == ".key" and not (b"-----BEGIN" in data and b"PRIVATE KEY" not in data):
        kind = "key"  # a key file, unless it holds only public PEM blocks
    if kind == "key" or (binary and suffix == ".pem"):
        if data.strip():
            out.append(FileFinding(file, SECRET_FILE,
                                   note="whole file: its name says it holds a key or credentials"))
        return out
    if binary:
        if next(token_offsets_in_bytes(data), None) is not None:
            out.append(FileFinding(file, "token", note="binary content"))
        return out
    text = _decode(data)
    if len(data) > FULL_SCAN_LIMIT:
        return out + _from_hits(file, scan_shapes(text))
    everything = secret_named(name)
    if kind == "data" and len(data) <= STRUCTURED_LIMIT:
        try:
            return out + scan_data_text(file, text, suffix, everything=everything)
        except DATA_ERRORS:
            kind = "kv" if everything else "text"  # does not parse: read it line by line
    if kind == "notebook":  # images make notebooks big: parsed up to the full-scan limit
        found = scan_notebook(file, text)
        if found is not None:
            return out + found
        kind = "text"
    if kind == "kv":
        return out + scan_kv(file, text, everything=everything)
    if kind == "code":
        return out + _from_hits(file, scan_code(text, everything=_secret_code(name)))
    if everything and _lone_value(text):  # tushare_token.txt holding just the token
        out.append(FileFinding(file, SECRET_FILE,
                               note="whole file: its name says credential, and it holds one value"))
    return out + _from_hits(file, scan_text(text, strict=kind in ("shell", "data")))


def _lone_value(text: str) -> bool:
    """Is ``text`` one word that could be a credential (no prose, no reference, no path)?"""
    value = text.strip()
    return 8 <= len(value) <= 4096 and not any(c.isspace() for c in value) and \
        is_plaintext(value) and not is_file_path(value) and "${" not in value and \
        not value.startswith(("<", "#", "http://", "https://"))


_OVERLAP = 8192  # a token or URL cut by a block boundary is whole in the next block


def scan_stream(path: str, fh: BinaryIO, block: int = FULL_SCAN_LIMIT) -> list[FileFinding]:
    """Token shapes and credential URLs in a file too big to read whole (``scan_file``'s rule
    for text over the full-scan limit, and for binaries: their token shapes), block by block."""
    file = safe_path(path)
    out = [FileFinding(file, "token", note="file name")] if has_token(path) else []
    if _kind(PurePosixPath(path).name) == "key":
        return out + [FileFinding(file, SECRET_FILE,
                                  note="whole file: its name says it holds a key or credentials")]
    line, carry, binary = 1, b"", None
    while True:
        chunk = fh.read(block)
        data = carry + chunk
        if not data:
            break
        if binary is None:
            binary = b"\0" in data[:BINARY_PROBE]
        text = data.decode("latin-1")  # one character per byte; tokens and URLs are ASCII
        end = len(text) - _OVERLAP if chunk else len(text)  # the rest is seen again next time
        hits = [(a, "token") for a, _ in token_spans(text)]
        if not binary:
            hits += [(a, "credential-url") for a, _ in credential_url_spans(text, examples=True)]
        for start, kind in sorted(h for h in hits if h[0] < end):
            if binary:
                return out + [FileFinding(file, kind, note="binary content")]
            out.append(FileFinding(file, kind, line=line + text.count("\n", 0, start)))
        if not chunk:
            break
        line += text.count("\n", 0, max(end, 0))
        carry = data[max(end, 0):]
    return out
