"""XLA set-up every JAX command makes before it computes: CPU devices and the compilation cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax

from common.home import nas_home

# Run folders of earlier versions kept their compiled programs here. A run folder may come from
# someone else, and these files are native executables that JAX loads without checking them
# against its key: they are never loaded (see use_compilation_cache).
RUN_FOLDER_CACHE = "xla-cache"


def configure_cpu_devices(count: int) -> None:
    """`count` host devices, set before JAX starts its backend. A CPU-only XLA runs each
    device's step on its own thread, so data parallel over devices uses every core. A count
    already in XLA_FLAGS (set by the caller's environment) is kept."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def compilation_cache_dir() -> Path:
    """This machine's cache of compiled programs: JAX_COMPILATION_CACHE_DIR where the user
    set it, else $NAS_HOME/xla-cache (see common.home)."""
    return Path(os.environ.get("JAX_COMPILATION_CACHE_DIR") or nas_home() / "xla-cache")


def use_compilation_cache(run_folder: Path) -> None:
    """Keep compiled programs in this user's own cache, so a resumed run or a second evaluation
    starts in seconds instead of recompiling for a minute or two.

    Never in a run folder: a folder handed over could carry executables filed under the keys
    of this program's steps, and JAX would run them. In a cache only this user writes, an
    entry is what this machine compiled for its key, and JAX's key is a hash of the program
    itself (its HLO), the compile options and flags, the backend and the jax and jaxlib
    versions: one program's executable is never picked up for another. The folder is made
    private (0700). An xla-cache that `run_folder` carries (an earlier version's, or one from
    elsewhere) is ignored, and one line on stderr says so. (JAX's key also holds the cache's
    own path, through the XLA cache options JAX derives from it.)"""
    cache = compilation_cache_dir()
    carried = Path(run_folder) / RUN_FOLDER_CACHE
    if carried.exists() and carried.resolve() != cache.resolve():
        print(
            f"{carried}: ignored (compiled programs are loaded only from this machine's cache, {cache}); "
            "it can be deleted",
            file=sys.stderr,
        )
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return  # the user's own choice, which JAX reads itself
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache.absolute()))
    if not os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
