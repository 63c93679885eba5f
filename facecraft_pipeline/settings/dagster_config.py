"""Asset and resource config generated from the libraries' settings dataclasses: one place for defaults and help.

The Dagster launchpad shows every field of a library's frozen settings dataclass, with the value of the
profile the Definitions are built for as default and the field's help text (declared once, with `settings.setting`) as
its description; nested settings dataclasses become nested config sections. The asset turns the
config back into that dataclass with `to_settings`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

import dagster as dg
import pydantic

from facecraft_pipeline.settings.profiles import overrides
from facecraft_pipeline.settings.fields import HELP, default_of, from_dict

S = TypeVar("S")


def config_class(
    settings_cls: type, asset: str, profile: str | None = None, extra: dict[str, tuple[Any, Any, str]] | None = None,
    fixed: tuple[str, ...] = ()
) -> type[dg.Config]:
    """A `dg.Config` subclass with the fields of `settings_cls` (+ `extra`, - `fixed`), `profile`'s defaults applied
    (None: the library defaults).

    `extra` maps a name to (type, default, help) for config that is not a field of `settings_cls`; a type that is
    itself a settings dataclass (default None: its own defaults) becomes a nested section, as nested fields do.
    `fixed` fields are set by the asset itself (e.g. which GAN kind it trains), not by the user.
    """
    changes = overrides(asset, profile) if profile is not None else {}
    name = "".join(part.title() for part in asset.split("_")) + "Config"
    model = _model(settings_cls, name, changes, fixed, dg.Config)
    if extra:
        fields = {field: _section(kind, name, field, changes, default, help) if dataclasses.is_dataclass(kind)
                  else (kind, pydantic.Field(default=changes.pop(field, default), description=help))
                  for field, (kind, default, help) in extra.items()}
        model = pydantic.create_model(model.__name__, __base__=model, **fields)  # type: ignore[call-overload]
    if changes:
        raise ValueError(f"profile {profile!r} sets unknown fields for {asset}: {sorted(changes)}")
    return model


def _model(settings_cls: type, name: str, profile: dict[str, Any], fixed: tuple[str, ...], base: type,
           defaults: Any = None) -> type:
    """One pydantic model per settings dataclass; `profile` entries are consumed as they are used.

    `defaults` is the instance whose values are the defaults (a nested field's own default).
    """
    hints = typing.get_type_hints(settings_cls)
    fields: dict[str, tuple[Any, Any]] = {}
    for field in dataclasses.fields(settings_cls):
        if field.name in fixed:
            continue
        help = field.metadata.get(HELP)
        kind = hints[field.name]
        default = getattr(defaults, field.name) if defaults is not None else default_of(field)
        if dataclasses.is_dataclass(kind):
            fields[field.name] = _section(kind, name, field.name, profile, default, help)  # type: ignore[arg-type]
            continue
        value = profile.pop(field.name, default)
        if typing.get_origin(kind) is tuple:  # Dagster config has lists, not tuples (`from_dict` turns them back)
            kind, value = list[typing.get_args(kind)[0]], list(value)  # type: ignore[index]
        fields[field.name] = (kind, pydantic.Field(default=value, description=help))
    return pydantic.create_model(name, __base__=base, **fields)  # type: ignore[call-overload]


def _section(kind: type, owner: str, field: str, profile: dict[str, Any], default: Any, help: str | None) -> tuple[Any, Any]:
    """A nested settings dataclass as a nested config section (its profile entries consumed)."""
    sub_profile = dict(profile.pop(field, {}))
    sub_name = owner.removesuffix("Config") + field.title().replace("_", "") + "Config"
    sub = _model(kind, sub_name, sub_profile, (), dg.Config, default)
    if sub_profile:
        raise ValueError(f"profile sets unknown fields in {owner}.{field}: {sorted(sub_profile)}")
    return sub, pydantic.Field(default_factory=sub, description=help)


def to_settings(settings_cls: type[S], config: dg.Config, **fixed: Any) -> S:
    """The library settings dataclass named by a generated config (extra fields left out)."""
    return from_dict(settings_cls, {**config.model_dump(), **fixed})
