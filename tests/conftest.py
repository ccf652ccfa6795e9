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


@pytest.fixture(scope="session")
def estimator(tmp_path_factory) -> str:
    """A synthetic proxy-form estimator (top-1 rising with MACs) over the Fashion-MNIST form of mbv3
    (28 px, 1 channel, 10 classes): searches that do not depend on which supernet fitted a file."""
    import numpy as np

    from latency_models.predictor.batch import SpaceCost
    from nas.accuracy.estimator import fit, supernet_dimensions
    from nas.accuracy.scope import Scope
    from search_spaces.mbv3 import MobileNetV3Space

    space = MobileNetV3Space(num_classes=10, in_channels=1)
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(200)])
    macs = SpaceCost(space)(choices)
    top1 = 0.8 + 0.05 * np.log(macs / macs.min()) / np.log(macs.max() / macs.min())
    path = tmp_path_factory.mktemp("estimator") / "synthetic.json"
    scope = Scope("mbv3", {}, (28,), "proxy", 1, 10, "synthetic", "top-1 rising with MACs")
    info = {"synthetic": "top-1 from MACs"}
    fit(space, supernet_dimensions(space), choices, top1, steps=200, info=info, scope=scope).save(path)
    return str(path)
