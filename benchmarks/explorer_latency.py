"""Explorer latency: time from a slider's input event to the new face painted, measured in the browser.

For each model shape, a generator is made through the public `train_gan` API (1 step: the weights
do not matter for speed, the architecture does), then:
  - served: `facecraft explore` in a subprocess (CPU: onnxruntime renders, the explorer's default there), the page in headless Chromium;
  - static: `export-site`'s folder opened from file:// (onnxruntime-web, wasm, 1 thread).
In the page, each sample sets slider PC1 to a new value, dispatches its `input` event and waits for
the explorer's paint callback (requestAnimationFrame after the canvas was drawn); the time is
paintedAt - event.timeStamp. Results go to benchmarks/results/explorer_latency.md.

    .venv/bin/python benchmarks/explorer_latency.py [--samples 100] [--models 64 128 128-full]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facecraft_pipeline.gan import GanSettings, train_gan  # noqa: E402
from facecraft_pipeline.settings.profiles import DEMO_DCGAN_SHAPE, FULL_GAN  # noqa: E402
from facecraft_pipeline.training.settings import RunSettings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
_ONE_STEP = {"batch_size": 2, "sample_count": 1, "ema_decay": 0.0, "run": RunSettings(steps=1)}
_FULL_SHAPE = {k: FULL_GAN[k] for k in ("resolution", "latent_dim", "base_channels", "attention_res")}
SETTINGS = {  # the demo's generator (profiles.DEMO_GAN: ConvTranspose) at 64 and 128 px, and the full profile's (profiles.FULL_GAN)
    "64": GanSettings(**DEMO_DCGAN_SHAPE, resolution=64, latent_dim=64, base_channels=32, **_ONE_STEP),
    "128": GanSettings(**DEMO_DCGAN_SHAPE, resolution=128, latent_dim=64, base_channels=32, **_ONE_STEP),
    "128-full": GanSettings(**_FULL_SHAPE, **_ONE_STEP),
}
MEASURE = """async ([n, warmup]) => {
  const input = document.querySelector('#pc-0'), out = [];
  for (let i = 0; i < n + warmup; i++) {
    const before = window.explorer.state().seq;
    input.value = ((i % 2 ? 1 : -1) * (0.5 + (i % 5) * 0.5)).toFixed(2);
    const event = new Event('input');
    input.dispatchEvent(event);
    const painted = await window.explorer.waitForPaint(before);
    if (i >= warmup) out.push(painted.paintedAt - event.timeStamp);
    await new Promise((r) => setTimeout(r, 5));
  }
  return out;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_checkpoint(name: str, folder: Path) -> Path:
    from PIL import Image

    images = []
    rng = np.random.default_rng(0)
    side = SETTINGS[name].resolution
    for i in range(4):
        path = folder / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(path)
        images.append(path)
    return train_gan(images, folder / "gan", SETTINGS[name]).artifact("checkpoint")


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"explore exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(url + "api/model", timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(values), "p90": ordered[int(0.9 * (len(ordered) - 1))], "mean": statistics.fmean(values),
            "min": ordered[0], "max": ordered[-1]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "explorer_latency.md")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from facecraft_pipeline.explorer.site import build_site
    from facecraft_pipeline.explorer.state import Explorer

    load_before = os.getloadavg()
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        home = Path(tmp) / "home"
        home.mkdir()
        npm_cache = ROOT / "data" / "cache" / "npm"
        for resolution in args.models:
            folder = Path(tmp) / f"r{resolution}"
            folder.mkdir()
            checkpoint = make_checkpoint(resolution, folder)
            port = free_port()
            env = {**os.environ, "FACECRAFT_HOME": str(home), "PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen([sys.executable, "-m", "facecraft_pipeline.cli", "explore", "--model", str(checkpoint), "--port", str(port)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                url = f"http://127.0.0.1:{port}/"
                wait_up(url, proc)
                page = browser.new_page()
                page.goto(url)
                page.evaluate("window.explorer.ready")
                served = page.evaluate(MEASURE, [args.samples, args.warmup])
                page.close()
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            explorer = Explorer(home, n_samples=1024)
            explorer.load(str(checkpoint))
            site = build_site(explorer, folder / "site", npm_cache)
            page = browser.new_page()
            page.goto((folder / "site" / "index.html").resolve().as_uri())
            page.evaluate("window.explorer.ready")
            static = page.evaluate(MEASURE, [args.samples, args.warmup])
            page.close()
            params = sum(p.numel() for p in explorer.model.generator.parameters())
            rows.append((resolution, SETTINGS[resolution], params, site["onnx_bytes"], summary(served), summary(static)))
            print(f"{resolution}: served median {summary(served)['median']:.1f} ms, static median {summary(static)['median']:.1f} ms", flush=True)
        browser.close()
    load_after = os.getloadavg()

    lines = ["# Explorer latency: slider event -> new face painted (measured in the browser)", "",
             f"Command: `.venv/bin/python benchmarks/explorer_latency.py --samples {args.samples} --models {' '.join(args.models)}` (whole run {time.time() - started:.0f} s)", "",
             f"Machine: {os.cpu_count()} CPU cores **shared with other engineers' jobs while this ran**, no GPU; Python {platform.python_version()}, "
             f"headless Debian Chromium ({CHROMIUM}), onnxruntime on the CPU with its default threads (server), onnxruntime-web 1.30 wasm, "
             f"1 thread, SIMD (static; file:// pages are not cross-origin isolated, so no wasm threads). Load average (1/5/15 min) "
             f"{'/'.join(f'{v:.1f}' for v in load_before)} before, {'/'.join(f'{v:.1f}' for v in load_after)} after: absolute numbers are noisy.", "",
             "Method: in the page, set slider PC1 to a new value, dispatch its `input` event, wait for the explorer's paint "
             "callback (the `requestAnimationFrame` after the canvas was drawn), record `paintedAt - event.timeStamp`; "
             f"{args.warmup} warm-up events, then {args.samples} measured, one at a time (5 ms apart). Served: the page POSTs the "
             "latent to `facecraft explore` (a subprocess, stdlib HTTP), onnxruntime renders (the explorer's CPU default), raw RGB comes back. Static: the exported site "
             "from file://, ONNX generator in the browser. Targets: < 50 ms median served, < 30 ms median static.", "",
             "| model | generator (latent, base channels, params) | ONNX MB | served median ms | p90 | mean | static median ms | p90 | mean |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for resolution, settings, params, onnx_bytes, s, t in rows:
        lines.append(f"| {resolution} | {settings.arch} G {settings.resolution} px, latent {settings.latent_dim}, base {settings.base_channels}"
            f"{', attention at ' + str(settings.attention_res) if settings.attention_res else ''}, {params / 1e6:.1f} M | "
                     f"{onnx_bytes / 1e6:.1f} | {s['median']:.1f} | {s['p90']:.1f} | {s['mean']:.1f} | {t['median']:.1f} | {t['p90']:.1f} | {t['mean']:.1f} |")
    lines.append("")
    for resolution, _settings, _params, _bytes, s, t in rows:
        verdict = lambda v, target: "meets" if v < target else "misses"  # noqa: E731
        lines.append(f"- {resolution}: served {verdict(s['median'], 50)} the 50 ms target ({s['median']:.1f} ms), "
                     f"static {verdict(t['median'], 30)} the 30 ms target ({t['median']:.1f} ms).")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
