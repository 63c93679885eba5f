"""How a local photo folder is read: file types, size limit, sub-folders and symbolic links."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import setting, validate
from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, parse_suffixes

SYMLINK_POLICIES = ("inside", "follow", "skip")


@dataclass(frozen=True)
class LocalFolderSettings:
    """What a local-folder sync takes. Files it does not take are still listed, as skipped, with the reason.

    `symlinks`: "inside" (default) follows a link only when its target lies inside the photo
    folder; "follow" also follows links that point elsewhere; "skip" follows none. Whatever the
    policy, a link is never followed into the data root (crops, datasets, models: never photos),
    and every link not followed is recorded as skipped with the reason.
    """

    suffixes: str = setting(",".join(IMAGE_SUFFIXES), "comma-separated file types to take (case-insensitive); others are listed as skipped")
    recursive: bool = setting(True, "also take the photos in sub-folders (hidden files and folders are never read)")
    max_file_mb: float = setting(200.0, "larger files (1 MB = 1,000,000 bytes) are listed as skipped", minimum=0, exclusive=True)
    symlinks: str = setting("inside", "symbolic links: 'inside' follows links whose target is inside the folder, "
                            "'follow' follows all, 'skip' none (never into the data root)", choices=SYMLINK_POLICIES)

    def __post_init__(self) -> None:
        validate(self)
        if not self.suffix_tuple():
            raise ValueError(f"LocalFolderSettings.suffixes names no file type, got {self.suffixes!r}")

    def suffix_tuple(self) -> tuple[str, ...]:
        return parse_suffixes(self.suffixes)
