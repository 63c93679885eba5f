"""Reading FACECRAFT_* environment variables: one place, one boolean parser.

Resources call these when the Definitions are built (`resources.*.from_env()`), never in class
bodies at import, so a test or a launcher that sets a variable before building the Definitions is
heard. Malformed values fail loudly, naming the variable and what it accepts.
"""

from __future__ import annotations

import os

TRUE = frozenset({"1", "on", "true", "yes"})
FALSE = frozenset({"0", "off", "false", "no"})


def parse_bool(text: str, name: str = "value") -> bool:
    """`on/off`, `true/false`, `yes/no`, `1/0` (any case); anything else is an error naming `name`."""
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean: use one of {sorted(TRUE | FALSE)}")


def env_str(name: str, default: str) -> str:
    """The variable's value, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def env_optional(name: str) -> str | None:
    return os.environ.get(name) or None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or not raw.strip() else parse_bool(raw, name)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
