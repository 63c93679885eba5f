"""Which Stable Diffusion base model a run uses, resolved up front and recorded plainly.

Resolving is local and cheap (no download, no weights loaded), so a run that cannot
get its base model offline fails at once with a message saying what to do.
"""

from __future__ import annotations

import json
import re
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from facecraft_pipeline.env import env_optional
from facecraft_pipeline.lora.tiny_sd import (
    MARKER_FILE,
    TINY,
    TINY_DESCRIPTION,
    TINY_XL,
    TINY_XL_DESCRIPTION,
    build_tiny_sd,
    build_tiny_sdxl,
    is_tiny_sd_folder,
)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
FAMILIES = ("auto", "sd", "sdxl")  # sd: SD 1.x/2.x (StableDiffusionPipeline); sdxl: StableDiffusionXLPipeline
if TYPE_CHECKING:  # diffusers loads lazily: importing this package stays cheap for Dagster
    from diffusers import StableDiffusionPipeline

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class BaseModelUnavailable(OSError):
    """The base model is neither on disk nor downloadable right now."""


@dataclass(frozen=True)
class BaseModel:
    """What a run used, said plainly: the user's spec, what was loaded, and whether it is real."""

    spec: str
    location: str
    is_tiny_random: bool
    description: str
    family: str = "sd"  # "sd" (SD 1.x/2.x) or "sdxl"

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"

    @property
    def is_single_file(self) -> bool:
        """Loaded with `from_single_file` (an original-format .safetensors/.ckpt file or URL)."""
        return _is_url(self.location) or self.location.lower().endswith(SINGLE_FILE_SUFFIXES)

    @property
    def is_hub_id(self) -> bool:
        return not self.is_single_file and not Path(self.location).exists() and bool(_HUB_ID.match(self.location))


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    env = (env_optional("HF_HUB_OFFLINE") or env_optional("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return constants.HF_HUB_OFFLINE or env in {"1", "ON", "YES", "TRUE"}


def resolve_base_model(spec: str, cache_dir: Path, family: str = "auto") -> BaseModel:
    """Turn "tiny", "tiny-sdxl", a local folder, a hub id or a single checkpoint file/URL into a `BaseModel`.

    `family` "auto" reads it from the folder's model_index.json, a single file's tensor names, or
    (for a hub id not cached yet) "xl" in its name; "sd" or "sdxl" says it outright.
    """
    base = _resolve(spec.strip(), Path(cache_dir))
    chosen = family if family != "auto" else detect_family(base)
    return dataclasses.replace(base, family=chosen)


def detect_family(base: BaseModel) -> str:
    """"sdxl" or "sd", read cheaply (no weights loaded)."""
    location = base.location
    index: Path | None = None
    if not base.is_single_file and Path(location).is_dir():
        index = Path(location) / "model_index.json"
    elif base.is_hub_id:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, "model_index.json")
        index = Path(cached) if isinstance(cached, str) else None
    if index is not None and index.is_file():
        return "sdxl" if "XL" in json.loads(index.read_text()).get("_class_name", "") else "sd"
    if base.is_single_file and location.lower().endswith(".safetensors") and Path(location).is_file():
        from safetensors import safe_open

        try:
            with safe_open(location, "pt") as handle:  # reads the header only
                return "sdxl" if any(k.startswith("conditioner.embedders.1.") for k in handle.keys()) else "sd"
        except Exception:  # noqa: BLE001 - not a readable safetensors file: loading will say so; guess by name
            pass
    return "sdxl" if "xl" in location.lower() else "sd"


def _resolve(spec: str, cache_dir: Path) -> BaseModel:
    if spec == TINY:
        folder = build_tiny_sd(Path(cache_dir) / "tiny-sd")
        return BaseModel(spec, str(folder), True, TINY_DESCRIPTION)
    if spec == TINY_XL:
        folder = build_tiny_sdxl(Path(cache_dir) / "tiny-sdxl")
        return BaseModel(spec, str(folder), True, TINY_XL_DESCRIPTION, "sdxl")
    if _is_url(spec):
        return BaseModel(spec, spec, False, f"single-file checkpoint {spec}")
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_tiny_sd_folder(path):
            xl = json.loads((path / MARKER_FILE).read_text()).get("family") == "sdxl"
            return BaseModel(spec, str(path.resolve()), True, f"{TINY_XL_DESCRIPTION if xl else TINY_DESCRIPTION} ({path})")
        if not (path / "model_index.json").is_file():
            raise BaseModelUnavailable(f"{path} is a folder but not a diffusers pipeline (no model_index.json)")
        return BaseModel(spec, str(path.resolve()), False, f"local model folder {path}")
    if spec.lower().endswith(SINGLE_FILE_SUFFIXES):
        if not path.is_file():
            raise BaseModelUnavailable(f"single-file checkpoint {path} does not exist")
        return BaseModel(spec, str(path.resolve()), False, f"single-file checkpoint {path}")
    if _HUB_ID.match(spec):
        if hub_is_cached(spec):
            return BaseModel(spec, spec, False, f"hub model {spec} (cached)")
        if hub_offline():
            raise BaseModelUnavailable(_not_cached_message(spec))
        return BaseModel(spec, spec, False, f"hub model {spec} (downloading on first use)")
    raise ValueError(
        f"base model {spec!r} is not {TINY!r}, {TINY_XL!r}, an existing folder, a hub id like 'owner/name', "
        "or a .safetensors/.ckpt file or URL"
    )


def load_pipeline(
    base: BaseModel, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> StableDiffusionPipeline:
    """Load the base pipeline (SD or SDXL) on `device`, frozen weights in `dtype`; never touches the network when offline."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if base.is_sdxl else StableDiffusionPipeline
    offline = hub_offline()
    if base.is_hub_id and offline and not hub_is_cached(base.location):
        raise BaseModelUnavailable(_not_cached_message(base.location))
    kwargs: dict[str, object] = {"dtype": dtype}
    if offline:
        kwargs["local_files_only"] = True
    if base.is_tiny_random and not base.is_sdxl:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        if base.is_single_file:
            pipe = cls.from_single_file(base.location, **kwargs)
        else:
            pipe = cls.from_pretrained(base.location, **kwargs)
    except OSError as error:
        if base.is_hub_id and offline:
            raise BaseModelUnavailable(f"{_not_cached_message(base.location)} ({error})") from error
        if base.is_hub_id or base.is_single_file:
            where = "the local Hugging Face cache (the hub is offline: HF_HUB_OFFLINE=1)" if offline else "the hub"
            raise BaseModelUnavailable(
                f"could not load base model {base.location!r} from {where}; a single-file checkpoint also needs "
                f"its matching diffusers config from there ({error})"
            ) from error
        raise
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def hub_is_cached(repo_id: str) -> bool:
    """Whether a hub pipeline's model_index.json is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)


def _not_cached_message(location: str) -> str:
    return (
        f"base model {location!r} is not in the local Hugging Face cache and the hub is offline "
        f"(HF_HUB_OFFLINE=1): download it first (`hf download {location}`), point base_model at a "
        "local folder, or set HF_HUB_OFFLINE=0 to let the run download it"
    )


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))
