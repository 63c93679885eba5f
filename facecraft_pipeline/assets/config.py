"""The assets' config classes come from `facecraft_pipeline.config` (shared with the resources)."""

from facecraft_pipeline.config import config_class, to_settings

__all__ = ["config_class", "to_settings"]
