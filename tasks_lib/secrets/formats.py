"""The readers of ``secret_files`` for structured files, and the finding they all return.

Data files (YAML, JSON, TOML) are loaded keeping every mapping pair, duplicate keys included, and
judged with the key-path rules of ``secrets.scan``; ``KEY=value`` files (``.env``, ini) are read
line by line and each entry judged the same way; notebooks are read cell by cell (code as code,
everything else and every output as text). Findings hold no value.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass

import yaml

from tasks_lib.secrets import configs as secrets
from tasks_lib.secrets.lines import scan_code, scan_shapes, scan_text
from tasks_lib.secrets.names import printable
from tasks_lib.secrets.shapes import credential_shaped_name, has_token

__all__ = ["DATA_ERRORS", "FileFinding", "scan_data_text", "scan_kv", "scan_notebook"]


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
DATA_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError,
                tomllib.TOMLDecodeError)


def _load_data(text: str, suffix: str) -> list[object]:
    """The documents of a data file (raises one of ``DATA_ERRORS`` when it does not parse)."""
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


def scan_kv(file: str, text: str, *, everything: bool) -> list[FileFinding]:
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
            shown = None if credential_shaped_name(name) or has_token(name) else printable(name)
            out.append(FileFinding(file, hits[0].kind, line=n, name=shown))
    return out


# --------------------------------------------------------------------------- notebooks


def _cell_text(value: object) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def scan_notebook(file: str, text: str) -> list[FileFinding] | None:
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
