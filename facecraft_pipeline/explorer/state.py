"""What the explorer does, without HTTP: the loaded model, its directions, rendering, mixing, characters."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from facecraft_pipeline.explorer import model as models
from facecraft_pipeline.explorer.characters import Character, CharacterStore, check_name, controls_for, from_json, model_stamp
from facecraft_pipeline.explorer.directions import Directions, find_directions
from facecraft_pipeline.explorer.model import ExplorerError, LoadedModel
from facecraft_pipeline.explorer.onnx_model import OnnxRenderer
from facecraft_pipeline.gan.mixing import mix_genes

PC_RANGE = 3.0  # direction sliders run over +-3 standard deviations of their component


RENDERERS = ("auto", "onnxruntime", "torch")
log = logging.getLogger("facecraft.explorer")


class Explorer:
    """`renderer`: how slider moves are drawn. "auto" (default): onnxruntime when the model is on the
    CPU (faster there, the same pixels within one level: `onnx_model.py`), PyTorch on cuda/mps or when
    the export fails; "onnxruntime" or "torch" to insist."""

    def __init__(self, home_root: Path, n_directions: int = 8, n_samples: int = 2048, device: str = "cpu", renderer: str = "auto"):
        if renderer not in RENDERERS:
            raise ExplorerError(f"renderer must be one of {list(RENDERERS)}, got {renderer!r}")
        self.home_root = Path(home_root)
        self.n_directions, self.n_samples, self.device, self.renderer = n_directions, n_samples, device, renderer
        self.characters = CharacterStore(self.home_root / "explorer" / "characters")
        self.lock = threading.Lock()  # one forward pass at a time; torch already uses the cores
        self.model: LoadedModel | None = None
        self.directions: Directions | None = None
        self._onnx: OnnxRenderer | None = None

    def load(self, uri: str) -> dict[str, Any]:
        loaded = models.load(uri, self.home_root, self.device)
        try:
            directions = find_directions(loaded.generator, self.n_directions, self.n_samples)
        except Exception as error:  # noqa: BLE001 - an architecture the hooks cannot read
            raise ExplorerError(f"cannot find latent directions for {uri}: {error}") from None
        onnx = self._onnx_renderer(loaded)
        with self.lock:
            self.model, self.directions, self._onnx = loaded, directions, onnx
        return self.payload()

    def _onnx_renderer(self, loaded: LoadedModel) -> OnnxRenderer | None:
        on_cpu = next(loaded.generator.parameters()).device.type == "cpu"
        if self.renderer == "torch" or (self.renderer == "auto" and not on_cpu):
            return None
        try:
            return OnnxRenderer(loaded)
        except Exception as error:  # noqa: BLE001 - an op the exporter or onnxruntime lacks
            if self.renderer == "onnxruntime":
                raise ExplorerError(f"cannot render {loaded.uri} with onnxruntime: {error}") from None
            log.warning("rendering with PyTorch: the ONNX export of %s failed (%s)", loaded.uri, error)
            return None

    @property
    def rendering_with(self) -> str:
        return "onnxruntime" if self._onnx is not None else "torch"

    def require(self) -> LoadedModel:
        if self.model is None:
            raise ExplorerError("no model loaded")
        return self.model

    def payload(self) -> dict[str, Any]:
        """The model's description and sliders, as the page (served or static) needs them."""
        model = self.require()
        assert self.directions is not None
        return {"model": model.describe(), "renderer": self.rendering_with, "stamp": model_stamp(model), "layer": self.directions.layer,
                "directions": self.directions.as_json(), "pc_range": PC_RANGE,
                "controls": [{"name": n, "min": -1.0, "max": 1.0} for n in model.control_names]}

    def render(self, latent: Any, controls: Any = None, person: Any = None, t: Any = 0.0) -> bytes:
        """RGB bytes of one face; `person` and `t` morph an identity-conditioned model's owner (the identity slider)."""
        model = self.require()
        with self.lock:
            return (self._onnx or model).render(latent, controls, person, t).tobytes()

    def save_character(self, data: Any) -> dict[str, Any]:
        model = self.require()
        if not isinstance(data, dict):
            raise ExplorerError("a character is a JSON object")
        name = check_name(str(data.get("name", "")))
        z, c = model.check_inputs(data.get("latent"), data.get("controls"))
        person, t = model.check_identity(data.get("person"), data.get("t", 0.0))
        character = Character(name, [float(v) for v in z], dict(zip(model.control_names, map(float, c), strict=True)),
                              model_stamp(model), [str(p) for p in data.get("parents") or []][:2], data.get("seed"), person, t)
        self.characters.save(character)
        return character.to_json()

    def character(self, spec: Any) -> Character:
        """A saved character by name, or a full character object (e.g. imported on the page)."""
        if isinstance(spec, str):
            return self.characters.load(spec)
        return from_json(spec)

    def mix(self, a: Any, b: Any, seed: Any) -> dict[str, Any]:
        model = self.require()
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise ExplorerError(f"the mixing seed must be a whole number, got {seed!r}") from None
        pa, pb = self.character(a), self.character(b)
        mixed = mix_genes(pa.latent, pb.latent, seed, controls_a=controls_for(pa, model), controls_b=controls_for(pb, model))
        return {"latent": mixed.latent, "controls": mixed.controls, "latent_from": mixed.latent_from,
                "parents": [pa.name, pb.name], "seed": seed}
