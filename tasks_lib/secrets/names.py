"""Which key names name a credential (``token``, ``feishuAppSecret``, ``DB_PASSWORD`` ...).

``name_class`` sorts a key into 'secret' (the name says credential), 'maybe' (a ``*_key`` name
that could be a data-structure key: the value decides), 'container' (``secrets:``,
``api_tokens:``: a collection of secrets) or '' (not a secret name). The rules are word lists
over the name split into lower-case words, so camelCase, kebab-case and dotted names agree.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["name_class", "name_words", "printable", "safe_child"]

# full (normalised) key names that always name a credential
_EXACT = frozenset(
    {
        "token", "secret", "password", "passwd", "pwd", "pass", "passphrase", "passcode",
        "api_key", "apikey", "access_key", "secret_key", "private_key", "client_secret",
        "auth_token", "access_token", "refresh_token", "session_token", "id_token",
        "webhook", "webhook_url", "hook_url", "credential", "credentials", "bearer", "dsn",
        "cookie", "cookies", "signing_key", "app_secret", "authorization",
        "secret_access_key", "private_key_pem",
        # the password variables of command-line clients (psql, mysql, redis-cli, sshpass)
        "pgpassword", "mysql_pwd", "rediscli_auth", "sshpass",
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


def name_words(name: str) -> list[str]:
    """``feishuAppSecret`` / ``X-Api-Key`` / ``db.password`` -> ``['feishu', 'app', 'secret']``."""
    return list(_words(name))


@lru_cache(maxsize=8192)
def _words(name: str) -> tuple[str, ...]:
    s = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name.strip()))
    return tuple(w for w in re.split(r"[^A-Za-z0-9]+", s.lower()) if w)


def name_class(key: object) -> str:
    """'secret' (the name says credential), 'maybe' (a `_key` name: decided by the value),
    'container' (a collection of secrets), or '' (not a secret name)."""
    if not isinstance(key, str):
        return ""
    return _class_of(key)


@lru_cache(maxsize=8192)
def _class_of(key: str) -> str:
    if _CJK_SECRET.search(key):
        return "secret"
    words = name_words(key)
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


def safe_child(key: object) -> bool:
    if not isinstance(key, str):
        return False
    words = name_words(key)
    return bool(words) and (words[-1] in _SAFE_CHILD_LAST or "_".join(words) in _SAFE_CHILD_LAST)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` safe to print: control characters (a newline, an ANSI escape) and undecodable
    bytes written as ``\\xNN`` escapes, so a hostile file or key name cannot forge lines in a
    message or drive the terminal."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group(0)) & 0xFF:02x}", text)
