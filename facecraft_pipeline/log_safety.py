"""Keep credentials out of every log, at every level, whoever turns logging up.

Two third-party loggers can print secrets at DEBUG:
- httpcore (`httpcore.http11`, `httpcore.http2`, ...) prints every response's headers: the
  `Location` of a OneDrive download redirect is a pre-authenticated URL, as good as a password.
- hpack (the HTTP/2 header codec under httpx's `http2=True`, which the Graph client uses) prints
  every header it encodes or decodes, including `authorization: Bearer ...` and `location`.

`install()` (idempotent; called when the Definitions, the CLI or a OneDrive client load) sets
those loggers no lower than WARNING, and adds a filter to each that survives anyone lowering
the level again (e.g. "every logger at DEBUG"): hpack/h2 records are dropped below WARNING, and
httpcore/httpx records are redacted (Authorization, Location, Cookie header values; bearer
tokens; URL query strings such as `tempauth=`). Filters on a logger apply only to records made by
that very logger, hence the explicit list of names.
"""

from __future__ import annotations

import logging
import re

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


def redact(text: str) -> str:
    """`text` with header values, bearer tokens and URL queries that may be credentials replaced."""
    data = text.encode("utf-8", "surrogateescape")
    for pattern, replacement in _PATTERNS:
        data = pattern.sub(replacement, data)
    return data.decode("utf-8", "surrogateescape")


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
