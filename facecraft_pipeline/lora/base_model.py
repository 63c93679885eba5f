"""Which base model (SD 1.x/2.x, SDXL or FLUX.1) a run uses, resolved up front and recorded plainly.

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
from facecraft_pipeline.lora.families import family as family_spec
from facecraft_pipeline.lora.memory import quantization_config
from facecraft_pipeline.lora.tiny_flux import TINY_FLUX, TINY_FLUX_DESCRIPTION, build_tiny_flux
from facecraft_pipeline.lora.tiny_zimage import TINY_ZIMAGE, TINY_ZIMAGE_DESCRIPTION, build_tiny_zimage

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
FLUX_COMPONENTS = {True: "black-forest-labs/FLUX.1-dev", False: "black-forest-labs/FLUX.1-schnell"}  # by guidance embedder
_FAMILY_WORDS = {"sd": "a Stable Diffusion 1.x/2.x checkpoint", "sdxl": "an SDXL checkpoint", "flux": "a FLUX.1 transformer"}
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
    family: str = "sd"  # "sd" (SD 1.x/2.x), "sdxl" or "flux"
    components: str | None = None  # a single-file FLUX.1 transformer: the pipeline (hub id or folder) of the rest

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


def resolve_base_model(spec: str, cache_dir: Path, family: str = "auto", components: str | None = None) -> BaseModel:
    """Turn "tiny", "tiny-sdxl", "tiny-flux", a local folder, a hub id or a single checkpoint file/URL into a `BaseModel`.

    `family` "auto" reads it from the folder's model_index.json, a single file's tensor names, or
    (for a hub id not cached yet) "xl"/"flux" in its name; "sd", "sdxl" or "flux" says it outright,
    but a single file whose tensors are FLUX.1's (or not) must agree with it. A single-file FLUX.1
    transformer takes its VAE, text encoders and config from `components` (default: FLUX.1-dev, or
    FLUX.1-schnell when the file has no guidance embedder).
    """
    base = _resolve(spec.strip(), Path(cache_dir))
    found = detect_family(base)
    chosen = family if family != "auto" else found
    if base.is_single_file and Path(base.location).is_file() and "flux" in (chosen, found) and chosen != found:
        raise ValueError(f"LoraSettings.base_model {spec!r} is {_FAMILY_WORDS[found]}, not {_FAMILY_WORDS[chosen]} "
                         f"(model_family={family}): pick a {chosen} file or set model_family to {found} or auto")
    if chosen == "flux" and base.is_single_file:
        components = components or FLUX_COMPONENTS[_has_guidance(base.location)]
        if _HUB_ID.match(components) and not Path(components).exists() and hub_offline() and not hub_is_cached(components):
            raise BaseModelUnavailable(f"LoraSettings.base_components: {_not_cached_message(components)}")
    return dataclasses.replace(base, family=chosen, components=components if chosen == "flux" and base.is_single_file else None)


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
        name = json.loads(index.read_text()).get("_class_name", "")
        return "flux" if name.startswith("Flux") else "zimage" if name.startswith("ZImage") else "sdxl" if "XL" in name else "sd"
    if base.is_single_file and location.lower().endswith(".safetensors") and Path(location).is_file():
        keys = _tensor_names(location)
        if keys is not None:
            if any("double_blocks." in k or k.startswith("single_transformer_blocks.") for k in keys):
                return "flux"
            return "sdxl" if any(k.startswith("conditioner.embedders.1.") for k in keys) else "sd"
    lowered = location.lower()
    return "flux" if "flux" in lowered else "zimage" if "z-image" in lowered else "sdxl" if "xl" in lowered else "sd"


def _tensor_names(location: str) -> list[str] | None:
    """A safetensors file's tensor names (header only), or None when it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(location, "pt") as handle:
            return list(handle.keys())
    except Exception:  # noqa: BLE001 - not a readable safetensors file: loading will say so
        return None


def _has_guidance(location: str) -> bool:
    """Whether a FLUX.1 transformer file has the guidance embedder of the guidance-distilled FLUX.1-dev."""
    return any("guidance_in" in k or "guidance_embedder" in k for k in _tensor_names(location) or [])


def _resolve(spec: str, cache_dir: Path) -> BaseModel:
    if spec == TINY:
        folder = build_tiny_sd(Path(cache_dir) / "tiny-sd")
        return BaseModel(spec, str(folder), True, TINY_DESCRIPTION)
    if spec == TINY_XL:
        folder = build_tiny_sdxl(Path(cache_dir) / "tiny-sdxl")
        return BaseModel(spec, str(folder), True, TINY_XL_DESCRIPTION, "sdxl")
    if spec == TINY_FLUX:
        folder = build_tiny_flux(Path(cache_dir) / "tiny-flux")
        return BaseModel(spec, str(folder), True, TINY_FLUX_DESCRIPTION, "flux")
    if spec == TINY_ZIMAGE:
        folder = build_tiny_zimage(Path(cache_dir) / "tiny-zimage")
        return BaseModel(spec, str(folder), True, TINY_ZIMAGE_DESCRIPTION, "zimage")
    if _is_url(spec):
        return BaseModel(spec, spec, False, f"single-file checkpoint {spec}")
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_tiny_sd_folder(path):
            built = json.loads((path / MARKER_FILE).read_text()).get("family", "sd")
            note = {"sdxl": TINY_XL_DESCRIPTION, "flux": TINY_FLUX_DESCRIPTION, "zimage": TINY_ZIMAGE_DESCRIPTION}.get(
                built, TINY_DESCRIPTION)
            return BaseModel(spec, str(path.resolve()), True, f"{note} ({path})")
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
        f"base model {spec!r} is not {TINY!r}, {TINY_XL!r}, {TINY_FLUX!r}, {TINY_ZIMAGE!r}, an existing folder, a hub id "
        "like 'owner/name', "
        "or a .safetensors/.ckpt file or URL"
    )


def load_pipeline(
    base: BaseModel, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, quantize: str = "none"
) -> StableDiffusionPipeline:
    """Load the base pipeline (SD, SDXL or FLUX.1) on `device`, frozen weights in `dtype` (the denoiser quantized when
    `quantize` is nf4 or float8: `memory.check_quantization` first); never touches the network when offline."""
    import diffusers

    spec = family_spec(base.family)
    cls = getattr(diffusers, spec.pipeline)
    offline = hub_offline()
    if base.is_hub_id and offline and not hub_is_cached(base.location):
        raise BaseModelUnavailable(_not_cached_message(base.location))
    kwargs: dict[str, object] = {"dtype": dtype}
    if offline:
        kwargs["local_files_only"] = True
    if base.is_tiny_random and base.family == "sd":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if quantize != "none" and base.is_single_file and base.family != "flux":
        raise ValueError(f"LoraSettings.quantize_base={quantize} is not supported for a single-file {base.family} checkpoint: "
                         "use its diffusers folder or hub id, or set quantize_base to none")
    if quantize != "none" and not base.is_single_file:  # the denoiser loaded on its own, quantized, then handed in
        model = getattr(diffusers, {"flux": "FluxTransformer2DModel", "zimage": "ZImageTransformer2DModel"}.get(
            base.family, "UNet2DConditionModel"))
        kwargs[spec.denoiser] = model.from_pretrained(
            base.location, subfolder=spec.denoiser, torch_dtype=dtype, quantization_config=quantization_config(quantize, dtype),
            **({"local_files_only": True} if offline else {}))
    try:
        if base.is_single_file and base.family == "flux":
            pipe = _flux_from_transformer_file(base, cls, kwargs, quantize)
        elif base.is_single_file:
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


def _flux_from_transformer_file(base: BaseModel, cls, kwargs: dict, quantize: str = "none"):
    """A FLUX.1 fine-tune shipped as one transformer file (BFL or diffusers keys) with the rest of `base.components`."""
    from diffusers import FluxTransformer2DModel

    components = base.components  # set by resolve_base_model
    extra = {"local_files_only": True} if "local_files_only" in kwargs else {}
    if quantize != "none":
        extra["quantization_config"] = quantization_config(quantize, kwargs["dtype"])
    transformer = FluxTransformer2DModel.from_single_file(base.location, config=components, subfolder="transformer",
                                                          torch_dtype=kwargs["dtype"], **extra)
    return cls.from_pretrained(components, transformer=transformer, **kwargs)


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
