"""Secret values never leave clawback: the one masker for every message, audit entry, report,
artifact, alert and log line (docs/design.md, "Secret values").

What is masked (``***``):

- the value of every environment variable a task declares: the registry entry's
  ``environment_variables``, ``clawback.environment_variables``, its config's top-level
  ``environment_variables:`` and every ``${NAME}`` its config references
  (:func:`declared_names`);
- the value of every set environment variable whose name looks secret (``TUSHARE_TOKEN``,
  ``DB_PASSWORD``, ``FEISHU_WEBHOOK``; tasks_lib/secrets/names.py);
- then credentials that show in the text itself: ``user:password@`` in URLs, secret query
  parameters, bot webhook ids (``secret_values.mask_credentials``). (The renderers of stored
  content, diff and preview, also mask command-line credentials: ``commands.mask_commands``;
  ``mask_argv`` masks them in an argv.)

Values shorter than ``MIN_SECRET_CHARS`` cannot be told from ordinary words and numbers and are
left alone. Longer values are replaced before shorter ones, so no part of one survives. Text is
masked where it enters a message (a smoke test's output, a start command's output, uv's and
git's stderr) and again where it leaves (the CLI, the audit log, reports, artifacts, alerts).

:func:`mask_message` is :func:`mask` for a short message shown to a person (a health source's
error, an alert line): it also masks ``token=…`` / ``api_key: …`` assignments, collapses
whitespace and cuts to ``ERROR_CHARS``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.secrets.commands import argv_hits
from tasks_lib.secrets.names import name_class
from tasks_lib.secrets.values import looks_like_credential, mask_credentials, secret_assignment

MIN_SECRET_CHARS = 4
MASK = "***"
ERROR_CHARS = 200  # of a message shown (health errors, alerts): mask_message cuts there
_HARMLESS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# names a config may reference that hold no secret: masking their values would garble every
# path and message (``${HOME}/data``)
_PLAIN_NAMES = frozenset({"HOME", "PATH", "USER", "LOGNAME", "PWD", "OLDPWD", "SHELL", "LANG",
                          "LANGUAGE", "TMPDIR", "TMP", "TEMP", "TZ", "TERM", "HOSTNAME",
                          "PYTHONPATH", "VIRTUAL_ENV", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                          "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "CLAWBACK_WORKSPACE"})


def secret_items(environ: Mapping[str, str] | None = None,
                 names: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(name, value) of every set variable whose value is a secret: those of ``names`` and the
    secret-looking ones (see the module docstring)."""
    env = os.environ if environ is None else environ
    wanted = set(names) - _PLAIN_NAMES
    found = []
    for name, value in env.items():
        value = value.strip()
        if len(value) < MIN_SECRET_CHARS or value.lower() in _HARMLESS or name in _PLAIN_NAMES:
            continue  # (PWD is the working directory, not a password)
        cls = name_class(name)
        if name in wanted or cls in ("secret", "container") or _secretish(name) or (
                cls == "maybe" and looks_like_credential(value)) or _KNOWN_TOKEN.match(value):
            found.append((name, value))
    return found


def secret_values(environ: Mapping[str, str] | None = None,
                  names: Iterable[str] = ()) -> list[str]:
    """The values to mask, longest first, in every spelling a message may quote them in."""
    found = set()
    for _, value in secret_items(environ, names):
        found.add(value)
        found.update(_spellings(value))
    return sorted(found, key=len, reverse=True)


# environment variable names (upper-cased) that hold a credential though the key-name rules of
# configs would not say so: PGPASSWORD, MYTOKEN, GITHUB_PAT, BROKER_PIN, X_AUTH ...
_SECRET_PARTS = ("TOKEN", "SECRET", "PASSW", "PASSPHRASE", "CREDENTIAL", "APIKEY", "PRIVATE",
                 "COOKIE", "WEBHOOK", "SIGNATURE")
_SECRET_WORDS = frozenset({"PAT", "PIN", "KEY", "AUTH", "DSN", "PWD", "PASS", "SESSION", "SIG"})
_KNOWN_TOKEN = re.compile(
    r"(?:sk-|sk_live_|sk_test_|rk_live_|ghp_|gho_|ghs_|ghu_|ghr_|github_pat_|glpat-|xox[abposr]-"
    r"|AKIA|ASIA|AIza|hf_|ya29\.|eyJ)[A-Za-z0-9_\-./+=]{8,}")  # a value that starts so


def _secretish(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in _SECRET_PARTS) or \
        any(word in _SECRET_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def _spellings(value: str) -> set[str]:
    """How a value shows when a message quotes it: as a JSON string and as a Python repr (a
    backslash or a quote in it is escaped there, so the raw value would not match)."""
    return {v for v in (json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                        repr(value)[1:-1]) if v != value and len(v) >= MIN_SECRET_CHARS}


def mask(text: str, environ: Mapping[str, str] | None = None, names: Iterable[str] = (),
         values: Iterable[str] | None = None) -> str:
    """``text`` with secret values and credentials masked (see the module docstring);
    ``values``: precomputed :func:`secret_values`."""
    if not text:
        return text
    for value in (secret_values(environ, names) if values is None else values):
        text = text.replace(value, MASK)
    return mask_credentials(text)


def mask_data(data: object, values: list[str]) -> object:
    """Every string inside ``data`` (dicts, lists) masked with ``values``."""
    if isinstance(data, str):
        return mask(data, values=values)
    if isinstance(data, dict):
        return {k: mask_data(v, values) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(v, values) for v in data]
    return data


def declared_names(root: Path) -> frozenset[str]:
    """Every environment variable name the workspace's tasks declare (best effort: a registry or
    config that cannot be read declares nothing here; commands report such files themselves)."""
    data = safefs.read_regular(root / "task_registry.json")
    try:
        doc = json.loads(data.decode("utf-8")) if data is not None else None
        tasks = doc.get("tasks") if isinstance(doc, dict) else None
    except (ValueError, RecursionError):
        return frozenset()
    entries = tasks.values() if isinstance(tasks, dict) else tasks if isinstance(tasks, list) else []
    names: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        settings = entry.get("clawback") if isinstance(entry.get("clawback"), dict) else {}
        for listed in (entry.get("environment_variables"), settings.get("environment_variables")):
            names |= _names(listed)
        location = entry.get("location")
        config = entry.get("configuration_file", "config.yaml")
        if isinstance(location, str) and isinstance(config, str) and ".." not in location:
            names |= _config_names(root / location.strip("/") / config)
    return frozenset(names)


def _names(listed: object) -> set[str]:
    if isinstance(listed, str):
        listed = re.split(r"[,\s]+", listed)
    if isinstance(listed, dict):
        listed = list(listed)
    if not isinstance(listed, list):
        return set()
    out = set()
    for item in listed:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str) and _NAME.match(item):
            out.add(item)
    return out


def _config_names(path: Path) -> set[str]:
    data = safefs.read_regular(path, 1 << 20)  # a FIFO there never hangs anything
    if data is None:
        return set()
    text = data.decode("utf-8", "replace")
    names = set(_REF.findall(text))
    m = re.search(r"^environment_variables:[ \t]*(\[[^\]\n]*\])?[ \t]*$((?:\n[ \t]*-[^\n]*)*)",
                  text, re.MULTILINE)
    if m:
        names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", (m.group(1) or "") + m.group(2)))
    return names


_ARG_FLAG = re.compile(r"(--?[A-Za-z][A-Za-z0-9_\-]*|[A-Za-z_][A-Za-z0-9_]*)(?:(=)(.*))?\Z",
                       re.DOTALL)


def mask_argv(argv: Iterable[str], values: Iterable[str] | None = None) -> list[str]:
    """An argv as it may be shown: the value after a credential-named flag (``--token V``),
    of ``--api-key=V`` and of ``TUSHARE_TOKEN=V`` is ``****``; then :func:`mask` on each."""
    values = list(values) if values is not None else None
    argv = list(map(str, argv))
    in_argv = set(argv_hits(argv))  # ["redis-cli", "-a", V], ["curl", "-u", "u:V"]
    shown: list[str] = []
    hide_next = False
    for i, item in enumerate(argv):
        if i in in_argv:
            shown.append("****")
            hide_next = False
            continue
        if hide_next and not item.startswith("-"):
            shown.append("****")
            hide_next = False
            continue
        m = _ARG_FLAG.match(item)
        name = m.group(1).lstrip("-") if m else ""
        hide_next = bool(m and m.group(1).startswith("-") and m.group(2) is None
                         and name_class(name) == "secret")
        if m and m.group(2) and secret_assignment(name, m.group(3)):
            item = f"{m.group(1)}=****"
        shown.append(mask(item, values=values))
    return shown


def for_workspace(root: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values to mask in anything written about the workspace at ``root``."""
    return secret_values(environ, declared_names(root))


# `token=abc`, `--api-key=abc`, then `password: abc` (a value never starts another assignment)
_ASSIGNS = (  # names bounded and starting at a word's start: linear time on a long message
    re.compile(r"(?<![A-Za-z0-9_\-])((?:--?)?([A-Za-z_][A-Za-z0-9_\-]{0,63})[ \t]{0,8}=[ \t]{0,8})"
               r"(['\"]?)([^\s'\",;]+)"),
    re.compile(r"(?<![A-Za-z0-9_\-])((?:--?)?([A-Za-z_][A-Za-z0-9_\-]{0,63})[ \t]{0,8}:[ \t]{0,8})"
               r"(['\"]?)([^\s'\",;=]+)"),
)


def mask_message(text: str) -> str:
    """A message safe to show: URL credentials, secret query parameters, webhook ids and
    ``token=…`` / ``api_key: …`` style assignments masked; whitespace collapsed; at most
    ERROR_CHARS characters (masked before cut, so a cut never exposes part of a secret)."""
    text = mask(text)  # secret values from the environment, URL credentials

    def _one(m: re.Match[str]) -> str:
        if secret_assignment(m.group(2), m.group(4)):
            return f"{m.group(1)}{m.group(3)}****"
        return m.group(0)

    for pattern in _ASSIGNS:
        text = pattern.sub(_one, text)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
