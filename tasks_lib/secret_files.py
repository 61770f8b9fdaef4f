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
| text over 8 MiB | token shapes and credential URLs only (data files over 2 MiB are read as text) |

Undecodable bytes are replaced, never fatal. A finding names the file and a key path, or a line
and the variable there; it never holds a value, and a credential-shaped name is not shown.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from tasks_lib import secrets
from tasks_lib.secret_lines import Hit, scan_code, scan_shapes, scan_text
from tasks_lib.secret_names import name_class
from tasks_lib.secret_shapes import (
    credential_shaped_name,
    has_token,
    token_offsets_in_bytes,
    token_spans,
)

__all__ = ["FileFinding", "safe_path", "scan_data_text", "scan_file"]

BINARY_PROBE = 8192
FULL_SCAN_LIMIT = 8 * 1024 * 1024
STRUCTURED_LIMIT = 2 * 1024 * 1024
SECRET_FILE = "secret-file"


@dataclass(frozen=True)
class FileFinding:
    """A secret in ``file`` (repo-relative) at a key path, a line (and cell), or the file as a
    whole (``note``). Holds no value, by design."""

    file: str
    kind: str
    key: str | None = None     # a key path in a data file
    line: int | None = None
    name: str | None = None    # the variable or key named on that line
    cell: int | None = None    # a notebook cell (1-based)
    note: str | None = None    # "whole file …", "symlink target", "file name", "binary content"

    @property
    def where(self) -> str:
        if self.key is not None:
            return f"at {self.key}" if len(self.key) <= 120 else f"at …{self.key[-100:]}"
        if self.line is not None:
            cell = f"cell {self.cell} " if self.cell is not None else ""
            cell += "output " if self.note == "output" else ""
            return f"{cell}line {self.line}" + (f" ({self.name})" if self.name else "")
        if self.cell is not None:
            return f"cell {self.cell}" + (f" ({self.name})" if self.name else "")
        return f"({self.note})"

    def __str__(self) -> str:
        return f"{self.file} {self.where}"


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
    """``path`` as a message may show it: a token in a file name is replaced by ``<token>``."""
    spans = list(token_spans(path))
    for start, end in reversed(spans):
        path = path[:start] + "<token>" + path[end:]
    return path


# --------------------------------------------------------------------------- data files


class _Pairs(dict):
    """A mapping that keeps every pair, duplicate keys too (the scan walks ``items()``): a
    plaintext value shadowed by a later ``token: ${X}`` is still committed, so still found."""

    def __init__(self, pairs: list[tuple[object, object]]) -> None:
        super().__init__((k, v) for k, v in pairs if _hashable(k))
        self._pairs = pairs

    def items(self):  # type: ignore[override]
        return list(self._pairs)


def _hashable(key: object) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML with local tags read as plain values and every mapping pair kept."""


def _yaml_pairs(loader: _YamlLoader, node: yaml.MappingNode) -> _Pairs:
    loader.flatten_mapping(node)  # `<<: *base` merges
    return _Pairs([(loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
                   for k, v in node.value])


def _yaml_local(loader: _YamlLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return _yaml_pairs(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_YamlLoader.add_constructor("tag:yaml.org,2002:map", _yaml_pairs)
_YamlLoader.add_multi_constructor("!", _yaml_local)
_DATA_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError,
                tomllib.TOMLDecodeError)


def _load_data(text: str, suffix: str) -> list[object]:
    """The documents of a data file (raises one of ``_DATA_ERRORS`` when it does not parse)."""
    if suffix == ".json":
        return [json.loads(text, object_pairs_hook=_Pairs)]
    if suffix == ".toml":
        return [tomllib.loads(text)]
    return list(yaml.load_all(text, Loader=_YamlLoader))  # noqa: S506 - a SafeLoader subclass


_COMMENT = re.compile(r"(?m)^[ \t]*[#;].*$")


def scan_data_text(file: str, text: str, suffix: str, *, everything: bool) -> list[FileFinding]:
    """A YAML/JSON/TOML file's findings; raises when it does not parse."""
    docs = _load_data(text, suffix)
    out: list[FileFinding] = []
    for i, doc in enumerate(docs):
        prefix = f"[doc {i + 1}]." if len(docs) > 1 else ""
        out += [FileFinding(file, f.kind, key=prefix + f.path)
                for f in secrets.scan(doc, everything=everything)]
    for m in _COMMENT.finditer(text):  # comments are not in the data: shapes only
        for hit in scan_shapes(m.group(0)):
            out.append(FileFinding(file, hit.kind, line=text.count("\n", 0, m.start()) + 1))
    return out


# --------------------------------------------------------------------------- KEY=value files

_SECTION = re.compile(r"[ \t]*\[([^\]\r\n]{1,200})\][ \t]*\Z")
_KV_EQ = re.compile(r"[ \t]*(?:export[ \t]+)?(?P<key>[^=#;\s\[][^=]*?)[ \t]*=[ \t]*(?P<value>.*?)[ \t]*\Z")
_KV_COLON = re.compile(
    r"[ \t]*(?P<key>[^=:#;\s\[][^=:#;]*?)[ \t]*:[ \t]*(?P<value>.*?)[ \t]*\Z"
)


def _kv_match(line: str) -> re.Match[str] | None:
    """``KEY=value`` (``//host/:_authToken=…`` too), else ``KEY: value``."""
    eq = line.find("=")
    if eq >= 0 and ": " not in line[:eq]:
        return _KV_EQ.match(line)
    return _KV_COLON.match(line)


def _kv_value(raw: str) -> str:
    if raw[:1] in ("'", '"') and raw.endswith(raw[0]) and len(raw) >= 2:
        return raw[1:-1]
    return re.split(r"[ \t]+[#;]", raw, maxsplit=1)[0]  # an inline comment after a space


def _scan_kv(file: str, text: str, *, everything: bool) -> list[FileFinding]:
    out: list[FileFinding] = []
    section: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] in "#;":
            out += [FileFinding(file, h.kind, line=n) for h in scan_shapes(line)]
            continue
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            continue
        m = _kv_match(line)
        if not m:
            out += [FileFinding(file, h.kind, line=n) for h in scan_shapes(line)]
            continue
        key, value = m.group("key").strip(), _kv_value(m.group("value"))
        data = {section: {key: value}} if section else {key: value}
        hits = secrets.scan(data, everything=everything)
        if hits:
            name = f"{section}.{key}" if section else key
            shown = None if credential_shaped_name(name) or has_token(name) else name
            out.append(FileFinding(file, hits[0].kind, line=n, name=shown))
    return out


# --------------------------------------------------------------------------- notebooks


def _cell_text(value: object) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _scan_notebook(file: str, text: str) -> list[FileFinding] | None:
    try:
        nb = json.loads(text)
    except ValueError:
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None
    out = [FileFinding(file, f.kind, key=f"metadata.{f.path}")
           for f in secrets.scan(nb.get("metadata") or {})]
    for i, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict):
            continue
        source = _cell_text(cell.get("source"))
        hits = scan_code(source) if cell.get("cell_type") == "code" else scan_text(source)
        out += [FileFinding(file, h.kind, line=h.line, name=h.name, cell=i) for h in hits]
        for output in cell.get("outputs") or []:
            if not isinstance(output, dict):
                continue
            texts = [_cell_text(output.get("text"))]
            data = output.get("data")
            if isinstance(data, dict):
                texts += [_cell_text(v) if not isinstance(v, dict) else json.dumps(v)
                          for mime, v in data.items() if not str(mime).startswith("image/")]
            for blob in texts:  # a printed token is committed too
                out += [FileFinding(file, h.kind, line=h.line, name=h.name, cell=i, note="output")
                        for h in scan_text(blob)]
    return out


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
    if file != path:
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
        except _DATA_ERRORS:
            kind = "kv" if everything else "text"  # does not parse: read it line by line
    if kind == "notebook":  # images make notebooks big: parsed up to the full-scan limit
        found = _scan_notebook(file, text)
        if found is not None:
            return out + found
        kind = "text"
    if kind == "kv":
        return out + _scan_kv(file, text, everything=everything)
    if kind == "code":
        return out + _from_hits(file, scan_code(text, everything=everything))
    return out + _from_hits(file, scan_text(text, strict=kind in ("shell", "data")))
