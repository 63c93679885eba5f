"""Keep credentials out of every log, at every level, whoever turns logging up; what counts as a secret.

`SECRET_WORDS` is the one list of words that mark a name (an environment variable, a parameter, a
setting) as holding a secret: such parameters never reach MLflow (`lineage`), and `redact(text)`
masks the values of such environment variables, URL passwords, bearer tokens, secret header values
and URL queries (the failure report sends nothing else).

Two third-party loggers can print secrets at DEBUG:
- httpcore (`httpcore.http11`, `httpcore.http2`, ...) prints every response's headers: the
  `Location` of a OneDrive download redirect is a pre-authenticated URL, as good as a password.
- hpack (the HTTP/2 header codec under httpx's `http2=True`, which the Graph client uses) prints
  every header it encodes or decodes, including `authorization: Bearer ...` and `location`.

`install()` (idempotent; called when the Definitions, the CLI or a OneDrive client load) sets
those loggers no lower than WARNING, and adds a filter to each that survives anyone lowering
the level again (e.g. "every logger at DEBUG"): hpack/h2 records are dropped below WARNING, and
httpcore/httpx records go through `redact` (Authorization, Location, Cookie header values; bearer
tokens; URL query strings such as `tempauth=`; URL passwords; secret environment values). Filters
on a logger apply only to records made by that very logger, hence the explicit list of names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from facecraft_pipeline.env import process_env

SECRET_WORDS = ("password", "token", "secret", "credential", "authorization", "webhook", "api_key")

# Every logger those libraries create (httpcore: one per module; hpack: hpack.hpack, hpack.table).
DROPPED = ("hpack", "hpack.hpack", "hpack.table", "hpack.huffman", "h2", "h2.connection", "hyperframe")
REDACTED = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
            "httpcore.proxy", "httpcore.socks", "httpcore.connection_pool")

_SECRET_HEADERS = r"(?:authorization|proxy-authorization|location|content-location|cookie|set-cookie)"
_PATTERNS = (
    # (b'Location', b'https://...') as httpcore prints header lists
    (re.compile(rb"(?i)(\(b['\"]" + _SECRET_HEADERS.encode() + rb"['\"],\s*)b(['\"]).*?\2\)"), rb"\1b'[redacted]')"),
    (re.compile(rb"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), rb"\1[redacted]"),
    (re.compile(rb"(?i)(https?://[^\s'\"?]+)\?[^\s'\"]*"), rb"\1?[redacted]"),
)


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter or setting called `name` holds a secret (any of SECRET_WORDS, any case)."""
    return any(word in name.lower() for word in SECRET_WORDS)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of secret-named environment variables (6 characters or more), longest first."""
    env = process_env() if env is None else env
    return sorted({v for k, v in env.items() if v and len(v) >= 6 and is_secret_name(k)}, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with what may be a credential masked: header values, bearer tokens, URL queries, URL
    passwords, and the values of secret-named environment variables."""
    data = text.encode("utf-8", "surrogateescape")
    for pattern, replacement in _PATTERNS:
        data = pattern.sub(replacement, data)
    text = data.decode("utf-8", "surrogateescape")
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    for value in secret_values(env):
        text = text.replace(value, "***")
    return text


class _DropDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: say nothing rather than something secret
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        return True


_DROP, _REDACT = _DropDebug(), _Redact()
_LEVELS_BEFORE: dict[str, int] = {}


def install() -> None:
    """Quiet and filter the loggers named above; safe to call any number of times."""
    for name in (*DROPPED, *REDACTED):
        _LEVELS_BEFORE.setdefault(name, logging.getLogger(name).level)
    for name in DROPPED:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
        if _DROP not in logger.filters:
            logger.addFilter(_DROP)
    for name in REDACTED:
        logger = logging.getLogger(name)
        if name.startswith("httpcore") and logger.level < logging.INFO:
            logger.setLevel(logging.INFO)  # httpcore says nothing above DEBUG
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def uninstall() -> None:
    """Undo `install` (tests use it to show what would leak without it)."""
    for name in (*DROPPED, *REDACTED):
        logger = logging.getLogger(name)
        logger.removeFilter(_DROP)
        logger.removeFilter(_REDACT)
        if name in _LEVELS_BEFORE:
            logger.setLevel(_LEVELS_BEFORE.pop(name))
