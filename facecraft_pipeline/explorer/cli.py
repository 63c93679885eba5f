"""The explorer's subcommands: `facecraft explore`, `facecraft export-site DIR`, `facecraft render CHARACTER.json`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facecraft_pipeline.explorer import explorer_port
from facecraft_pipeline.explorer.model import DEFAULT_MODEL, ExplorerError


def add_commands(sub: argparse._SubParsersAction) -> None:
    model_help = f"MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION) or a checkpoint path (default {DEFAULT_MODEL})"
    explore = sub.add_parser("explore", help="the face explorer page on 127.0.0.1 (sliders, characters, mixing, gallery)")
    explore.add_argument("--model", default=DEFAULT_MODEL, help=model_help)
    explore.add_argument("--port", type=int, default=explorer_port(), help="port on 127.0.0.1 (default $FACECRAFT_EXPLORER_PORT or 8765)")
    explore.add_argument("--directions", type=int, default=8, help="GANSpace sliders to show")
    explore.set_defaults(explorer_command=_explore)
    site = sub.add_parser("export-site", help="the explorer as a static folder (ONNX in the browser; opens from file://)")
    site.add_argument("dir", type=Path)
    site.add_argument("--model", default=DEFAULT_MODEL, help=model_help)
    site.add_argument("--directions", type=int, default=8)
    site.set_defaults(explorer_command=_export_site)
    render = sub.add_parser("render", help="render a saved character JSON to a PNG")
    render.add_argument("character", type=Path)
    render.add_argument("--out", type=Path, help="PNG to write (default: beside the character)")
    render.add_argument("--scale", type=int, default=4, help="upscale factor (Lanczos) over the generator's resolution")
    render.add_argument("--model", help="override the model the character names")
    render.set_defaults(explorer_command=_render)


def run(args: argparse.Namespace) -> int:
    """Run the chosen explorer command; bad input is one line on stderr and exit status 2."""
    try:
        return args.explorer_command(args)
    except ExplorerError as error:
        print(f"facecraft {args.command}: {error}", file=sys.stderr)
        return 2


def _home() -> Path:
    from facecraft_pipeline.home import default_home

    return default_home()


def _explorer(model: str, directions: int = 8):
    from facecraft_pipeline.explorer.state import Explorer

    explorer = Explorer(_home(), n_directions=directions)
    explorer.load(model)
    return explorer


def _explore(args: argparse.Namespace) -> int:
    from facecraft_pipeline.explorer.server import make_server

    if not 0 < args.port < 65536:
        raise ExplorerError(f"--port must be 1-65535, got {args.port}")
    server = make_server(_explorer(args.model, args.directions), port=args.port)  # loads first: a bad model fails fast
    print(f"FaceCraft explorer on http://127.0.0.1:{server.server_address[1]}/  (model {args.model}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _export_site(args: argparse.Namespace) -> int:
    from facecraft_pipeline.explorer.site import build_site

    explorer = _explorer(args.model, args.directions)
    summary = build_site(explorer, args.dir, _home() / "cache" / "npm")
    print(f"static site in {summary['folder']}: open {Path(summary['folder']).resolve() / 'index.html'} "
          f"(ONNX {summary['onnx_bytes'] / 1e6:.1f} MB, onnxruntime-web {summary['ort_version']}, "
          f"{summary['characters']} characters, {summary['gallery_images']} gallery images)")
    return 0


def _render(args: argparse.Namespace) -> int:
    from PIL import Image

    from facecraft_pipeline.explorer import characters, model

    character = characters.read(args.character)
    uri = args.model or character.model.get("uri")
    if not uri:
        raise ExplorerError(f"{args.character} names no model: pass --model")
    if not 1 <= args.scale <= 16:
        raise ExplorerError(f"--scale must be 1-16, got {args.scale}")
    loaded = model.load(uri, _home())
    expected = character.model.get("checkpoint_sha256")
    if expected and expected != loaded.info.get("checkpoint_sha256") and not args.model:
        print(f"note: {uri} now resolves to another checkpoint than the one {character.name!r} was saved with", file=sys.stderr)
    pixels = loaded.render(character.latent, characters.controls_for(character, loaded))
    image = Image.fromarray(pixels)
    if args.scale > 1:
        image = image.resize((image.width * args.scale, image.height * args.scale), Image.LANCZOS)
    out = args.out or args.character.with_suffix(".png")
    image.save(out)
    print(f"{out}: {image.width}x{image.height} ({character.name}, {uri})")
    return 0
