"""One results table for a GPU check: each row printed and both files rewritten the moment it exists.

A run cut off at any point (a section's time cap, the machine taken back) still leaves a complete
`gpu_check.md` and `gpu_check.json` with every row it finished.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

PASS, FAIL, SKIPPED, CUT_OFF, ERROR = "pass", "FAIL", "skipped", "cut off", "error"


@dataclass
class Row:
    """One measurement or check. `value` is a number with `unit`, or pass/FAIL for a check."""

    section: str
    name: str
    value: float | str
    unit: str = ""
    reference: float | None = None  # the same figure for the reference loop / the CPU, in the same run
    reference_name: str = ""
    peak_gib: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if isinstance(self.value, (int, float)) and self.reference:
            return self.value / self.reference
        return None


@dataclass
class Report:
    out: Path
    device: torch.device
    quick: bool
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.write()

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"[{time.monotonic() - self.started:6.1f} s] " + _markdown_row(row), flush=True)
        self.write()
        return row

    def environment(self) -> dict[str, str]:
        cuda = self.device.type == "cuda"
        return {
            "device": torch.cuda.get_device_name(self.device) if cuda else f"CPU ({torch.get_num_threads()} torch threads)",
            "torch": torch.__version__,
            "cuda": str(torch.version.cuda) if cuda else "none (CPU run)",
            "python": platform.python_version(),
            "mode": "--quick (tiny shapes, CPU smoke run: figures mean nothing)" if self.quick else "full (real shapes)",
            "command": " ".join(["python", *sys.argv]),
        }

    def write(self) -> None:
        env = self.environment()
        body = {"environment": env, "seconds": round(time.monotonic() - self.started, 1),
                "rows": [asdict(r) | {"ratio": r.ratio} for r in self.rows]}
        (self.out / "gpu_check.json").write_text(json.dumps(body, indent=1, default=_plain) + "\n")
        lines = ["# GPU check", "", *(f"- {k}: {v}" for k, v in env.items()), f"- wall time so far: {body['seconds']} s", "",
                 "| section | row | result | unit | reference (same run) | ratio | peak GiB | note |",
                 "|---|---|---|---|---|---|---|---|", *(_markdown_row(r) for r in self.rows), ""]
        (self.out / "gpu_check.md").write_text("\n".join(lines))

    @contextlib.contextmanager
    def section(self, name: str, cap_seconds: float) -> Iterator[None]:
        """Run a section under a wall-clock cap (SIGALRM); a cut-off or crashed section leaves a row saying so."""
        started = time.monotonic()
        previous = signal.signal(signal.SIGALRM, _raise_cut_off)
        signal.setitimer(signal.ITIMER_REAL, cap_seconds)
        try:
            yield
        except SectionCutOff:
            self.add(Row(name, "section time cap reached", CUT_OFF, note=f"stopped after {cap_seconds:.0f} s; later rows not run"))
        except Exception as error:  # noqa: BLE001 - a crashed section must not lose the other sections' rows
            traceback.print_exc()
            self.add(Row(name, "section crashed", ERROR, note=_short(error)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            free_memory()
            print(f"-- section {name}: {time.monotonic() - started:.1f} s", flush=True)


class SectionCutOff(BaseException):
    """Raised by the section's alarm; a BaseException so that a row's own `except Exception` does not swallow it."""


def _raise_cut_off(signum, frame) -> None:
    raise SectionCutOff


def guarded(report: Report, section: str, name: str, run) -> Row | None:
    """One row's work; an exception becomes an `error` row with its message (the section goes on)."""
    try:
        row = run()
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        row = Row(section, name, ERROR, note=_short(error))
    finally:
        free_memory()
    return report.add(row) if row is not None else None


def free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    free_memory()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"


def _plain(value):
    return str(value)


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def _markdown_row(r: Row) -> str:
    value = r.value if isinstance(r.value, str) else _number(r.value, 3 if abs(r.value) < 10 else 1)
    reference = f"{_number(r.reference, 3 if r.reference and abs(r.reference) < 10 else 1)} ({r.reference_name})" if r.reference else ""
    ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
    cells = [r.section, r.name, value, r.unit, reference, ratio, _number(r.peak_gib), r.note.replace("|", "/")]
    return "| " + " | ".join(cells) + " |"
