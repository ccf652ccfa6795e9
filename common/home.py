"""The per-user folder the project keeps its own state in: $NAS_HOME, by default
~/.cache/platform-nas. What lives there (host latency tables and predictors, calibrated
profiles, compiled XLA programs) is made on this machine by this user, never handed over."""

from __future__ import annotations

import os
from pathlib import Path


def nas_home() -> Path:
    return Path(os.environ.get("NAS_HOME", Path.home() / ".cache" / "platform-nas"))
