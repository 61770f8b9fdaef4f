"""Find plaintext secrets in configs and registry entries before they land in a snapshot.

Findings carry the key's dotted path and a kind, never the value: nothing in this module puts a
scanned value into a message, a repr or an exception.

- ``secret-key``: the key's name says credential (``token``, ``api_key``, ``feishuAppSecret``,
  ``DB_PASSWORD`` ...) and its value is a plaintext scalar (not ``${NAME}``, not a placeholder);
  also ``--token VALUE`` / ``TOKEN=value`` inside argv lists and command strings.
- ``credential-url``: a string holding a URL with ``user:password@``, a bare token as the user
  (``https://ghp_...@github.com``), a known bot webhook (Feishu/Lark, Slack, DingTalk, WeCom,
  Discord, Telegram, Teams), an apprise notification URL, or a secret-named query parameter
  (``?access_token=...``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from tasks_lib.config import _LOAD_ERRORS, _Loader, load
from tasks_lib.errors import SecretsFound

__all__ = ["Finding", "redact", "refuse_if_found", "scan", "scan_entry", "scan_text"]

SECRET_KEY = "secret-key"
CREDENTIAL_URL = "credential-url"


@dataclass(frozen=True)
class Finding:
    """A plaintext secret at ``path``. Holds no value, by design."""

    path: str
    kind: str

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


# --------------------------------------------------------------------------- key names

# full (normalised) key names that always name a credential
_EXACT = frozenset(
    {
        "token", "secret", "password", "passwd", "pwd", "pass", "passphrase", "passcode",
        "api_key", "apikey", "access_key", "secret_key", "private_key", "client_secret",
        "auth_token", "access_token", "refresh_token", "session_token", "id_token",
        "webhook", "webhook_url", "hook_url", "credential", "credentials", "bearer", "dsn",
        "cookie", "cookies", "signing_key", "app_secret", "authorization",
        "secret_access_key", "private_key_pem",
    }
)  # fmt: skip
# last word of the name that makes it a credential: db_password, tushare_token, x_api_key ...
_SECRET_LAST = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "passcode", "secret", "token",
        "credential", "credentials", "cookie", "cookies", "bearer", "authorization", "dsn",
        "webhook", "apikey", "accesskey", "secretkey", "privatekey", "privkey", "accesstoken",
        "authtoken", "apitoken", "apisecret", "appsecret", "clientsecret", "signingkey",
    }
)  # fmt: skip
# words before a `_token`/`_pass`/... suffix that mean a count, an LLM vocabulary item or a cursor
_NOT_CREDENTIAL_QUALIFIER = frozenset(
    {
        "max", "min", "num", "n", "count", "total", "limit", "eos", "bos", "pad", "unk", "sep",
        "cls", "mask", "start", "end", "stop", "special", "input", "output", "prompt",
        "completion", "reasoning", "thinking", "next", "prev", "previous", "page", "cursor",
        "continuation", "sync", "first", "last", "single", "multi", "second", "split", "bad",
        "is", "has", "use", "enable", "enabled", "require", "required", "show",
        "hide", "need", "needs", "no",
    }
)  # fmt: skip
# `<qualifier>_key` names that are credentials whatever the value looks like
_CREDENTIAL_KEY_QUALIFIER = frozenset(
    {
        "api", "access", "secret", "private", "signing", "sign", "app", "encryption", "encrypt",
        "decryption", "decrypt", "master", "license", "licence", "auth", "client", "consumer",
        "ssh", "hmac", "jwt", "session", "crypto", "cipher", "aes", "rsa", "pgp", "gpg",
        "subscription", "developer", "bot", "robot", "webhook", "hook", "shared", "psk",
        "openai", "anthropic", "deepseek", "dashscope", "tushare", "gemini", "mistral", "groq",
        "zhipu", "moonshot", "qwen", "cohere", "huggingface", "hf", "stripe", "sendgrid",
    }
)  # fmt: skip
# `<qualifier>_key` names that are data-structure keys, never credentials
_DATA_KEY_QUALIFIER = frozenset(
    {
        "primary", "foreign", "sort", "sorting", "partition", "cache", "group", "grouping",
        "dedup", "dedupe", "join", "lookup", "hash", "dict", "map", "index", "date", "time", "id",
        "config", "table", "row", "column", "col", "unique", "composite", "shard", "routing",
        "object", "bucket", "message", "order", "range", "cluster", "distribution", "dist",
        "natural", "surrogate", "candidate", "business", "parent", "child", "merge", "match",
        "field", "attribute", "attr", "property", "prop", "json", "yaml", "nested", "result",
        "target", "source", "label", "name", "display", "short", "hot", "shortcut", "keyboard",
        "escape", "redis", "kafka", "storage", "blob", "file", "entry", "record", "item",
        "metric", "series", "symbol", "ticker", "stock", "code", "idempotency",
        "secondary", "compound", "ordering", "bucketing", "clustering", "prefix", "path",
        "registry", "env", "lang", "i18n",
    }
)  # fmt: skip
# children of a secret container (``secrets:``, ``credentials:``) that are not secrets
_SAFE_CHILD_LAST = frozenset(
    {
        "user", "username", "login", "email", "mail", "account", "name", "id", "type", "kind",
        "provider", "url", "uri", "host", "hostname", "port", "endpoint", "region", "zone",
        "description", "desc", "note", "notes", "comment", "enabled", "enable", "disabled",
        "file", "path", "dir", "directory", "expires", "expiry", "expire", "expires_at",
        "created", "created_at", "updated_at", "scope", "scopes", "method", "mode", "format",
        "version", "env", "var", "variable", "source", "timeout", "retries", "schema", "database",
        "db", "bucket", "project", "tenant", "org", "organization", "channel", "chat", "group",
        "label", "tag", "tags", "required", "optional", "ttl",
    }
)  # fmt: skip
# keys whose mapping/list value is a collection of secrets
_CONTAINERS = frozenset(
    {"secrets", "secret", "credentials", "credential", "passwords", "api_keys", "apikeys",
     "access_tokens", "auth_tokens"}
)  # fmt: skip
_PLURAL_QUALIFIER = frozenset(
    {"api", "access", "auth", "bot", "app", "client", "refresh", "session", "bearer", "secret",
     "private", "signing", "github", "personal"}
)  # fmt: skip
_CJK_SECRET = re.compile(r"密码|密钥|口令|令牌|秘钥")

_CAMEL_1 = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_2 = re.compile(r"([A-Z]+)([A-Z][a-z])")


def _words(name: str) -> list[str]:
    """``feishuAppSecret`` / ``X-Api-Key`` / ``db.password`` -> ``['feishu', 'app', 'secret']``."""
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name.strip()))
    return [w for w in re.split(r"[^A-Za-z0-9]+", s.lower()) if w]


def _name_class(key: object) -> str:
    """'secret' (the name says credential), 'maybe' (a `_key` name: decided by the value),
    'container' (a collection of secrets), or '' (not a secret name)."""
    if not isinstance(key, str):
        return ""
    if _CJK_SECRET.search(key):
        return "secret"
    words = _words(key)
    if not words:
        return ""
    full = "_".join(words)
    if full in _CONTAINERS:
        return "container"
    if full in _EXACT:
        return "secret"
    last = words[-1]
    quals = words[:-1]
    if quals and not any(q in _NOT_CREDENTIAL_QUALIFIER for q in quals):
        if last in ("passwords", "secrets", "credentials"):
            return "container"  # db_passwords:, app_secrets:
        if last in ("tokens", "keys") and quals[-1] in _PLURAL_QUALIFIER:
            return "container"  # api_tokens:, bot_tokens:, api_keys:
    if len(words) >= 2 and words[-2:] in (["webhook", "url"], ["hook", "url"], ["webhook", "uri"]):
        return "secret"
    if last in _SECRET_LAST:
        if quals and any(q in _NOT_CREDENTIAL_QUALIFIER for q in quals):
            return ""
        return "secret"
    if last == "key":
        prev = words[-2] if len(words) >= 2 else ""
        if prev in _CREDENTIAL_KEY_QUALIFIER:
            return "secret"
        if prev in _DATA_KEY_QUALIFIER or any(q in _NOT_CREDENTIAL_QUALIFIER for q in quals):
            return ""
        return "maybe"
    return ""


def _safe_child(key: object) -> bool:
    if not isinstance(key, str):
        return False
    words = _words(key)
    return bool(words) and (words[-1] in _SAFE_CHILD_LAST or "_".join(words) in _SAFE_CHILD_LAST)


# --------------------------------------------------------------------------- values

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED_REF = re.compile(
    rf"\$\{{\s*(?:env:)?{_NAME}\s*(?:(:?[-=+?])((?:[^{{}}]|\{{[^{{}}]*\}})*))?\}}", re.ASCII
)
_WHOLE_REFS = [
    re.compile(rf"\$(?:env:)?{_NAME}\Z", re.ASCII),  # $NAME, $env:NAME
    re.compile(rf"%{_NAME}%\Z", re.ASCII),  # %NAME%
    re.compile(rf"(?i:env)\s*[:.]\s*{_NAME}\Z", re.ASCII),  # env:NAME, ENV.NAME
    re.compile(rf"(?i:env)\s*[\[(]\s*['\"]?{_NAME}['\"]?\s*[\])]\Z", re.ASCII),  # ENV[NAME]
    re.compile(rf"os\.environ(?:\.get)?\s*[\[(]\s*['\"]?{_NAME}['\"]?.*[\])]\Z", re.ASCII),
    re.compile(rf"%\(\s*{_NAME}\s*\)s\Z", re.ASCII),  # %(NAME)s
    re.compile(r"\{\{.*\}\}\Z|\$\{\{.*\}\}\Z|<%=?.*%>\Z", re.DOTALL),  # templates
    re.compile(r"(?:op|vault|keyring|ssm|secretsmanager|awssm|gcpsm|sops)://?\S+\Z", re.I),
]
_PLACEHOLDER_WORDS = frozenset(
    {
        "null", "none", "nil", "n/a", "na", "-", "--", "todo", "tbd", "fixme", "replace_me",
        "replace-me", "replaceme", "replace me", "placeholder", "redacted", "[redacted]",
        "<redacted>", "unset", "empty", "true", "false", "yes", "no", "on", "off", "masked",
        "hidden", "fill_me", "fill-me", "fillme", "to_be_filled", "set_me", "setme", "dummy",
        "example", "your_token_here", "your-token-here",
    }
)  # fmt: skip
_PLACEHOLDER_RES = [
    re.compile(r"<[^<>]*>\Z"),  # <your-token>
    re.compile(r"\[[^\[\]]*\]\Z"),  # [your token]
    re.compile(r"[*xX.#_\-•]+\Z"),  # ***, xxx, XXXX, ...
    re.compile(r"(?i:your)(?:[\s_\-].*)?\Z"),  # your_token, YOUR API KEY
    re.compile(r"(?i:.*[_\-\s]here)\Z"),  # token_here, put-key-here
    re.compile(
        r"(?i:(?:replace|fill|insert|put|paste|enter)[\s_\-](?:me|with|in|your|this|here).*)\Z"
    ),
    re.compile(r"(?:你的|您的|请填|请输入|填写|填入|替换).*\Z"),
]


def _is_placeholder(s: str) -> bool:
    if s.lower() in _PLACEHOLDER_WORDS:
        return True
    return any(p.match(s) for p in _PLACEHOLDER_RES)


def _is_reference(s: str) -> bool | None:
    """True: an env/secret-manager reference; False: not a reference; None: a reference whose
    default is itself plaintext (``${TOKEN:-abc123}``), which leaks the default."""
    refs = list(_BRACED_REF.finditer(s))
    if refs:
        for m in refs:
            op, default = m.group(1), m.group(2)
            if op and op.lstrip(":") in "-=+" and default and _plain_string(default.strip()):
                return None
        return True
    return any(p.match(s) for p in _WHOLE_REFS)


def _plain_string(s: str) -> bool:
    if not s or _is_placeholder(s):
        return False
    ref = _is_reference(s)
    return ref is None or ref is False


def _is_plaintext(value: object) -> bool:
    """A non-empty scalar that is neither a reference, a placeholder, nor a boolean."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (bytes, bytearray)):
        return len(value) > 0
    if isinstance(value, str):
        return _plain_string(value.strip())
    return False  # dates, timestamps


_PATHISH = re.compile(
    r"(?:~|\.{1,2})?/[^\s]*\Z|[A-Za-z]:\\\S*\Z"
    r"|[\w.\-/\\]+\.(?:pem|key|json|p12|pfx|crt|cer|der|jks|keystore|txt|gpg|asc|pub|env|ini|yaml|yml)\Z",
)


def _is_file_path(value: object) -> bool:
    """``private_key: /etc/ssl/app.key`` names a file holding a secret, not the secret."""
    return (
        isinstance(value, str) and "-----BEGIN" not in value and bool(_PATHISH.match(value.strip()))
    )


_KNOWN_TOKEN = re.compile(
    r"(?:sk-|sk_live_|sk_test_|rk_live_|pk_live_|ghp_|gho_|ghs_|ghu_|ghr_|github_pat_|glpat-"
    r"|xox[abposr]-|AKIA|ASIA|AIza|hf_|ya29\.|eyJ)[A-Za-z0-9_\-./+=]{8,}\Z"
)
_TOKENISH = re.compile(r"[A-Za-z0-9+/=_\-]{20,}\Z")
_IDENTIFIER = re.compile(r"[A-Za-z]+(?:[_\-.][A-Za-z]+)*(?:[_\-.]?v?[0-9]{1,4})?\Z")


def _looks_like_credential(value: object) -> bool:
    """For ambiguous names (``key``, ``foo_key``): does the value look like a random token?"""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    s = str(value).strip()
    if not _is_plaintext(s):
        return False
    if _KNOWN_TOKEN.match(s) or "-----BEGIN" in s:
        return True
    if not _TOKENISH.match(s) or _IDENTIFIER.match(s):
        return False
    if "/" in s and any(
        seg.isdigit() or (seg.isalpha() and seg.islower() and len(seg) >= 3) for seg in s.split("/")
    ):
        return False  # an object path such as raw/2024/01/prices
    letters = sum(c.isalpha() for c in s)
    digits = sum(c.isdigit() for c in s)
    return letters >= 2 and digits >= 2


# --------------------------------------------------------------------------- URLs

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s'\"<>`]+")
_APPRISE_SECRET_SCHEMES = frozenset(
    {"feishu", "lark", "dingtalk", "wecombot", "wxteams", "tgram", "slack", "discord", "msteams",
     "pover", "pushover", "gotify", "gotifys", "bark", "barks", "serverchan", "schan", "pushplus",
     "qq", "wxpusher", "line", "signal", "signals", "mailto", "mailtos"}
)  # fmt: skip


def _tail_plain(part: str) -> bool:
    part = unquote(part).strip().strip("/")
    return bool(part) and _plain_string(part)


def _credential_in_url(url: str) -> bool:
    url = url.rstrip(".,;:")
    for opener, closer in ("()", "[]", "{}"):  # prose around a URL: "(see https://...)"
        while url.endswith(closer) and url.count(closer) > url.count(opener):
            url = url[:-1].rstrip(".,;:")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        user, sep, password = userinfo.partition(":")
        if sep and _tail_plain(password):
            return True
        if not sep and _looks_like_credential(unquote(user)):
            return True  # https://ghp_xxx@github.com/...
    path = parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if host in ("open.feishu.cn", "open.larksuite.com") and "/hook/" in path:
        return _tail_plain(path.split("/hook/", 1)[1])
    if host == "hooks.slack.com":
        return _tail_plain(path.split("/", 2)[2] if path.count("/") >= 2 else "")
    if host == "oapi.dingtalk.com" and path.startswith("/robot/send"):
        return _tail_plain(query.get("access_token", ""))
    if host == "qyapi.weixin.qq.com" and "webhook/send" in path:
        return _tail_plain(query.get("key", ""))
    if host in ("discord.com", "discordapp.com") and "/api/webhooks/" in path:
        return _tail_plain(path.split("/api/webhooks/", 1)[1])
    if host == "api.telegram.org" and re.match(r"/bot[^/]+", path):
        return _tail_plain(path[4:].split("/", 1)[0])
    if host.endswith(".webhook.office.com") or (
        host == "outlook.office.com" and path.startswith("/webhook")
    ):
        return _tail_plain(path)
    if scheme in _APPRISE_SECRET_SCHEMES and scheme not in ("mailto", "mailtos"):
        return _tail_plain(netloc + path)
    for name, value in query.items():
        cls = _name_class(name)
        if (cls == "secret" and _tail_plain(value)) or (
            cls == "maybe" and _looks_like_credential(value)
        ):
            return True
        if name.lower() in ("sign", "signature", "sig", "key") and _looks_like_credential(value):
            return True
    return False


def _has_credential_url(s: str) -> bool:
    return "://" in s and any(_credential_in_url(m.group(0)) for m in _URL.finditer(s))


# argv flags (`--token VALUE`, `--api-key=VALUE`) and assignments (`TUSHARE_TOKEN=value`)
_FLAG = re.compile(r"--?([A-Za-z][A-Za-z0-9_\-]*)(?:=(.*))?\Z", re.DOTALL)
_INLINE_ASSIGN = re.compile(r"(?:^|(?<=\s))(?:--?)?([A-Za-z_][A-Za-z0-9_\-]*)=(\S+)")


def _secret_assignment(name: str, value: str) -> bool:
    cls = _name_class(name)
    value = value.strip().strip("'\"")
    if cls == "secret":
        return _is_plaintext(value) and not _is_file_path(value)
    if cls == "maybe":
        return _looks_like_credential(value)
    return False


def _string_has_secret(s: str) -> bool:
    """``--token=abc`` or ``TOKEN=abc`` inside a command string."""
    return "=" in s and any(
        _secret_assignment(m.group(1), m.group(2)) for m in _INLINE_ASSIGN.finditer(s)
    )


# --------------------------------------------------------------------------- paths

_SIMPLE_KEY = re.compile(r"[^\s.\[\]\"']+\Z")


def _key_part(key: object) -> str:
    text = key if isinstance(key, str) else str(key)
    if _SIMPLE_KEY.match(text):
        return text
    return "[" + json.dumps(text, ensure_ascii=False) + "]"


def _join(prefix: str, key: object) -> str:
    part = _key_part(key)
    if part.startswith("["):
        return prefix + part
    return f"{prefix}.{part}" if prefix else part


# --------------------------------------------------------------------------- scan


def _secret_by_name(key: object, value: object) -> bool:
    cls = _name_class(key)
    if cls in ("secret", "container"):
        if isinstance(value, str) and _words(str(key))[-1:] == ["dsn"]:
            if not _has_credential_url(value) and "://" in value:
                return False  # sqlite:///state/app.db, postgresql://host/db: no credential
        return _is_plaintext(value) and not _is_file_path(value)
    if cls == "maybe":
        return _looks_like_credential(value)
    return False


NONE, WEAK, ALL = "", "weak", "all"  # what a container passes down to its scalars


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
            or (inherited == ALL and _is_plaintext(value) and not _is_file_path(value))
            or (inherited == WEAK and _looks_like_credential(value))
        ):
            self.add(path, SECRET_KEY)
        elif isinstance(value, str):
            if _has_credential_url(value):
                self.add(path, CREDENTIAL_URL)
            elif _string_has_secret(value):
                self.add(path, SECRET_KEY)

    def walk(self, data: object, path: str, inherited: str) -> None:
        if isinstance(data, (list, tuple)):
            self.walk_list(data, path, inherited)
        elif isinstance(data, dict):
            if id(data) in self._seen_nodes:  # an *alias of a mapping already scanned, or a cycle
                return
            self._seen_nodes.add(id(data))
            for key, value in data.items():
                sub = _join(path, key)
                cls = _name_class(key)
                # what the value's own children inherit
                passed = inherited if inherited and not _safe_child(key) else NONE
                if cls == "container":
                    passed = ALL
                elif cls == "secret":
                    # token: [a, b] -> both; password: {prod: ..., min_length: 8} -> tokens only
                    passed = ALL if isinstance(value, (list, tuple)) else (passed or WEAK)
                if isinstance(value, (dict, list, tuple)):
                    self.walk(value, sub, passed)
                else:
                    self.scalar(
                        sub,
                        value,
                        by_name=_secret_by_name(key, value),
                        inherited=NONE if cls == "container" or _safe_child(key) else inherited,
                    )
        else:
            self.scalar(path or "(top level)", data, by_name=False, inherited=inherited)

    def walk_list(self, items: list | tuple, path: str, inherited: str) -> None:
        if id(items) in self._seen_nodes:
            return
        self._seen_nodes.add(id(items))
        flag_value_next = False
        for i, item in enumerate(items):
            sub = f"{path}[{i}]"
            if isinstance(item, (dict, list, tuple)):
                self.walk(item, sub, inherited)
                flag_value_next = False
                continue
            if flag_value_next:
                flag_value_next = False
                if _is_plaintext(item) and not (isinstance(item, str) and item.startswith("-")):
                    self.add(sub, SECRET_KEY)
                    continue
            if isinstance(item, str):
                m = _FLAG.match(item)
                if m and m.group(2) is None and _name_class(m.group(1)) == "secret":
                    flag_value_next = True  # argv: ["--token", VALUE]
                    continue
                if m and m.group(2) is not None and _secret_assignment(m.group(1), m.group(2)):
                    self.add(sub, SECRET_KEY)
                    continue
                if "=" in item and not item.startswith("-"):
                    name, _, value = item.partition("=")
                    if re.fullmatch(_NAME, name) and _secret_assignment(name, value):
                        self.add(sub, SECRET_KEY)  # env list: ["TUSHARE_TOKEN=abc"]
                        continue
            self.scalar(sub, item, by_name=False, inherited=inherited)


def scan(data: object) -> list[Finding]:
    """Plaintext secrets in loaded YAML/JSON data, in document order; never holds a value."""
    scanner = _Scanner()
    scanner.walk(data, "", NONE)
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
            key = "_".join(_words(raw))
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
        if m.group("value") and (key in last_keys or _name_class(key) == "secret"):
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
