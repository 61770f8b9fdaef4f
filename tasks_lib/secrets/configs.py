"""Find plaintext secrets in configs and registry entries before they land in a snapshot.

Findings carry the key's dotted path and a kind, never the value: nothing in this module puts a
scanned value into a message, a repr or an exception.

- ``secret-key``: the key's name says credential (``token``, ``api_key``, ``feishuAppSecret``,
  ``DB_PASSWORD`` ...) and its value is a plaintext scalar (not ``${NAME}``, not a placeholder);
  also ``--token VALUE`` / ``TOKEN=value`` inside argv lists and command strings, and the
  credentials command-line tools take (``PGPASSWORD=… psql``, ``curl -u user:…``,
  ``redis-cli -a …``, ``mysql -p…``: tasks_lib/secrets/commands.py).
- ``credential-url``: a string holding a URL with ``user:password@``, a bare token as the user
  (``https://ghp_...@github.com``), a known bot webhook (Feishu/Lark, Slack, DingTalk, WeCom,
  Discord, Telegram, Teams), an apprise notification URL, or a secret-named query parameter
  (``?access_token=...``).
- ``token``: an issuer's token shape (``ghp_…``, ``sk-…``, ``AKIA…``, a PEM private key) under
  any key (``secret_shapes``).
- ``credential-as-name``: a credential where a variable *name* belongs
  (``environment_variables: [ghp_…]``): refused outright, never allowed.

A key that is itself credential-shaped is shown as ``[<credential-shaped key>]`` in a path.

The rules live in ``secret_names`` (which key names name a credential) and ``secret_values``
(which values are plaintext: not references, placeholders or file paths); this module walks the
data, and refuses or redacts what it found.

One module because it is one walk over parsed data with the redaction of what it finds; the
name and value rules it applies are apart (names.py, values.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from tasks_lib.core.errors import SecretsFound
from tasks_lib.formats.config import _LOAD_ERRORS, _Loader, load
from tasks_lib.secrets.commands import argv_hits, credential_spans
from tasks_lib.secrets.names import name_class, name_words, printable, safe_child
from tasks_lib.secrets.shapes import credential_shaped_name, has_token
from tasks_lib.secrets.values import (
    VAR_NAME,
    has_credential_url,
    is_file_path,
    is_plaintext,
    looks_like_credential,
    secret_assignment,
    secret_by_name,
    string_has_secret,
)

__all__ = [
    "Finding",
    "redact",
    "reference_example",
    "refuse_if_found",
    "scan",
    "scan_entry",
    "scan_text",
]

SECRET_KEY = "secret-key"
CREDENTIAL_URL = "credential-url"
TOKEN = "token"
CREDENTIAL_AS_NAME = "credential-as-name"
_NAME_LISTS = frozenset({"environment_variables", "env_vars", "required_env"})
MASKED_KEY = "[<credential-shaped key>]"


@dataclass(frozen=True)
class Finding:
    """A plaintext secret at ``path``. Holds no value, by design."""

    path: str
    kind: str

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


# --------------------------------------------------------------------------- paths

_SIMPLE_KEY = re.compile(r"[^\s.\[\]\"']+\Z")


def _key_part(key: object) -> str:
    text = key if isinstance(key, str) else str(key)
    if credential_shaped_name(text):
        return MASKED_KEY  # a key that is a token: showing the path would show the token
    if _SIMPLE_KEY.match(text) and printable(text) == text:
        return text
    return "[" + json.dumps(text, ensure_ascii=False) + "]"


def _join(prefix: str, key: object) -> str:
    part = _key_part(key)
    if part.startswith("["):
        return prefix + part
    return f"{prefix}.{part}" if prefix else part


# --------------------------------------------------------------------------- scan

NONE, WEAK, ALL = "", "weak", "all"  # what a container passes down to its scalars
# argv flags: `--token VALUE`, `--api-key=VALUE`
_FLAG = re.compile(r"--?([A-Za-z][A-Za-z0-9_\-]*)(?:=(.*))?\Z", re.DOTALL)


class _Scanner:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._seen_paths: set[str] = set()
        self._seen_nodes: set[int] = set()

    def add(self, path: str, kind: str) -> None:
        if path not in self._seen_paths:
            self._seen_paths.add(path)
            self.findings.append(Finding(path, kind))

    def scalar(self, path: str, value: object, *, by_name: bool, inherited: str) -> None:
        if (
            by_name
            or (inherited == ALL and is_plaintext(value) and not is_file_path(value))
            or (inherited == WEAK and looks_like_credential(value))
        ):
            self.add(path, SECRET_KEY)
        elif isinstance(value, str):
            if has_credential_url(value):
                self.add(path, CREDENTIAL_URL)
            elif string_has_secret(value) or credential_spans(value):
                self.add(path, SECRET_KEY)  # `--token V`, `PGPASSWORD=V psql`, `curl -u u:V`
            elif has_token(value):
                self.add(path, TOKEN)

    def walk(self, data: object, path: str, inherited: str) -> None:
        if isinstance(data, (list, tuple)):
            self.walk_list(data, path, inherited)
        elif isinstance(data, dict):
            if id(data) in self._seen_nodes:  # an *alias of a mapping already scanned, or a cycle
                return
            self._seen_nodes.add(id(data))
            named = data.get("name", data.get("key"))  # k8s env: {name: API_TOKEN, value: …}
            if isinstance(named, str) and "value" in data and not isinstance(
                    data["value"], (dict, list, tuple)) and secret_by_name(named, data["value"]):
                self.add(_join(path, "value"), SECRET_KEY)
            for key, value in data.items():
                sub = _join(path, key)
                cls = name_class(key)
                # what the value's own children inherit
                passed = inherited if inherited and not safe_child(key) else NONE
                if cls == "container":
                    passed = ALL
                elif cls == "secret":
                    # token: [a, b] -> both; password: {prod: ..., min_length: 8} -> tokens only
                    passed = ALL if isinstance(value, (list, tuple)) else (passed or WEAK)
                if isinstance(value, (list, tuple)) and "_".join(name_words(str(key))) in _NAME_LISTS:
                    for i, item in enumerate(value):
                        if isinstance(item, str) and credential_shaped_name(item):
                            self.add(f"{sub}[{i}]", CREDENTIAL_AS_NAME)
                if isinstance(value, (dict, list, tuple)):
                    self.walk(value, sub, passed)
                else:
                    self.scalar(
                        sub,
                        value,
                        by_name=secret_by_name(key, value),
                        inherited=NONE if cls == "container" or safe_child(key) else inherited,
                    )
        else:
            self.scalar(path or "(top level)", data, by_name=False, inherited=inherited)

    def walk_list(self, items: list | tuple, path: str, inherited: str) -> None:
        if id(items) in self._seen_nodes:
            return
        self._seen_nodes.add(id(items))
        flag_value_next = False
        in_argv = set(argv_hits(items))  # ["redis-cli", "-a", V], ["curl", "-u", "u:V"]
        for i, item in enumerate(items):
            sub = f"{path}[{i}]"
            if i in in_argv:
                self.add(sub, SECRET_KEY)
                continue
            if isinstance(item, (dict, list, tuple)):
                self.walk(item, sub, inherited)
                flag_value_next = False
                continue
            if flag_value_next:
                flag_value_next = False
                if is_plaintext(item) and not (isinstance(item, str) and item.startswith("-")):
                    self.add(sub, SECRET_KEY)
                    continue
            if isinstance(item, str):
                m = _FLAG.match(item)
                if m and m.group(2) is None and name_class(m.group(1)) == "secret":
                    flag_value_next = True  # argv: ["--token", VALUE]
                    continue
                if m and m.group(2) is not None and secret_assignment(m.group(1), m.group(2)):
                    self.add(sub, SECRET_KEY)
                    continue
                if "=" in item and not item.startswith("-"):
                    name, _, value = item.partition("=")
                    if re.fullmatch(VAR_NAME, name) and secret_assignment(name, value):
                        self.add(sub, SECRET_KEY)  # env list: ["TUSHARE_TOKEN=abc"]
                        continue
            self.scalar(sub, item, by_name=False, inherited=inherited)


def scan(data: object, *, everything: bool = False) -> list[Finding]:
    """Plaintext secrets in loaded YAML/JSON data, in document order; never holds a value.
    ``everything``: the file's name says it holds credentials (``secrets.yaml``), so every
    plaintext value counts (but for safe children such as ``user``, ``host``, ``port``)."""
    scanner = _Scanner()
    scanner.walk(data, "", ALL if everything else NONE)
    return scanner.findings


def scan_text(text: str, source: str = "config.yaml") -> list[Finding]:
    """Load a config (MalformedFile on invalid YAML, naming only line and column) and scan it."""
    return scan(load(text, source))


def scan_entry(entry: dict) -> list[Finding]:
    """Scan a registry entry (same rules as a config)."""
    return scan(entry)


# --------------------------------------------------------------------------- refuse


_GENERIC_LAST = frozenset(
    {"token", "secret", "password", "passwd", "pwd", "pass", "key", "api_key", "apikey", "webhook",
     "webhook_url", "url", "dsn", "cookie", "credential", "credentials", "access_token",
     "auth_token", "bearer", "authorization", "auth", "app_secret", "client_secret",
     "access_key", "secret_key", "private_key", "hook_url", "value"}
)  # fmt: skip
_PATH_PART = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)')


def _suggest_env_name(path: str) -> str:
    """``data_sources.tushare.token`` -> ``TUSHARE_TOKEN``; ``api_keys[1]`` -> ``API_KEYS_1``."""
    parts: list[tuple[str, bool]] = []  # (normalised key, is a list index)
    for m in _PATH_PART.finditer(path):
        if m.group(2) is not None:
            parts.append((m.group(2), True))
        else:
            raw = json.loads(f'"{m.group(1)}"') if m.group(1) is not None else m.group(3)
            key = "_".join(name_words(raw))
            if key:
                parts.append((key, False))
    keys = [k for k, is_index in parts if not is_index]
    if not keys:
        return "SECRET"
    if parts[-1][1]:
        name = f"{keys[-1]}_{parts[-1][0]}"
    elif keys[-1] in _GENERIC_LAST and len(keys) >= 2:
        name = f"{keys[-2]}_{keys[-1]}"
    else:
        name = keys[-1]
    name = re.sub(r"[^A-Z0-9_]", "_", name.upper())
    return name if re.match(r"[A-Z_]", name) else f"_{name}"


def _example(path: str) -> str:
    """``data_sources.tushare.token`` -> "`token: ${TUSHARE_TOKEN}` at data_sources.tushare.token"."""
    var = _suggest_env_name(path)
    parts = list(_PATH_PART.finditer(path))
    last = parts[-1] if parts else None
    if last is None or last.group(2) is not None:
        return f"`- ${{{var}}}` at {path}"
    key = (
        last.group(3) if last.group(3) is not None else json.dumps(json.loads(f'"{last.group(1)}"'))
    )
    return f"`{key}: ${{{var}}}` at {path}"


def reference_example(path: str) -> str:
    """How to write the value at ``path`` as a reference: "`token: ${TUSHARE_TOKEN}` at …"."""
    return _example(path)


def refuse_if_found(findings: Iterable[Finding], source: str, allowed: Iterable[str] = ()) -> None:
    """Raise SecretsFound (exit 3) for findings whose path is not in ``allowed``.

    The message lists key paths only; the hint says how to move each value to an environment
    variable and that ``--allow-secret PATH`` keeps one key as it is.
    """
    allow = {a.strip() for a in allowed if isinstance(a, str)}
    paths: list[str] = []
    for f in findings:
        if f.path not in allow and f.path not in paths:
            paths.append(f.path)
    if not paths:
        return
    examples = [_example(p) for p in paths[:4]]
    more = f" (and {len(paths) - 4} more)" if len(paths) > 4 else ""
    first_var = _suggest_env_name(paths[0])
    hint = (
        "move each value to an environment variable: write "
        + "; ".join(examples)
        + more
        + f"; set the variable in the task's environment (e.g. `export {first_var}=...` where the"
        " task is started); list the names under `environment_variables:` in the config so"
        " snapshots record them (names only, never values). If a value was ever committed,"
        " rotate it. To keep one key as it is, pass `--allow-secret PATH` (once per key, e.g."
        f" `--allow-secret {paths[0]}`)."
    )
    label = "secret" if len(paths) == 1 else "secrets"
    raise SecretsFound(f"{source}: plaintext {label} at {', '.join(paths)}", paths=paths, hint=hint)


# --------------------------------------------------------------------------- redact

MASK = '"***"'
_PROPERTIES = re.compile(r"(?:[&!][^\s]*[ \t]+)*")


def _node_paths(
    loader: _Loader, node: yaml.Node, path: str, out: dict[str, yaml.Node], seen: set[int]
) -> None:
    if isinstance(node, yaml.CollectionNode):
        if id(node) in seen:  # an *alias of a collection already walked (scan skips it too)
            return
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for m in merged:
                    if isinstance(m, yaml.MappingNode):
                        seen.discard(id(m))
                        _node_paths(loader, m, path, out, seen)
                continue
            try:
                key = loader.construct_object(key_node, deep=True)
            except _LOAD_ERRORS:
                continue
            _node_paths(loader, value_node, _join(path, key), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_paths(loader, item, f"{path}[{i}]", out, seen)
    else:
        out.setdefault(path, node)


_LINE_KEY = re.compile(
    r"^(\s*(?:-\s+)?(?P<key>[^\s#:][^:#]*?|\"[^\"]*\"|'[^']*')\s*:[ \t]+)(?P<value>[^\r\n]*?)(?P<tail>[ \t]+#[^\r\n]*)?(?P<nl>\r?\n|\r|\Z)",
    re.MULTILINE,
)


def _redact_lines(text: str, findings: list[Finding]) -> str:
    """Fallback for text PyYAML cannot read: mask `key: value` lines whose key is a finding's
    last key or looks secret."""
    last_keys = set()
    for f in findings:
        m = list(_PATH_PART.finditer(f.path))
        if m:
            last = m[-1].group(3) or m[-1].group(1)
            if last:
                last_keys.add(last)

    def repl(m: re.Match[str]) -> str:
        key = m.group("key").strip("'\"")
        if m.group("value") and (key in last_keys or name_class(key) == "secret"):
            return m.group(1) + MASK + (m.group("tail") or "") + m.group("nl")
        return m.group(0)

    return _LINE_KEY.sub(repl, text)


def redact(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with the values at the findings' paths replaced by ``"***"`` (best effort).

    Uses PyYAML's node positions, so comments, quoting elsewhere and line endings stay as they
    were; a block scalar becomes ``"***"`` on the key's line. Text PyYAML cannot read is masked
    line by line.
    """
    findings = list(findings)
    if not findings:
        return text
    wanted = {f.path for f in findings}
    nodes: dict[str, yaml.Node] = {}
    try:
        loader = _Loader(text)
    except _LOAD_ERRORS:
        return _redact_lines(text, findings)
    try:
        root = loader.get_single_node()
        if root is not None:
            _node_paths(loader, root, "", nodes, set())
    except _LOAD_ERRORS:
        return _redact_lines(text, findings)
    finally:
        loader.dispose()
    spans: set[tuple[int, int]] = set()
    for path, node in nodes.items():
        if path in wanted or (path == "" and "(top level)" in wanted):
            start, end = node.start_mark.index, node.end_mark.index
            # keep an &anchor / !tag written before the value, and the line break ending a block
            start += len(_PROPERTIES.match(text, start).group(0))
            end = start + len(text[start:end].rstrip("\r\n"))
            if start < end:
                spans.add((start, end))
    out = text
    for start, end in sorted(spans, reverse=True):
        out = out[:start] + MASK + out[end:]
    return out
