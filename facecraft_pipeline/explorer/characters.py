"""Characters: a named face as small JSON (latent + controls + the model version that drew it).

For an identity-conditioned model a character may also name a `person` and the identity slider `t`
(the owner morphed towards that person); both are absent otherwise, so older files read as before.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.explorer.model import ExplorerError, LoadedModel

FORMAT = "facecraft-character/1"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


@dataclass(frozen=True)
class Character:
    name: str
    latent: list[float]
    controls: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # uri, model_name, model_version, checkpoint_sha256, latent_dim
    parents: list[str] = field(default_factory=list)
    seed: int | None = None  # the mixing seed, for a child
    person: str | None = None  # identity-conditioned models: whom the owner is morphed towards ...
    t: float = 0.0  # ... and how far (0: the owner, 1: that person)

    def to_json(self) -> dict[str, Any]:
        data = {"format": FORMAT, "name": self.name, "latent": self.latent, "controls": self.controls, "model": self.model,
                "parents": self.parents, "seed": self.seed}
        return {**data, "person": self.person, "t": self.t} if self.person is not None else data


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name.strip()):
        raise ExplorerError("a character name is 1-64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit")
    return name.strip()


def model_stamp(model: LoadedModel) -> dict[str, Any]:
    return {"uri": model.uri, "model_name": model.info.get("model_name"), "model_version": model.info.get("model_version"),
            "checkpoint_sha256": model.info.get("checkpoint_sha256"), "latent_dim": model.latent_dim,
            "resolution": model.resolution, "control_names": list(model.control_names)}


def from_json(data: Any, source: str = "character") -> Character:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExplorerError(f"{source} is not a FaceCraft character (expected \"format\": \"{FORMAT}\")")
    latent = data.get("latent")
    if not isinstance(latent, list) or not latent or not all(isinstance(v, int | float) and math.isfinite(v) for v in latent):
        raise ExplorerError(f"{source}: \"latent\" must be a non-empty list of finite numbers")
    controls = data.get("controls") or {}
    if not isinstance(controls, dict) or not all(isinstance(v, int | float) and -1 <= v <= 1 for v in controls.values()):
        raise ExplorerError(f"{source}: \"controls\" must map names to numbers in [-1, 1]")
    person, t = data.get("person") or None, data.get("t", 0.0)
    if person is not None and not isinstance(person, str):
        raise ExplorerError(f"{source}: \"person\" must be a person's name (or absent)")
    if not isinstance(t, int | float) or not 0 <= t <= 1:
        raise ExplorerError(f"{source}: \"t\" (the identity slider) must be a number in [0, 1]")
    return Character(check_name(str(data.get("name", ""))), [float(v) for v in latent], {k: float(v) for k, v in controls.items()},
                     dict(data.get("model") or {}), list(data.get("parents") or []), data.get("seed"), person,
                     float(t) if person else 0.0)


def read(path: Path) -> Character:
    path = Path(path)
    if not path.is_file():
        raise ExplorerError(f"no such character file: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExplorerError(f"{path} is not JSON ({error})") from None
    return from_json(data, str(path))


def controls_for(character: Character, model: LoadedModel) -> list[float]:
    """The character's controls in the model's order (absent ones 0); its latent must fit the model."""
    if len(character.latent) != model.latent_dim:
        made = character.model.get("uri") or "another model"
        raise ExplorerError(f"character {character.name!r} was made with {made} (latent of {len(character.latent)} values); "
                            f"{model.uri} takes {model.latent_dim}: load the model it was made with")
    return [float(character.controls.get(name, 0.0)) for name in model.control_names]


def identity_for(character: Character, model: LoadedModel) -> tuple[str | None, float]:
    """The character's (person, t), checked against the model's people (an ExplorerError names the choices)."""
    try:
        return model.check_identity(character.person, character.t)
    except ExplorerError as error:
        raise ExplorerError(f"character {character.name!r}: {error}") from None


class CharacterStore:
    """Saved characters as <folder>/<name>.json."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.json"

    def save(self, character: Character) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(character.name)
        write_json_atomic(path, character.to_json())
        return path

    def load(self, name: str) -> Character:
        path = self.path(name)
        if not path.is_file():
            raise ExplorerError(f"no saved character named {name!r}")
        return read(path)

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                rows.append(read(path).to_json())
            except ExplorerError:
                continue  # a hand-edited broken file is skipped, not fatal
        return rows
