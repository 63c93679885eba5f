"""The gallery tab: the newest evaluation gallery and the LoRA samples, read defensively.

The evaluation's output format is being reworked, so nothing here assumes more than "a folder
under <data root>/galleries/ with PNGs, maybe a gallery.json and a gallery.md". Whatever cannot
be read becomes a warning, never an exception.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def newest_gallery(home_root: Path) -> Path | None:
    root = Path(home_root) / "galleries"
    folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return max(folders, key=lambda p: p.stat().st_mtime) if folders else None


def _lora_prompt(home_root: Path) -> str | None:
    """The instance prompt of the newest LoRA run (run.json of a training run folder; older lora_training.json)."""
    facts = sorted([*Path(home_root).glob("models/lora_weights/*/run.json"), *Path(home_root).glob("models/lora_weights/*/lora_training.json")],
                   key=lambda p: p.stat().st_mtime)
    for path in reversed(facts):
        try:
            settings = json.loads(path.read_text()).get("settings", {})
            if settings.get("instance_prompt"):
                return str(settings["instance_prompt"])
        except (OSError, ValueError, AttributeError):
            continue
    return None


def read_gallery(home_root: Path) -> dict[str, Any]:
    """{folder, champion, reason, models (score rows), markdown, images, lora {prompt, images}, warnings}.

    Image paths are relative to the gallery folder (served under /gallery/ or copied into the site).
    """
    folder = newest_gallery(home_root)
    out: dict[str, Any] = {"folder": None, "champion": None, "reason": None, "models": [], "markdown": None,
                           "images": [], "grids": [], "lora": {"prompt": None, "images": [], "captions": []}, "warnings": []}
    if folder is None:
        out["warnings"].append(f"no gallery yet under {Path(home_root) / 'galleries'}: materialize sample_galleries")
        return out
    out["folder"] = str(folder)
    data: dict[str, Any] = {}
    try:
        loaded = json.loads((folder / "gallery.json").read_text())
        data = loaded if isinstance(loaded, dict) else {}
    except FileNotFoundError:
        out["warnings"].append("gallery.json missing (gallery incomplete or in a new format)")
    except (OSError, ValueError) as error:
        out["warnings"].append(f"gallery.json unreadable: {error}")
    out["champion"], out["reason"] = data.get("champion"), data.get("reason")
    models = data.get("models")
    if isinstance(models, list):
        out["models"] = [_row(m) for m in models if isinstance(m, dict)]
    elif isinstance(models, dict):
        out["models"] = [_row({"name": k, **v}) for k, v in models.items() if isinstance(v, dict)]
    try:
        out["markdown"] = (folder / "gallery.md").read_text()[:20000]
    except (OSError, UnicodeDecodeError):
        pass
    images = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    out["images"] = images[:400]
    lora = [p for p in images if "lora" in Path(p).parts[0].lower() and len(Path(p).parts) > 1]
    steps = sorted({Path(p).parts[1] for p in lora if len(Path(p).parts) > 2})  # lora/step-0000100/p0-000.png
    if steps:
        lora = [p for p in lora if len(Path(p).parts) > 2 and Path(p).parts[1] == steps[-1]]  # the newest checkpoint's
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    listed = data.get("prompts", {}).get("lora") if isinstance(data.get("prompts"), dict) else None
    listed = [str(p) for p in listed] if isinstance(listed, list) else []
    prompts = {m.get("name"): m.get("prompt") for m in out["models"] if isinstance(m.get("prompt"), str)}
    prompt = (listed[0] if listed else None) or prompts.get("lora") or settings.get("prompt") or _lora_prompt(home_root)
    captions = []
    for rel in lora[:64]:
        match = re.match(r"^p(\d+)-", Path(rel).name)
        captions.append(listed[int(match[1])] if match and int(match[1]) < len(listed) else prompt)
    out["lora"] = {"prompt": prompt, "images": lora[:64], "captions": captions}
    grids = [m["grid"] for m in out["models"] if isinstance(m.get("grid"), str) and m["grid"] in images]
    out["grids"] = grids or [p for p in images if "/" not in p]
    if not lora:
        out["warnings"].append("no LoRA samples in the gallery")
    return out


def _row(model: dict[str, Any]) -> dict[str, Any]:
    """One score-table row: plain values only (numbers, strings), whatever the evaluation wrote."""
    return {k: v for k, v in model.items() if isinstance(v, str | int | float | bool) or v is None}
