"""The host backend: times .tflite models on this machine's TFLite interpreter (XNNPACK)."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latency_models.measurement.backends import BlockError, Timing
from latency_models.tables.latency_table import TableMetadata
from latency_models.tflite.runtime import make_interpreter


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_version() -> str:
    for package in ("ai-edge-litert", "tflite-runtime"):
        try:
            return f"{package} {importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


@dataclass
class HostBackend:
    """Protocol: `warmup` invokes, then `rounds` rounds of `runs` timed invokes each; the
    latency is the median of the round medians. When the round medians spread by more than
    `max_spread` (this machine is shared and noisy), the block is re-timed, up to `retries`
    times, keeping the attempt with the smallest spread. `xnnpack=False` times TFLite's builtin
    kernels alone."""

    threads: int = 1
    xnnpack: bool = True
    warmup: int = 10
    rounds: int = 5
    runs: int = 50
    max_spread: float = 0.10
    retries: int = 2

    def metadata(self, precision: str) -> TableMetadata:
        return TableMetadata(
            device="host",
            runtime="tflite",
            runtime_version=runtime_version(),
            soc=cpu_model(),
            threads=self.threads,
            delegate="xnnpack" if self.xnnpack else "none",
            precision=precision,
            date=datetime.date.today().isoformat(),
            protocol=(
                f"{self.warmup} warm-up invokes, {self.rounds} rounds x {self.runs} timed invokes, median of round "
                f"medians; re-timed (up to {self.retries}x) when round medians spread > {self.max_spread:.0%}"
            ),
            source="latency_models.measure --target host",
        )

    def time_bytes(self, model: bytes) -> Timing:
        """`time_model` for a model held in memory."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.tflite"
            path.write_bytes(model)
            return self.time_model(path)

    def time_model(self, model_path: Path) -> Timing:
        try:
            interpreter = make_interpreter(Path(model_path).read_bytes(), self.threads, default_delegates=self.xnnpack)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BlockError(f"{Path(model_path).name}: the interpreter rejected it ({exc})") from None
        (inp,) = interpreter.get_input_details()
        interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
        for _ in range(self.warmup):
            interpreter.invoke()
        best: tuple[float, np.ndarray] | None = None
        for _ in range(1 + self.retries):
            samples = np.empty((self.rounds, self.runs))
            for r in range(self.rounds):
                for i in range(self.runs):
                    start = time.perf_counter_ns()
                    interpreter.invoke()
                    samples[r, i] = (time.perf_counter_ns() - start) / 1e6
            medians = np.median(samples, axis=1)
            spread = float((medians.max() - medians.min()) / np.median(medians))
            if best is None or spread < best[0]:
                best = (spread, samples)
            if spread <= self.max_spread:
                break
        samples = best[1]
        return Timing(
            mean_ms=float(samples.mean()),
            median_ms=float(np.median(np.median(samples, axis=1))),
            std_ms=float(samples.std()),
            count=int(samples.size),
        )
