import os
from pathlib import Path

import pytest

# Published measurements, committed in the repository (data/latency-data, see data/README.md).
# NAS_LATENCY_DATA points elsewhere.
LATENCY_DATA = Path(os.environ.get("NAS_LATENCY_DATA", Path(__file__).resolve().parents[1] / "data" / "latency-data"))


@pytest.fixture
def latency_data() -> Path:
    if not LATENCY_DATA.is_dir():  # part of the checkout: missing is an error, not a reason to skip
        pytest.fail(f"published latency data not found at {LATENCY_DATA}", pytrace=False)
    return LATENCY_DATA


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, pytestconfig):
    """(run folder, subprocess environment) of the tiny supernet run trained once per session
    (tests/test_train.py): read-only, copy it to change it."""
    from tests.test_train import compile_cache, environment, tiny_run

    basetemp = tmp_path_factory.getbasetemp()
    cache = compile_cache(pytestconfig, basetemp)
    return tiny_run(basetemp, cache), environment(cache)
