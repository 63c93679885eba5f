"""Asset config generated from the libraries' settings dataclasses: one place for defaults.

The Dagster launchpad shows every field of a library's frozen settings dataclass with the active
profile's value as default; the asset turns the config back into that dataclass.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

import dagster as dg
import pydantic

from facecraft_pipeline.profiles import overrides

S = TypeVar("S")


def config_class(
    settings_cls: type, asset: str, extra: dict[str, tuple[Any, Any]] | None = None, fixed: tuple[str, ...] = ()
) -> type[dg.Config]:
    """A `dg.Config` subclass with the fields of `settings_cls` (+ `extra`, - `fixed`), profile defaults applied.

    `fixed` fields are set by the asset itself (e.g. which GAN kind it trains), not by the user.
    """
    hints = typing.get_type_hints(settings_cls)
    profile = overrides(asset)
    fields: dict[str, tuple[Any, Any]] = {}
    for field in dataclasses.fields(settings_cls):
        if field.name in fixed:
            continue
        default = profile.pop(field.name, field.default)
        fields[field.name] = (hints[field.name], pydantic.Field(default=default, description=_doc(settings_cls, field.name)))
    for name, (kind, default) in (extra or {}).items():
        fields[name] = (kind, profile.pop(name, default))
    if profile:
        raise ValueError(f"profile sets unknown fields for {asset}: {sorted(profile)}")
    name = "".join(part.title() for part in asset.split("_")) + "Config"
    return pydantic.create_model(name, __base__=dg.Config, **fields)  # type: ignore[call-overload]


def to_settings(settings_cls: type[S], config: dg.Config, **fixed: Any) -> S:
    """The library settings dataclass named by a generated config (extra fields left out)."""
    names = {field.name for field in dataclasses.fields(settings_cls)}  # type: ignore[arg-type]
    return settings_cls(**{k: v for k, v in config.model_dump().items() if k in names}, **fixed)


def _doc(settings_cls: type, name: str) -> str | None:
    """Per-field help for the launchpad, from an optional `FIELD_DOCS` dict on the settings class."""
    return getattr(settings_cls, "FIELD_DOCS", {}).get(name)
