import os
from pathlib import Path

import pytest

# Published measurements live beside the checkout (../shared/latency-data); they are not copied
# into the project. NAS_LATENCY_DATA points elsewhere.
LATENCY_DATA = Path(os.environ.get("NAS_LATENCY_DATA", Path(__file__).resolve().parents[2] / "shared" / "latency-data"))


@pytest.fixture
def latency_data() -> Path:
    if not LATENCY_DATA.is_dir():
        pytest.skip(f"published latency data not found at {LATENCY_DATA}")
    return LATENCY_DATA
