"""One prepared run that checks and measures the model half of FaceCraft on a GPU, into one folder.

    python benchmarks/gpu_check.py --out DIR                 # on the GPU machine (cuda), <= 8 min on one H100
    python benchmarks/gpu_check.py --quick --out DIR         # tiny shapes on the CPU, <= 90 s (CI runs it)

Sections, each under its own time cap, each row printed (and both files rewritten) as soon as it exists:
  1 correctness   GAN / WGAN-GP / SD LoRA steps in bf16 are finite; interrupted + resumed = uninterrupted
                  (deterministic algorithms); torch.compile gives the eager losses
  2 LoRA speed    SD-1.5 512 px batch 1/4/16, SDXL 1024 px batch 1/4: the project trainer vs diffusers'
                  example loop (img/s, ratio, peak GiB); FLUX.1 512 px: the example loop, bf16 and NF4
  3 GAN speed     DCGAN setting and WGAN-GP at 64 and 128 px, fp32 and bf16, vs the PyTorch tutorial loop
  4 faces         RetinaFace forward (batched, detection size) and the identity ResNet, device vs CPU
Writes DIR/gpu_check.md (one Markdown table) and DIR/gpu_check.json.

Imports only PyTorch, the Dagster-free libraries (gan, lora, training, faces' torch parts) and the wheels in
benchmarks/gpu_requirements.txt: never Dagster, MLflow or dlib. Weights are random; nothing is downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS: must be set before CUDA starts
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # gpucheck/, lora_train, gan_train; and this checkout's facecraft_pipeline

# import name -> what to install; the last two only for their rows (RetinaFace, NF4)
REQUIRED = {"torch": "torch", "numpy": "numpy", "PIL": "pillow", "cv2": "opencv-python-headless", "safetensors": "safetensors",
            "transformers": "transformers", "peft": "peft", "requests": "requests", "diffusers": "diffusers"}
OPTIONAL = {"torchvision": "torchvision (RetinaFace row)", "retinaface": "retinaface-pytorch (RetinaFace row)",
            "bitsandbytes": "bitsandbytes (FLUX.1 NF4 row)"}
FORBIDDEN = ("dagster", "mlflow", "dlib", "_dlib_pybind11", "face_recognition_models")
# seconds per section: the four together stay under 8 minutes on one H100 (--quick: under 90 s on 2 CPU cores)
CAPS = {"correctness": 120.0, "lora": 220.0, "gan": 75.0, "faces": 45.0}
QUICK_CAPS = {"correctness": 35.0, "lora": 30.0, "gan": 10.0, "faces": 10.0}


def missing(modules: dict[str, str]) -> list[str]:
    """What of `modules` does not import here, and why (the import is the check: a wheel may lack its own dependencies)."""
    absent = []
    for module, package in modules.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            absent.append(package if error.name == module else f"{package} (needs {error.name})")
        except Exception as error:  # noqa: BLE001 - e.g. a wheel built for another torch, an older huggingface_hub
            absent.append(f"{package} ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})")
    return absent


def forbidden_loaded() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in FORBIDDEN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.md and gpu_check.json")
    parser.add_argument("--quick", action="store_true", help="tiny shapes on the CPU (a smoke run: <= 90 s, figures mean nothing)")
    parser.add_argument("--device", default=None, help="default: cuda when available (cpu with --quick)")
    parser.add_argument("--sections", nargs="+", choices=sorted(CAPS), default=list(CAPS), help="which sections, in this order")
    parser.add_argument("--dlib-weights", type=Path, default=None,
                        help="dlib_face_recognition_resnet_model_v1.dat for the identity ResNet row (default: random weights)")
    parser.add_argument("--cap-scale", type=float, default=1.0, help="multiply every section's time cap")
    args = parser.parse_args(argv)

    absent = missing(REQUIRED)
    if absent:
        print(f"gpu_check: missing {', '.join(absent)}: install the wheels of benchmarks/gpu_requirements.txt "
              "(make gpu-wheels; see BENCHMARKS.md, 'GPU check')", file=sys.stderr)
        return 2
    optional = missing(OPTIONAL)
    if optional:
        print(f"gpu_check: not installed, their rows are skipped: {', '.join(optional)}", flush=True)

    import torch

    from gpucheck import correctness, faces_speed, gan_speed, lora_speed
    from gpucheck.report import FAIL, PASS, Report, Row

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.quick else "cpu"))
    if device.type == "cuda" and args.quick:
        print("gpu_check: --quick runs tiny shapes: the figures say nothing about this GPU", flush=True)
    report = Report(args.out, device, args.quick)
    print(f"gpu_check: {report.environment()['device']}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"writing {args.out}/gpu_check.md and .json", flush=True)
    caps = QUICK_CAPS if args.quick else CAPS
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    runs = {"correctness": lambda: correctness.run(report, device, args.quick, work / "correctness"),
            "lora": lambda: lora_speed.run(report, device, args.quick, work / "lora"),
            "gan": lambda: gan_speed.run(report, device, args.quick),
            "faces": lambda: faces_speed.run(report, device, args.quick, args.dlib_weights)}
    titles = {"correctness": correctness.SECTION, "lora": lora_speed.SECTION, "gan": gan_speed.SECTION, "faces": faces_speed.SECTION}
    try:
        for name in args.sections:
            with report.section(titles[name], caps[name] * args.cap_scale):
                runs[name]()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loaded = forbidden_loaded()
    report.add(Row("5 imports", "no Dagster, MLflow or dlib module was loaded", FAIL if loaded else PASS,
                   note=", ".join(loaded[:8]) if loaded else f"checked sys.modules for {', '.join(FORBIDDEN)}"))
    print(f"gpu_check: done: {args.out}/gpu_check.md", flush=True)
    return 1 if any(r.value == FAIL for r in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
