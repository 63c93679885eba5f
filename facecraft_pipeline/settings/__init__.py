"""Settings: how libraries declare them (`fields`), the named profiles (`profiles`), the cross-asset rules
(`constraints`) and, for the Dagster layer only, the launchpad config built from them (`dagster_config`).

`from facecraft_pipeline.settings import setting, nested, validate, ...` is what every library uses; this
package's `__init__` imports nothing of Dagster.
"""

from facecraft_pipeline.settings.fields import (
    HELP,
    default_of,
    from_dict,
    help_text,
    nested,
    replace_path,
    result_fields,
    setting,
    to_dict,
    validate,
    without,
)

__all__ = ["HELP", "default_of", "from_dict", "help_text", "nested", "replace_path", "result_fields", "setting", "to_dict",
           "validate", "without"]
