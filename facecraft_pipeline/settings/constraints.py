"""Rules between two assets' settings, declared once; checked when the Definitions are built (on the profile's
defaults) and when a run's settings are resolved (the CLI's `--set`, and each asset on its actual inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NotAbove:
    """`asset.field` may not exceed `limit_asset.limit_field`, because `why`."""

    asset: str
    field: str
    limit_asset: str
    limit_field: str
    why: str

    def broken_by(self, values: Mapping[str, Mapping[str, Any]]) -> str | None:
        value = values.get(self.asset, {}).get(self.field)
        limit = values.get(self.limit_asset, {}).get(self.limit_field)
        if value is None or limit is None or value <= limit:
            return None
        return f"{self.asset}.{self.field}={value} is above {self.limit_asset}.{self.limit_field}={limit}: {self.why}"


_NEVER_UPSAMPLED = "a GAN trains on the curated dataset's images, which are never upsampled"
CONSTRAINTS = (
    NotAbove("gan_checkpoint", "resolution", "curated_dataset", "resolution", _NEVER_UPSAMPLED),
    NotAbove("wgan_gp_checkpoint", "resolution", "curated_dataset", "resolution", _NEVER_UPSAMPLED),
)


def check_constraints(values: Mapping[str, Mapping[str, Any]]) -> None:
    """`values`: asset -> its settings as a dict (those known; a rule with a side missing is not judged)."""
    broken = [message for rule in CONSTRAINTS if (message := rule.broken_by(values))]
    if broken:
        raise ValueError("; ".join(broken))
