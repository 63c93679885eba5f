"""The process environment: the one library module that reads it (FACECRAFT_*, and the few variables other tools set).

The Definitions builder (`definitions.build_definitions(profile, env)`) reads the environment once and hands the
mapping on; resources and step options read these helpers with that mapping (`env=`), never in class bodies at
import, so a test builds Definitions for any environment without touching `os.environ`. Without `env=`, the helpers
read the process environment at call time (the CLI, torchrun's variables, run-time switches). Malformed values fail
loudly, naming the variable and what it accepts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TRUE = frozenset({"1", "on", "true", "yes"})
FALSE = frozenset({"0", "off", "false", "no"})


def process_env() -> Mapping[str, str]:
    """The process environment, for whoever builds the Definitions or redacts secret values."""
    return os.environ


def set_default(name: str, value: str) -> str:
    """Set a variable for this process and its children unless already set (a library that reads it on import)."""
    return os.environ.setdefault(name, value)


def parse_bool(text: str, name: str = "value") -> bool:
    """`on/off`, `true/false`, `yes/no`, `1/0` (any case); anything else is an error naming `name`."""
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean: use one of {sorted(TRUE | FALSE)}")


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """The variable's value, or `default` when it is unset or empty."""
    return (os.environ if env is None else env).get(name) or default


def env_optional(name: str, env: Mapping[str, str] | None = None) -> str | None:
    return (os.environ if env is None else env).get(name) or None


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    raw = (os.environ if env is None else env).get(name)
    return default if raw is None or not raw.strip() else parse_bool(raw, name)


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
