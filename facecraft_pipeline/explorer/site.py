"""`facecraft export-site DIR`: the explorer as a static folder that opens from file://.

- The generator is exported to ONNX (`onnx_model.export_onnx`) and inlined as base64 in model-data.js, because file:// pages may not fetch() local files.
- onnxruntime-web comes from npm (`npm pack onnxruntime-web@ORT_VERSION`, cached in the data root),
  its wasm binary and loader inlined in ort-wasm.js and handed to ort as bytes / a blob: URL.
- Gallery PNGs are copied beside; the page's Content-Security-Policy allows no other host.
- An identity-conditioned model also ships each person's identity centroid (`people_vectors`), which
  the page feeds the graph for the identity slider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from facecraft_pipeline.explorer import gallery as galleries
from facecraft_pipeline.explorer.model import ExplorerError
from facecraft_pipeline.explorer.onnx_model import export_onnx
from facecraft_pipeline.explorer.server import STATIC, page
from facecraft_pipeline.explorer.state import Explorer

ORT_VERSION = "1.30.0"
ORT_FILES = ("dist/ort.wasm.min.js", "dist/ort-wasm-simd-threaded.wasm", "dist/ort-wasm-simd-threaded.mjs", "package.json")


def vendor_ort(cache: Path, version: str = ORT_VERSION) -> dict[str, bytes]:
    """onnxruntime-web's files needed for wasm inference, from `npm pack` (once; then from the cache)."""
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / f"onnxruntime-web-{version}.tgz"
    if not tgz.is_file():
        if shutil.which("npm") is None:
            raise ExplorerError(f"npm is needed once to fetch onnxruntime-web {version} (or place {tgz.name} in {cache})")
        done = subprocess.run(["npm", "pack", f"onnxruntime-web@{version}", "--pack-destination", str(cache), "--silent"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not tgz.is_file():
            raise ExplorerError(f"npm pack onnxruntime-web@{version} failed: {done.stderr.strip()[-500:]}")
    out: dict[str, bytes] = {}
    with tarfile.open(tgz) as archive:
        for name in ORT_FILES:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise ExplorerError(f"{tgz} lacks package/{name}")
            out[name.split("/")[-1]] = member.read()
    return out


def _js(variable: str, value: Any) -> str:
    return f"window.{variable} = {json.dumps(value, separators=(',', ':'))};\n"


def build_site(explorer: Explorer, out_dir: Path, cache: Path) -> dict[str, Any]:
    """Write the static site into out_dir (replacing a previous export there). Returns a summary."""
    model = explorer.require()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "model-data.js").is_file():
        raise ExplorerError(f"{out_dir} is not empty and not a previous export: choose an empty folder")
    onnx_bytes = export_onnx(model)
    ort = vendor_ort(cache)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "static").mkdir(parents=True)
    for name in ("app.js", "style.css"):
        shutil.copyfile(STATIC / name, out_dir / "static" / name)
    (out_dir / "static" / "ort.wasm.min.js").write_bytes(ort["ort.wasm.min.js"])
    (out_dir / "static" / "onnxruntime-web-package.json").write_bytes(ort["package.json"])
    (out_dir / "static" / "ort-wasm.js").write_text(
        _js("FACECRAFT_ORT", {"version": ORT_VERSION, "wasm": base64.b64encode(ort["ort-wasm-simd-threaded.wasm"]).decode(),
                               "mjs": ort["ort-wasm-simd-threaded.mjs"].decode()}))
    info = galleries.read_gallery(explorer.home_root)
    if info["folder"]:
        source = Path(info["folder"])
        for rel in info["images"]:
            target = out_dir / "gallery" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target)
        info["folder"] = source.name  # no local paths in a published site
    payload = explorer.payload()
    payload["model"] = {k: v for k, v in payload["model"].items() if k != "checkpoint"}
    data = {"payload": payload, "onnx": base64.b64encode(onnx_bytes).decode(), "gallery": info,
            "characters": explorer.characters.list(),  # the picked person's centroid is the ONNX graph's `person` input
            "people_vectors": [model.person_vector(name).tolist() for name in model.people_names]}
    (out_dir / "static" / "model-data.js").write_text(_js("FACECRAFT_STATIC", data))
    (out_dir / "model-data.js").write_text("// marker: this folder is a FaceCraft static export\n")
    head = "\n".join(f'<script src="static/{n}"></script>' for n in ("ort.wasm.min.js", "ort-wasm.js", "model-data.js"))
    (out_dir / "index.html").write_text(page("static", head))
    return {"folder": str(out_dir), "onnx_bytes": len(onnx_bytes), "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "ort_version": ORT_VERSION, "characters": len(data["characters"]), "gallery_images": len(info["images"])}
