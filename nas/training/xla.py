"""XLA set-up every JAX command makes before it computes: CPU devices and the compilation cache."""

from __future__ import annotations

import os
from pathlib import Path

import jax


def configure_cpu_devices(count: int) -> None:
    """`count` host devices, set before JAX starts its backend. A CPU-only XLA runs each
    device's step on its own thread, so data parallel over devices uses every core. A count
    already in XLA_FLAGS (set by the caller's environment) is kept."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def use_compilation_cache(out: Path) -> None:
    """Keep compiled steps in the run folder (unless JAX_COMPILATION_CACHE_DIR says where), so
    a resumed run starts in seconds instead of recompiling for a minute or two."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    jax.config.update("jax_compilation_cache_dir", str((out / "xla-cache").absolute()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
