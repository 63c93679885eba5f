"""How every library declares its settings: frozen dataclasses, each field once, with its help text.

    @dataclass(frozen=True)
    class GanSettings:
        resolution: int = setting(64, "output side in px: 32, 64, 128 or 256", choices=(32, 64, 128, 256))
        lr_g: float = setting(2e-4, "generator learning rate", minimum=0, exclusive=True)
        detector: DetectorSettings = nested(DetectorSettings, "which face detector and how hard it looks")

        def __post_init__(self) -> None:
            validate(self)   # choices / minimum / maximum declared on the fields

`validate` raises `ValueError` naming the field and the allowed values. The help text is what
`settings/dagster_config.py` puts in the Dagster launchpad; nested settings become nested config sections.
This module imports nothing of the project and nothing heavy: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
HELP = "help"


def setting(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    run_key: bool = True,
) -> Any:
    """A settings field: its default, one line of help, and optional bounds checked by `validate`.

    `exclusive` makes `minimum` strict (> instead of >=). None always passes the bounds (for
    optional fields whose None means "automatic"). `run_key=False` marks a field that changes only
    how long a training run goes or how often it writes (steps, cadences): it is left out of the
    run key, so changing it continues the same run (see `training.run_key`).
    """
    meta = {HELP: help, "choices": tuple(choices) if choices is not None else None,
            "minimum": minimum, "maximum": maximum, "exclusive": exclusive, "run_key": run_key}
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type, help: str, **defaults: Any) -> Any:
    """A field holding another settings dataclass; `defaults` override that class's own for this owner."""
    return dataclasses.field(default_factory=functools.partial(cls, **defaults), metadata={HELP: help})


def default_of(field: dataclasses.Field) -> Any:
    """A field's default value, calling its factory for nested settings."""
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return field.default


def result_fields(obj: Any) -> dict[str, Any]:
    """The settings that change what a run computes, nested, without the `run_key=False` fields."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if not f.metadata.get("run_key", True):
            continue
        value = getattr(obj, f.name)
        out[f.name] = result_fields(value) if dataclasses.is_dataclass(value) else value
    return out


def help_text(cls: type, name: str) -> str | None:
    return next((f.metadata.get(HELP) for f in dataclasses.fields(cls) if f.name == name), None)


def validate(obj: Any) -> None:
    """Check every field's declared choices and bounds; the message names the field and what is allowed."""
    owner = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meta = f.metadata
        if value is None:
            continue
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{owner}.{f.name} must be one of {list(choices)}, got {value!r}")
        low, high = meta.get("minimum"), meta.get("maximum")
        if low is not None and (value <= low if meta.get("exclusive") else value < low):
            raise ValueError(f"{owner}.{f.name} must be {'>' if meta.get('exclusive') else '>='} {low}, got {value!r}")
        if high is not None and value > high:
            raise ValueError(f"{owner}.{f.name} must be <= {high}, got {value!r}")


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain nested dict (JSON- and torch.save-safe) of a settings dataclass."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
    """Rebuild a settings dataclass from a (possibly older) dict: unknown keys are ignored, nested ones rebuilt."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        value = values[f.name]
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
            value = from_dict(kind, value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def replace_path(obj: T, dotted: str, value: Any) -> T:
    """`obj` with the field at `a.b.c` replaced (frozen dataclasses all the way down)."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})  # type: ignore[type-var]
    return dataclasses.replace(obj, **{head: replace_path(getattr(obj, head), rest, value)})  # type: ignore[type-var]


def without(values: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """`values` minus the named top-level keys (e.g. the fields that are not in a run key)."""
    return {k: v for k, v in values.items() if k not in set(names)}

