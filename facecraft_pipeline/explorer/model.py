"""Which generator the explorer shows: resolved from an MLflow model URI or a checkpoint path.

Depends only on `facecraft_pipeline.gan.load_generator` and the generator contract:
`.latent_dim`, `.resolution`, optional `.control_names`, `forward(z)` or `forward(z, controls)`
-> (N, 3, R, R) in [-1, 1]; an identity-conditioned generator (`.identity_dim > 0`) also takes
`forward(z, controls, identity)` and has `.owner.pick(z)`, `.people` (P, D) and `.people_names`.
Every failure is an `ExplorerError` with a sentence a person can act on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import torch
from torch import nn

from facecraft_pipeline import mlflow_store
from facecraft_pipeline.mlflow_store import (CHAMPION, GAN_MODEL, GAN_MODELS, TAG_CHAMPION_STEP, TAG_DAGSTER_RUN, TAG_DATA_VERSION,
                                             TAG_INPUT_PREFIX, TAG_PIPELINE_RUN, ModelUri)

DEFAULT_MODEL = str(ModelUri(GAN_MODEL, alias=CHAMPION))
CHECKPOINT_NAMES = ("checkpoint.pt", "generator.pt", "G.pt")


class ExplorerError(ValueError):
    """Bad input to the explorer (model, character, slider values, port): the message says what to do."""


@dataclass
class LoadedModel:
    uri: str
    checkpoint: Path
    generator: nn.Module
    info: dict[str, Any] = field(default_factory=dict)  # model version, MLflow run, Dagster run, dataset version

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def resolution(self) -> int:
        return int(self.generator.resolution)

    @property
    def control_names(self) -> tuple[str, ...]:
        return tuple(getattr(self.generator, "control_names", ()) or ())

    @property
    def identity_dim(self) -> int:
        """> 0 for an identity-conditioned generator (the person picker and identity slider); 0 otherwise."""
        return int(getattr(self.generator, "identity_dim", 0) or 0)

    @property
    def people_names(self) -> list[str]:
        """The people the identity slider can morph the owner into (one centroid each in `generator.people`)."""
        return list(getattr(self.generator, "people_names", []) or []) if self.identity_dim else []

    def describe(self) -> dict[str, Any]:
        return {"uri": self.uri, "checkpoint": str(self.checkpoint), "latent_dim": self.latent_dim,
                "resolution": self.resolution, "control_names": list(self.control_names),
                "identity_dim": self.identity_dim, "people": self.people_names, **self.info}

    def check_identity(self, person: Any = None, t: Any = 0.0) -> tuple[str | None, float]:
        """Validated (person, t): a name from `people_names` and t in [0, 1]; (None, 0.0) for the owner's own draw."""
        if person is None or person == "":
            return None, 0.0
        if not self.identity_dim:
            raise ExplorerError(f"this model is not identity-conditioned: it cannot morph into {person!r}")
        if person not in self.people_names:
            raise ExplorerError(f"no person {person!r} in this model: choose one of {self.people_names}")
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise ExplorerError(f"the identity slider t must be a number in [0, 1], got {t!r}") from None
        if not 0.0 <= t <= 1.0:
            raise ExplorerError(f"the identity slider t must lie in [0, 1], got {t}")
        return (person, t) if t > 0 else (None, 0.0)  # t = 0 is the owner whoever is picked: G's own draw, exactly

    def person_vector(self, person: str | None) -> np.ndarray:
        """(D,) float32 centroid of a person (zeros for None: with t = 0 the morph is the owner's own draw)."""
        if person is None:
            return np.zeros(self.identity_dim, np.float32)
        return self.generator.people[self.people_names.index(person)].detach().float().cpu().numpy()

    def check_inputs(self, latent: Any, controls: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Validated float32 (L,) latent and (C,) controls in [-1, 1]; ExplorerError otherwise."""
        try:
            z = np.asarray(latent, dtype=np.float32).reshape(-1)
            c = np.asarray([] if controls is None else controls, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ExplorerError(f"latent and controls must be lists of numbers ({error})") from None
        if z.shape[0] != self.latent_dim:
            raise ExplorerError(f"this model takes a latent of {self.latent_dim} values, got {z.shape[0]}")
        if not np.isfinite(z).all() or np.abs(z).max(initial=0) > 50:
            raise ExplorerError("latent values must be finite numbers within [-50, 50]")
        if c.shape[0] == 0 and self.control_names:
            c = np.zeros(len(self.control_names), np.float32)
        if c.shape[0] != len(self.control_names):
            raise ExplorerError(f"this model has {len(self.control_names)} controls {list(self.control_names)}, got {c.shape[0]} values")
        if not np.isfinite(c).all() or np.abs(c).max(initial=0) > 1.0 + 1e-6:
            raise ExplorerError(f"control values must lie in [-1, 1], got {c.tolist()}")
        return z, c

    @torch.no_grad()
    def forward(self, z: torch.Tensor, controls: torch.Tensor | None = None, person: torch.Tensor | None = None,
                t: torch.Tensor | None = None) -> torch.Tensor:
        """Images for latents; `person` (N, D) with `t` (N, 1) morphs a conditioned G's owner (None: G's own draw)."""
        if self.control_names and controls is None:
            controls = torch.zeros(z.shape[0], len(self.control_names), device=z.device)
        if self.identity_dim and person is not None:
            if t is None:
                raise ExplorerError("a person to morph into needs the identity slider t")
            return self.generator(z, controls, morph_identity(self.generator, z, person, t))
        return self.generator(z, controls) if self.control_names else self.generator(z)

    def render(self, latent: Any, controls: Any = None, person: Any = None, t: Any = 0.0) -> np.ndarray:
        """(R, R, 3) uint8 for one latent (and controls, and the picked person at identity slider t)."""
        z, c = self.check_inputs(latent, controls)
        person, t = self.check_identity(person, t)
        device = next(self.generator.parameters()).device
        identity = {}
        if person is not None:
            identity = {"person": torch.from_numpy(self.person_vector(person))[None].to(device), "t": torch.tensor([[t]], device=device)}
        out = self.forward(torch.from_numpy(z)[None].to(device), torch.from_numpy(c)[None].to(device) if c.size else None, **identity)
        return to_uint8(out)[0]


def morph_identity(generator: nn.Module, z: torch.Tensor, person: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The identity slider: (1 - t) * owner(z) + t * person, owner(z) the owner embedding G draws for z (G centres
    and normalises what it is given).

    One function for PyTorch and the ONNX export (the browser feeds `person` and `t`), so both morph alike.
    """
    owner = generator.owner.pick(z)
    return (1 - t) * owner + t * person.to(owner.dtype)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, R, R) in [-1, 1] -> (N, R, R, 3) uint8; the static page's JavaScript does the same sum."""
    scaled = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def tracking_uri(home_root: Path) -> str:
    return mlflow_store.store_uri(home_root, mlflow_store.configured_uri())


def _client(home_root: Path):
    uri = tracking_uri(home_root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ExplorerError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run `make demo` first, or pass a checkpoint path")
    return mlflow_store.client(uri)


def _checkpoint_in(path: Path) -> Path:
    """The generator checkpoint a path names: a file, or a training run folder (its run.json's final
    checkpoint, else the newest checkpoints/checkpoint-<step>.pt), or a folder with a checkpoint.pt."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise ExplorerError(f"no such checkpoint: {path}")
    try:
        final = json.loads((path / "run.json").read_text()).get("artifacts", {}).get("checkpoint")
        if final:
            final = Path(final)
            if final.is_absolute() and path.resolve() not in final.resolve().parents:  # a moved or copied run folder
                final = Path("checkpoints") / final.name
            if (path / final).is_file():
                return path / final
    except (OSError, ValueError, AttributeError):
        pass
    kept = sorted((path / "checkpoints").glob("checkpoint-*.pt")) or sorted(path.glob("checkpoint-*.pt"))
    if kept:
        return kept[-1]
    for name in CHECKPOINT_NAMES:
        if (path / name).is_file():
            return path / name
    raise ExplorerError(f"{path} holds no generator checkpoint (run.json, checkpoints/checkpoint-*.pt or {' / '.join(CHECKPOINT_NAMES)})")


def _version_info(client, version) -> dict[str, Any]:
    info: dict[str, Any] = {"model_name": version.name, "model_version": str(version.version),
                            "model_aliases": list(getattr(version, "aliases", []) or []), "mlflow_run_id": version.run_id}
    try:
        tags = client.get_run(version.run_id).data.tags if version.run_id else {}
    except Exception:  # noqa: BLE001 - a deleted run still leaves a usable model
        tags = {}
    info["dagster_run_id"] = tags.get(TAG_DAGSTER_RUN) or tags.get(TAG_PIPELINE_RUN)
    info["dataset_version"] = tags.get(TAG_INPUT_PREFIX + "curated_dataset")
    info["data_version"] = tags.get(TAG_DATA_VERSION)
    return info


def resolve(uri: str, home_root: Path) -> tuple[Path, dict[str, Any]]:
    """(checkpoint file, lineage info) for `models:/NAME@ALIAS`, `models:/NAME/VERSION` or a path."""
    if mlflow_store.is_model_uri(uri):
        try:
            wanted = ModelUri.parse(uri)
        except ValueError as error:
            raise ExplorerError(str(error)) from None
        client = _client(home_root)
        note, champion = None, wanted.alias == CHAMPION
        if champion and not mlflow_store.has_alias(client, wanted.name, CHAMPION):
            # No champion yet (e.g. the demo GAN draws no face the gallery can score): the newest version.
            note = f"{wanted.name} has no champion yet (the gallery names one when a model draws faces); showing its newest version"
            wanted = ModelUri(wanted.name, version="latest")
        try:
            version = mlflow_store.resolve(client, wanted)
        except LookupError as error:
            raise ExplorerError(f"{uri}: no such model version in {tracking_uri(home_root)} ({error})") from None
        source = urlparse(version.source)
        if source.scheme not in ("file", ""):
            raise ExplorerError(f"{uri} points at {version.source}; only local files can be explored")
        info = _version_info(client, version)
        if note:
            info["note"] = note
        folder = Path(unquote(source.path))
        step = (version.tags or {}).get(TAG_CHAMPION_STEP)
        if champion and step and step.isdigit():
            # the evaluation tags the champion version with the kept checkpoint that won, not always the final one
            kept = sorted((folder / "checkpoints").glob("checkpoint-*.pt"))
            winner = [p for p in kept if p.stem.split("-")[-1].isdigit() and int(p.stem.split("-")[-1]) == int(step)]
            if winner:
                info["step"] = int(step)
                return winner[0], info
        return _checkpoint_in(folder), info
    checkpoint = _checkpoint_in(Path(uri).expanduser().resolve())
    return checkpoint, _path_info(checkpoint, home_root)


def _path_info(checkpoint: Path, home_root: Path) -> dict[str, Any]:
    """For a plain path: the registered version whose source is this folder, if the store has one."""
    info: dict[str, Any] = {"model_version": None}
    try:
        client = _client(home_root)
        folders = {checkpoint.parent.resolve().as_uri(), checkpoint.parent.parent.resolve().as_uri()}  # run folder or its checkpoints/
        for name in GAN_MODELS:
            for version in mlflow_store.versions(client, name):
                if version.source.rstrip("/") in folders:
                    return _version_info(client, version)
    except Exception:  # noqa: BLE001 - lineage is a nicety for a plain path
        pass
    return info


def load(uri: str, home_root: Path, device: str = "cpu") -> LoadedModel:
    from facecraft_pipeline.gan import load_generator

    checkpoint, info = resolve(uri, home_root)
    try:
        generator = load_generator(checkpoint, device)
    except Exception as error:  # noqa: BLE001 - any loader failure is an incompatible model to the user
        raise ExplorerError(f"cannot load a generator from {checkpoint}: {type(error).__name__}: {str(error)[:300]}") from None
    for needed in ("latent_dim", "resolution"):
        if not isinstance(getattr(generator, needed, None), int):
            raise ExplorerError(f"{checkpoint}: the generator has no integer .{needed}; not a FaceCraft generator")
    generator.eval()
    info["checkpoint_sha256"] = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    return LoadedModel(uri, checkpoint, generator, info)


def registered_versions(home_root: Path) -> list[dict[str, Any]]:
    """Every registered GAN version (newest first) as {uri, name, version, aliases}; [] without a store."""
    try:
        client = _client(home_root)
    except ExplorerError:
        return []
    rows = []
    for name in GAN_MODELS:
        try:
            versions = mlflow_store.versions(client, name)
        except Exception:  # noqa: BLE001
            continue
        for v in versions:
            rows.append({"uri": str(ModelUri(name, version=str(v.version))), "name": name, "version": str(v.version),
                         "aliases": list(getattr(v, "aliases", []) or [])})
    return rows
