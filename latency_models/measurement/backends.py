"""What a measurement backend is: something that times a .tflite model on one device.

The host interpreter and an Android phone over adb are the two backends; `measure` drives
either through this interface, so a new device kind is one more class, not a new command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from latency_models.tables.latency_table import TableMetadata


class BlockError(RuntimeError):
    """This one model could not be timed (it failed to load or run); other blocks may still work."""


class DeviceError(RuntimeError):
    """The device is unusable (offline, benchmark binary missing, ...): stop, keep what was measured."""


@dataclass(frozen=True)
class Timing:
    """Milliseconds per inference over `count` timed runs."""

    mean_ms: float
    median_ms: float | None
    std_ms: float | None
    count: int


class Backend(Protocol):
    def metadata(self, precision: str) -> TableMetadata:
        """Who measures: device, CPU/SoC, runtime and version, threads, delegate, protocol."""
        ...

    def time_model(self, model_path: Path) -> Timing:
        """Time one model. Raises BlockError for this model, DeviceError for the device."""
        ...
