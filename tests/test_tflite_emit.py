"""The emitted .tflite networks compute what the IR says: float within 1e-4 of a numpy
reference, int8 within quantisation tolerance, both in ai_edge_litert."""

import numpy as np
import pytest

from latency_models.tables.signature import spec_blocks
from latency_models.tflite.emit import emit_block, emit_spec, random_images
from latency_models.tflite.reference import forward
from latency_models.tflite.runtime import make_interpreter, run
from latency_models.tflite.weights import random_weights
from search_spaces import SPACES, get_space
from search_spaces.zoo import get

RESOLUTION = 64  # small inputs keep the numpy reference quick; strides and shapes still vary


def float_error(spec, seed=0, count=2):
    weights = random_weights(spec, seed)
    images = random_images((spec.resolution, spec.resolution, spec.in_channels), count, seed + 100)
    reference = forward(spec, weights, images)
    output = run(emit_spec(spec, weights), images)
    return np.abs(output - reference).max() / max(1.0, np.abs(reference).max())


def int8_agreement(spec, seed=0):
    weights = random_weights(spec, seed)
    shape = (spec.resolution, spec.resolution, spec.in_channels)
    model = emit_spec(spec, weights, precision="int8", calibration=random_images(shape, 8, seed + 1))
    images = random_images(shape, 4, seed + 2)
    reference, output = forward(spec, weights, images), run(model, images)
    error = np.abs(output - reference).max() / np.abs(reference).max()
    return error, np.corrcoef(output.ravel(), reference.ravel())[0, 1]


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_specs_of_every_space_match_the_reference(name, seed):
    space = get_space(name, num_classes=10)
    spec = space.materialize(space.sample(np.random.default_rng(seed)), resolution=RESOLUTION)
    assert float_error(spec, seed) < 1e-4


@pytest.mark.parametrize("name", sorted(SPACES))
def test_proxy_specs_match_the_reference(name):
    space = get_space(name, num_classes=10, in_channels=1)
    spec = space.materialize(space.sample(np.random.default_rng(5)), resolution=28, proxy=True)
    assert float_error(spec) < 1e-4


@pytest.mark.parametrize(
    "name", ["mobilenet_v1_0.5", "mobilenet_v3_small_1.0", "mnasnet_a1", "fbnet_a", "efficientnet_lite0"]
)
def test_zoo_models_match_the_reference(name):
    """Zoo models add what the spaces lack: dwsep, sigmoid SE gates, grouped 1x1 convs."""
    assert float_error(get(name, resolution=RESOLUTION, num_classes=10)) < 1e-4


def test_full_resolution_network_matches_the_reference():
    space = get_space("mbv3")
    spec = space.materialize(space.sample(np.random.default_rng(3)), resolution=224)
    assert float_error(spec, count=1) < 1e-4


@pytest.mark.parametrize("name", sorted(SPACES))
def test_int8_networks_agree_within_quantisation_tolerance(name):
    """Tolerance: the worst output error below 5% of the output's range, and outputs that
    correlate above 0.999 with the float reference (int8 steps accumulate over ~20 layers)."""
    space = get_space(name, num_classes=10)
    spec = space.materialize(space.sample(np.random.default_rng(11)), resolution=RESOLUTION)
    error, correlation = int8_agreement(spec)
    assert error < 0.05 and correlation > 0.999


def test_int8_model_is_fully_integer():
    spec = get("mobilenet_v3_large_1.0", resolution=RESOLUTION, num_classes=10)
    interpreter = make_interpreter(emit_spec(spec, precision="int8"))
    details = interpreter.get_tensor_details()
    floats = [d["name"] for d in details if d["dtype"] == np.float32]
    assert floats == ["float_input", "float_output"]
    kinds = {d["dtype"] for d in details}
    assert {np.dtype(k) for k in kinds} == {np.dtype(np.float32), np.dtype(np.int8), np.dtype(np.int32)}
    weights = [d for d in details if d["name"].endswith("/kernel") and "dw" in d["name"]]
    assert weights and all(len(d["quantization_parameters"]["scales"]) > 1 for d in weights)  # per channel


def test_int8_zero_points_are_written_once_per_channel_count():
    """Every weight and bias has per-channel zero points, all 0: the reader sees each tensor's
    full vector, and the file holds one copy per distinct length, not one per tensor."""
    from latency_models.tflite.graph import schema

    spec = get("mobilenet_v3_large_1.0", resolution=RESOLUTION, num_classes=10)
    model = emit_spec(spec, precision="int8")
    for d in make_interpreter(model).get_tensor_details():
        scales, zero_points = d["quantization_parameters"]["scales"], d["quantization_parameters"]["zero_points"]
        assert len(zero_points) == len(scales)
    subgraph = schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    per_channel = {}  # zero-point vector length -> where in the file the vectors lie
    for i in range(subgraph.TensorsLength()):
        q = subgraph.Tensors(i).Quantization()
        if q is not None and q.ZeroPointLength() > 1:
            zero_points = q.ZeroPointAsNumpy()
            assert not zero_points.any()
            per_channel.setdefault(len(zero_points), set()).add(zero_points.__array_interface__["data"][0])
    assert sum(len(v) for v in per_channel.values()) == len(per_channel) >= 5


def test_every_block_of_a_space_emits_and_runs():
    space = get_space("fbnet_cifar")
    blocks = {b.key: b for c in space.covering_choices() for b in spec_blocks(space.materialize(c))}
    for block in list(blocks.values()):
        interpreter = make_interpreter(emit_block(block))
        (inp,) = interpreter.get_input_details()
        assert tuple(inp["shape"]) == (1, *block.in_shape)
        interpreter.invoke()


def test_int8_blocks_emit_and_run():
    space = get_space("mbv3")
    for block in spec_blocks(space.materialize(space.sample(np.random.default_rng(0))), "int8"):
        interpreter = make_interpreter(emit_block(block))
        assert interpreter.get_input_details()[0]["dtype"] == np.float32
        interpreter.invoke()


def test_same_seed_same_bytes():
    spec = get("mnasnet_a1", resolution=RESOLUTION)
    assert emit_spec(spec, seed=4) == emit_spec(spec, seed=4) != emit_spec(spec, seed=5)


def test_builtin_kernels_alone_compute_the_same_without_the_delegate():
    """`default_delegates=False` (benchmarks/host_delegate.py, HostBackend(xnnpack=False)) runs
    no XNNPACK piece and gives the delegated run's outputs."""
    from latency_models.measurement.host import HostBackend

    spec = get("mobilenet_v3_large_1.0", resolution=RESOLUTION, num_classes=10)
    model = emit_spec(spec)
    nodes = {
        delegates: [op["op_name"] for op in make_interpreter(model, default_delegates=delegates)._get_ops_details()]
        for delegates in (True, False)
    }
    assert "DELEGATE" in nodes[True] and "DELEGATE" not in nodes[False]
    images = random_images((RESOLUTION, RESOLUTION, 3), 2)
    assert np.abs(run(model, images) - run(model, images, default_delegates=False)).max() < 1e-4
    assert HostBackend(xnnpack=False).metadata("fp32").delegate == "none"
    assert HostBackend().metadata("fp32").delegate == "xnnpack"
