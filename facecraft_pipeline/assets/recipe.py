"""Assets declared at import, built with the Definitions for one profile and one environment.

`@asset_recipe(...)` stands where `@dg.asset(...)` would and keeps the function; `build(profile, env)` makes the
`dg.AssetsDefinition`: the asset's config class carries the profile's defaults (settings/profiles.py), the step
options (retry policy, Kubernetes tags: deploy.step_options) come from `env`. Nothing is read from the process at
import, so a test builds the graph for any profile and environment, and the launchpad shows the profile the code
location was built for. The function's `config` parameter gets that config class as its type (a `__signature__`,
which Dagster reads the config schema from); its body is what `@dg.asset` would run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from facecraft_pipeline.deploy import step_options
from facecraft_pipeline.settings.dagster_config import config_class

PRIORITY_TAG = "dagster/priority"  # read by Dagster's executors when more steps are ready than may run


@dataclass(frozen=True)
class AssetRecipe:
    fn: Callable[..., Any]
    group: str
    pool: str | None = None
    settings: type | None = None  # the library settings dataclass its `config` is generated from
    fixed: tuple[str, ...] = ()  # settings fields the asset sets itself (config_class's `fixed`)
    extra: Mapping[str, tuple[Any, Any, str]] | None = None  # config beside the settings (config_class's `extra`)
    priority: int = 0  # among steps waiting for a process, higher starts first (the longest training: its end is the run's)
    partitions: Callable[[Mapping[str, str]], dg.PartitionsDefinition] | None = None  # from the environment, when partitioned
    options: Mapping[str, Any] = field(default_factory=dict)  # the rest of `@dg.asset`'s keyword arguments

    @property
    def name(self) -> str:
        return self.fn.__name__

    def config_class(self, profile: str | None) -> type[dg.Config] | None:
        """The launchpad config of this asset under `profile` (None: the library defaults)."""
        if self.settings is None:
            return None
        return config_class(self.settings, self.name, profile, extra=dict(self.extra) if self.extra else None, fixed=self.fixed)

    def build(self, profile: str, env: Mapping[str, str]) -> dg.AssetsDefinition:
        config = self.config_class(profile)
        fn = self.fn if config is None else _with_config_type(self.fn, config)
        options = step_options(self.group, self.pool, env)
        if self.priority:
            options["op_tags"] = {**options["op_tags"], PRIORITY_TAG: str(self.priority)}
        if self.partitions is not None:
            options["partitions_def"] = self.partitions(env)
        return dg.asset(**options, **self.options)(fn)


def asset_recipe(group: str, pool: str | None = None, settings: type | None = None, fixed: tuple[str, ...] = (),
                 extra: Mapping[str, tuple[Any, Any, str]] | None = None, priority: int = 0,
                 partitions: Callable[[Mapping[str, str]], dg.PartitionsDefinition] | None = None,
                 **options: Any) -> Callable[[Callable[..., Any]], AssetRecipe]:
    """`@dg.asset(**options)` built later: in `group` (and `pool`), its config generated from `settings`."""
    return lambda fn: AssetRecipe(fn, group, pool, settings, fixed, extra, priority, partitions, options)


def _with_config_type(fn: Callable[..., Any], config: type[dg.Config]) -> Callable[..., Any]:
    """`fn` with its `config` parameter typed `config` (annotations resolved in `fn`'s own module)."""
    signature = inspect.signature(fn, eval_str=True)
    parameters = [p.replace(annotation=config) if p.name == "config" else p for p in signature.parameters.values()]

    @functools.wraps(fn)
    def asset_fn(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    asset_fn.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return asset_fn
