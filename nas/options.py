"""Flags the nas commands (and the benchmarks that train or evaluate) share, each defined once
with its one default: XLA devices on a CPU-only machine, the supernet run, batch-norm
recalibration images."""

from __future__ import annotations

import argparse
import os

from common.cli import positive_int

DEFAULT_CPU_DEVICES = "auto"
DEFAULT_CALIB_IMAGES = 2000  # training images a subnet's batch norm is recalibrated on


def cpu_device_count(text: str) -> int:
    """--cpu-devices: a number of XLA host devices, or auto (one per usable core)."""
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {count}")
    return count


def add_cpu_devices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-devices",
        type=cpu_device_count,
        default=DEFAULT_CPU_DEVICES,
        help=f"XLA devices on a CPU-only machine: a number, or auto, one per usable core ({DEFAULT_CPU_DEVICES})",
    )


def add_calib_images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calib-images",
        type=positive_int,
        default=DEFAULT_CALIB_IMAGES,
        help=f"training images a subnet's batch norm is recalibrated on ({DEFAULT_CALIB_IMAGES})",
    )


def add_supernet(parser: argparse.ArgumentParser, *, required: bool, purpose: str) -> None:
    parser.add_argument("--supernet", required=required, help=f"run folder written by python -m nas.train: {purpose}")
