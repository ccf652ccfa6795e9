"""Property tests for every search space: whatever evolution does, the result is a valid spec
that round-trips through JSON and through the predictor encoding."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import SPACES, ArchSpec, MBConv, get_space
from search_spaces.fbnet import LAYER_WIDTHS
from search_spaces.graph import count_macs

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
ALL_SPACES = sorted(SPACES)
PROPERTY = settings(max_examples=25, deadline=None)


def check_spec(space, choices):
    assert space.check(choices) == choices  # canonical and in range
    spec = space.materialize(choices)
    assert isinstance(spec, ArchSpec)  # constructing it validated it
    text = spec.to_json()
    back = ArchSpec.from_json(text)
    assert back == spec and back.to_json() == text
    assert back.content_hash() == spec.content_hash()
    assert space.materialize(choices).content_hash() == spec.content_hash()
    assert space.decode(space.encode(choices)) == choices
    return spec


@pytest.mark.parametrize("name", ALL_SPACES)
@PROPERTY
@given(seed=SEEDS)
def test_sample_mutate_crossover_give_valid_round_tripping_specs(name, seed):
    space = get_space(name)
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    for choices in (a, b, space.mutate(a, rng, rate=0.3), space.crossover(a, b, rng)):
        check_spec(space, choices)
        encoding = space.encode(choices)
        assert encoding.shape == (space.encoding_size,)
        assert set(np.unique(encoding)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", ALL_SPACES)
@PROPERTY
@given(seed=SEEDS)
def test_proxy_materialisation_downsamples_8x(name, seed):
    space = get_space(name, num_classes=10, in_channels=1)
    spec = space.materialize(space.sample(np.random.default_rng(seed)), resolution=28, proxy=True)
    assert spec.in_channels == 1 and spec.num_classes == 10
    last_spatial = [s for s in spec.shapes if s.layer.op != "global_pool" and s.out_shape[0] > 1][-1]
    assert last_spatial.out_shape[:2] == (4, 4)  # ceil(28 / 8)


def test_same_seed_same_choices():
    for name in ALL_SPACES:
        space = get_space(name)
        assert space.sample(np.random.default_rng(7)) == space.sample(np.random.default_rng(7))


def test_space_sizes():
    # Once-for-All's space: (9^2 + 9^3 + 9^4)^5 ~ 2e19 architectures per resolution and width.
    assert get_space("mbv3").size() == 7 * 2 * (9**2 + 9**3 + 9**4) ** 5
    # ProxylessNAS: 6 ops for the first block of a stage (and the 320 block), 7 elsewhere.
    assert get_space("proxyless").size() == 6**6 * 7**15
    # HW-NAS-Bench FBNet: 9 ops in each of 22 layers.
    assert get_space("fbnet").size() == 9**22 == get_space("fbnet_cifar").size()


def test_mbv3_matches_once_for_all_w12_shapes():
    """The largest w1.2 subnet has Once-for-All's channel plan: stem 24, stages 32/48/96/136/192,
    final expand 1152, feature mix 1536 (mit-han-lab/once-for-all ofa_mbv3.py, width_mult=1.2)."""
    space = get_space("mbv3")
    values = {"resolution": 224, "width": 1.2}
    for s in range(5):
        values[f"stage{s}.depth"] = 4
        for b in range(4):
            values[f"stage{s}.block{b}.kernel"] = 7
            values[f"stage{s}.block{b}.expansion"] = 6
    spec = space.materialize(space.from_values(values))
    assert spec.stem[0].out_ch == 24
    assert sorted({layer.out_ch for layer in spec.layers}) == [24, 32, 48, 96, 136, 192]
    assert spec.head[0].out_ch == 1152 and spec.classifier.in_ch == 1536
    assert len(spec.layers) == 21 and spec.shapes[-1].in_shape == (1, 1, 1536)
    se_blocks = [layer for layer in spec.layers if layer.se_ch]
    assert len(se_blocks) == 12  # stages 1, 3 and 4


def test_inactive_dimensions_are_canonical_and_ignored():
    space = get_space("mbv3")
    rng = np.random.default_rng(0)
    choices = list(space.sample(rng))
    depth_dim = [d.name for d in space.dimensions].index("stage0.depth")
    choices[depth_dim] = 0  # depth 2: blocks 2 and 3 of stage 0 are off
    hidden = [d.name for d in space.dimensions].index("stage0.block3.kernel")
    choices[hidden] = 2
    assert space.check(choices)[hidden] == 0
    assert space.materialize(space.check(choices)) == space.materialize(space.canonical(choices))


def test_mutation_rate_zero_is_identity_and_one_explores():
    space = get_space("proxyless")
    rng = np.random.default_rng(1)
    a = space.sample(rng)
    assert space.mutate(a, rng, rate=0.0) == a
    assert any(space.mutate(a, rng, rate=1.0) != a for _ in range(5))


def test_proxyless_skip_removes_blocks():
    space = get_space("proxyless")
    values = {"resolution": 224}
    for d in space.dimensions[1:]:
        values[d.name] = "skip" if "skip" in d.options else "k3_e3"
    spec = space.materialize(space.from_values(values))
    assert len(spec.layers) == 1 + 6  # first block + the one mandatory block of each stage
    assert all(isinstance(layer, MBConv) for layer in spec.layers)


def test_fbnet_shapes_match_hw_nas_bench_table():
    """Layer input sizes of HW-NAS-Bench's FBNet table (ImageNet: 112,112,56,...; CIFAR: 32,...)."""
    for name, sizes, head, classes in (
        ("fbnet", [112] * 2 + [56] * 4 + [28] * 4 + [14] * 8 + [7] * 4, 1984, 1000),
        ("fbnet_cifar", [32] * 6 + [16] * 4 + [8] * 8 + [4] * 4, 1504, 100),
    ):
        space = get_space(name)
        spec = space.materialize(space.from_values({d.name: "k3_e6" for d in space.dimensions}))
        assert [s.in_shape[0] for s in spec.shapes[1:23]] == sizes
        assert [layer.out_ch for layer in spec.layers] == list(LAYER_WIDTHS)
        assert all(layer.op == "mbconv" and layer.expand_conv for layer in spec.layers)
        assert spec.head[0].out_ch == head and spec.num_classes == classes


def test_fbnet_skip_is_identity_or_projection():
    space = get_space("fbnet")
    spec = space.materialize(space.from_values({d.name: "skip" for d in space.dimensions}))
    # The six shape-changing layers become 1x1 projections, the other sixteen identities.
    ops = [layer.op for layer in spec.layers]
    assert [i for i, op in enumerate(ops) if op == "conv"] == [1, 5, 9, 13, 17, 21]
    assert ops.count("identity") == 16
    assert count_macs(spec) > 0


def test_out_of_range_choices_are_rejected():
    space = get_space("fbnet")
    with pytest.raises(ValueError, match="layer0: option index 9"):
        space.check((9,) + (0,) * 21)
    with pytest.raises(ValueError, match="expected 22 choices"):
        space.check((0,))


def test_mbv3_reproduces_a_released_once_for_all_subnet(latency_data):
    """Choices read off the Note10 30 ms subnet's net.config materialise to exactly that network."""
    from search_spaces.ofa_config import parse_net_config

    path = latency_data / "raw" / "ofa_specialized" / "note10_lat-30ms_top1-78.4_finetune-75.net.config"
    released = parse_net_config(json.loads(path.read_text()))
    values = {"resolution": 224, "width": 1.2}
    blocks = released.layers[1:]  # after the fixed first block
    stage_of = {32: 0, 48: 1, 96: 2, 136: 3, 192: 4}
    for s in range(5):
        stage = [b for b in blocks if stage_of[b.out_ch] == s]
        values[f"stage{s}.depth"] = len(stage)
        for i, block in enumerate(stage):
            values[f"stage{s}.block{i}.kernel"] = block.kernel
            values[f"stage{s}.block{i}.expansion"] = int(block.expansion)
    space = get_space("mbv3")
    assert space.materialize(space.from_values(values)) == released.with_name("mbv3")
