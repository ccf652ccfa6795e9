"""The learned latency predictor: fitting, generalisation, files, batch prediction, profiles."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from latency_models.footprint.costs import footprints
from latency_models.predictor.batch import SpaceCost, SpaceLatency
from latency_models.predictor.features import BASIS, basis
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement, PredictorError, fit
from latency_models.profiles.registry import UnknownTarget, load_predictor
from latency_models.tables.latency_table import LatencyRow, LatencyTable, TableMetadata
from latency_models.tables.signature import Block, space_blocks, spec_blocks
from search_spaces import get_space
from search_spaces.arch_spec import Conv, DWSeparable, MBConv, ResBlock
from search_spaces.graph import count_macs, count_params
from search_spaces.zoo import get

# A made-up device whose true cost is linear in the work terms (ms per unit of each term).
# ops, dense, spatial, grouped, grouped overhead, depthwise k3, k5, k7, activation bytes, elementwise, weight bytes
TRUE_COSTS = np.array([0.004, 0.012, 0.02, 0.06, 0.01, 0.05, 0.09, 0.3, 0.01, 0.03, 0.002])
OVERHEAD = 0.01


def true_ms(block):
    return float(basis(block) @ TRUE_COSTS)


def synthetic_table(blocks):
    rows = [LatencyRow(b, true_ms(b) + OVERHEAD, true_ms(b) + OVERHEAD, 0.0, 100) for b in blocks]
    return LatencyTable(TableMetadata(device="synthetic", precision="fp32"), rows)


@pytest.fixture(scope="module")
def mbv3_blocks():
    return space_blocks(get_space("mbv3"), 224)


@pytest.fixture(scope="module")
def fitted(mbv3_blocks):
    return fit(synthetic_table(mbv3_blocks), steps=1500)


def test_costs_cover_every_basis_term():
    assert len(TRUE_COSTS) == len(BASIS)


def _depthwise_terms(layer, side, channels, precision):
    work = dict(zip(BASIS, basis(Block(layer, (side, side, channels), precision))))
    return work["depthwise_macs_k3"], work["depthwise_macs_k5"]


# TFLite's int8 fast 3x3 depthwise kernel refuses a depth that is not a multiple of 8, and a
# stride-2 conv whose SAME padding starts at 0 (an even side): those MACs take the 5x5 price.
@pytest.mark.parametrize(
    "stride, side, depth, general",
    [(1, 56, 48, False), (2, 56, 48, True), (2, 7, 48, False), (1, 56, 108, True), (2, 7, 36, True)],
)
@pytest.mark.parametrize("kind", ["mbconv", "dwsep", "grouped_conv"])
def test_int8_depthwise_the_fast_3x3_kernel_refuses_is_priced_as_the_general_kernel(kind, stride, side, depth, general):
    layer = {
        "mbconv": MBConv(16, 16, 3, stride, 6.0, depth),  # the depthwise conv runs on the expanded depth
        "dwsep": DWSeparable(depth, 32, 3, stride),
        "grouped_conv": Conv(depth, depth, 3, stride, groups=depth),
    }[kind]
    k3, k5 = _depthwise_terms(layer, side, layer.in_ch, "int8")
    assert (k3 == 0) == general and (k5 == 0) != general
    # fp32 runs XNNPACK, which has no such split: always the 3x3 price, the same MACs
    assert _depthwise_terms(layer, side, layer.in_ch, "fp32") == (k3 + k5, 0.0)


def _grouped_terms(layer, side, precision):
    work = dict(zip(BASIS, basis(Block(layer, (side, side, layer.in_ch), precision))))
    return work["grouped_macs"], work["grouped_overhead_macs"]


# What a grouped conv costs beyond its MACs. fp32: each group padded to XNNPACK's 8-channel tile,
# so groups of 8, 16 or 24 channels waste nothing and a group of 4 computes a whole 8x8 tile.
# int8: one 16-MAC tile per output element and filter tap, whatever the group's width.
@pytest.mark.parametrize("width, fp32_waste", [(4, 3.0), (8, 0.0), (16, 0.0), (24, 0.0), (12, 16**2 / 12**2 - 1)])
def test_grouped_conv_overhead_per_precision(width, fp32_waste):
    groups = 8
    block = ResBlock(64, 256, 1, width * groups, bottleneck=True, groups=groups)
    conv = Conv(width * groups, width * groups, 3, 1, groups=groups)  # the same conv, on its own
    for layer in (block, conv):
        macs, overhead = _grouped_terms(layer, 14, "fp32")
        assert macs > 0 and overhead == pytest.approx(fp32_waste * macs, rel=1e-5)
        macs, overhead = _grouped_terms(layer, 14, "int8")
        assert overhead == pytest.approx(16 / width * macs, rel=1e-5)
    # a full conv has no groups to pad
    assert _grouped_terms(ResBlock(64, 256, 1, 64, bottleneck=True), 14, "int8") == (0.0, 0.0)


def test_fits_the_table(fitted, mbv3_blocks):
    predicted = fitted.block_ms(mbv3_blocks) + fitted.standalone_overhead_ms
    measured = np.array([true_ms(b) + OVERHEAD for b in mbv3_blocks])
    assert np.mean(np.abs(predicted / measured - 1) <= 0.10) >= 0.95


def test_predicts_blocks_it_never_saw(mbv3_blocks):
    """Fitted on the mbv3 blocks at 224, it prices the proxyless space's blocks and mbv3 at 160."""
    predictor = fit(synthetic_table(mbv3_blocks), steps=1500)
    unseen = [
        b
        for b in space_blocks(get_space("proxyless"), 224) + space_blocks(get_space("mbv3"), 160)
        if b.key not in {m.key for m in mbv3_blocks}
    ]
    assert len(unseen) > 100
    predicted = predictor.block_ms(unseen)
    measured = np.array([true_ms(b) for b in unseen])
    assert np.mean(np.abs(predicted / measured - 1) <= 0.25) >= 0.9


def test_work_a_table_never_timed_takes_its_kins_price(mbv3_blocks):
    """A table without 7x7 kernels (as HW-NAS-Bench's FBNet space) prices 7x7 depthwise MACs as
    5x5 ones, not at the untrained initial price, and says so in the fit's metadata."""
    no_k7 = [b for b in mbv3_blocks if getattr(b.layer, "kernel", 1) != 7]
    assert len(no_k7) < len(mbv3_blocks)
    predictor = fit(synthetic_table(no_k7), steps=300)
    costs = dict(zip(BASIS, predictor.params["log_costs"]))
    assert costs["depthwise_macs_k7"] == costs["depthwise_macs_k5"] != costs["depthwise_macs_k3"]
    assert predictor.metadata["fit"]["priced_as_kin"]["depthwise_macs_k7"] == "depthwise_macs_k5"
    # the grouped convs the mbv3 space has none of follow the full kxk convs' price
    assert costs["grouped_macs"] == costs["grouped_overhead_macs"] == costs["spatial_macs"]


def test_the_bundled_pixel3_profile_prices_7x7_kernels_like_5x5_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    predictor = load_predictor("pixel3", "fp32")
    costs = dict(zip(BASIS, predictor.params["log_costs"]))
    assert costs["depthwise_macs_k7"] == costs["depthwise_macs_k5"]
    k5, k7 = (MBConv(40, 40, kernel, 1, 6.0, 240) for kernel in (5, 7))
    assert predictor.block_ms([Block(k7, (28, 28, 40))])[0] > predictor.block_ms([Block(k5, (28, 28, 40))])[0]


def test_network_terms_calibrate_from_whole_networks(fitted):
    """Networks that run 1.3x their blocks' sum plus 0.4 ms: a few measurements recover that."""
    space = get_space("mbv3")
    rng = np.random.default_rng(0)
    specs = [space.materialize(space.sample(rng), resolution=224) for _ in range(20)]

    def network_ms(spec):
        return 1.3 * sum(true_ms(b) for b in spec_blocks(spec)) + 0.4

    calibrated = fit(
        None,
        [Measurement(s, network_ms(s)) for s in specs[:8]],
        init=fitted,
        trainable=("net_log_scale", "net_overhead", "net_costs"),
        steps=1500,
    )
    errors = [calibrated.spec_ms(s) / network_ms(s) - 1 for s in specs[8:]]
    assert np.max(np.abs(errors)) < 0.05
    assert np.allclose(calibrated.params["log_costs"], fitted.params["log_costs"])  # frozen stayed put


def test_save_load_round_trip(tmp_path, fitted):
    path = tmp_path / "p.json"
    fitted.save(path)
    loaded = LatencyPredictor.load(path)
    spec = get("mnasnet_a1")
    assert loaded.spec_ms(spec) == pytest.approx(fitted.spec_ms(spec), rel=1e-9)
    assert json.loads(path.read_text())["kind"] == "platform-nas/latency-predictor"  # JSON, not pickle
    earlier = path.read_text().replace('"platform-nas/latency-predictor"', '"latency_predictor"', 1)
    path.write_text(earlier)
    assert LatencyPredictor.load(path).spec_ms(spec) == loaded.spec_ms(spec)  # an earlier version's still reads


def test_bad_predictor_files(tmp_path, fitted):
    data = fitted.to_dict()
    data["basis"] = data["basis"][:-1]
    with pytest.raises(PredictorError, match="other features"):
        LatencyPredictor.from_dict(data)
    with pytest.raises(PredictorError, match="not a latency predictor"):
        LatencyPredictor.from_dict({"kind": "latency_table"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PredictorError, match="not JSON"):
        LatencyPredictor.load(tmp_path / "bad.json")


def test_breakdown_adds_up(fitted):
    spec = get("mobilenet_v3_large_1.0")
    parts = fitted.breakdown(spec)
    assert len(parts) == len(spec.shapes)
    assert sum(p["ms"] for p in parts) + fitted.network_overhead_ms == pytest.approx(fitted.spec_ms(spec))


@pytest.mark.parametrize("name", ["mbv3", "proxyless", "fbnet", "fbnet_cifar"])
def test_batch_prediction_equals_one_by_one(fitted, name):
    space = get_space(name)
    batch = SpaceLatency(fitted, space)
    rng = np.random.default_rng(1)
    choices = [space.sample(rng) for _ in range(100)]
    one_by_one = np.array([fitted.spec_ms(space.materialize(c)) for c in choices])
    assert np.allclose(batch(np.array(choices)), one_by_one, rtol=1e-5)


@pytest.mark.parametrize("metric", ["macs", "params"])
def test_batch_macs_and_params_equal_the_graph_counts(metric):
    space = get_space("mbv3")
    rng = np.random.default_rng(2)
    choices = [space.sample(rng) for _ in range(50)]
    count = count_macs if metric == "macs" else count_params
    exact = np.array([count(space.materialize(c)) for c in choices], dtype=np.float64)
    assert np.allclose(SpaceCost(space, metric)(np.array(choices)), exact, rtol=1e-5)


def test_bundled_profiles_load_and_disagree_sensibly():
    spec = get("mobilenet_v2_1.0")
    note10, pixel1 = load_predictor("note10").spec_ms(spec), load_predictor("pixel1").spec_ms(spec)
    assert 5 < note10 < 100 and 20 < pixel1 < 300
    assert pixel1 > note10  # a 2016 phone is slower than a 2019 one


def test_unknown_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    with pytest.raises(UnknownTarget, match="unknown target 'pixel99'.*note10"):
        load_predictor("pixel99")
    with pytest.raises(UnknownTarget, match="python -m latency_models.measure --target host"):
        load_predictor("host")
    with pytest.raises(UnknownTarget, match="no int8 profile"):
        load_predictor("pixel1", "int8")


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, env=env)


def test_predict_cli():
    result = run_cli("latency_models.predict", "--target", "note10", "--zoo", "mobilenet_v3_large_1.0", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["predicted_ms"] == pytest.approx(load_predictor("note10").spec_ms(get("mobilenet_v3_large_1.0")))
    assert len(data["blocks"]) == len(get("mobilenet_v3_large_1.0").shapes)
    costs = footprints(get("mobilenet_v3_large_1.0"))
    assert (data["costs"]["params"], data["costs"]["macs"]) == (costs[0].params, costs[0].macs)
    assert [
        (d["deployment"], d["flash_bytes"], d["arena_bytes"], d["mcunet_peak_bytes"])
        for d in data["costs"]["deployments"]
    ] == [(c.deployment, c.flash_bytes, c.arena_bytes, c.mcunet_peak_bytes) for c in costs]
    for args, message in (
        (("--target", "pixel99", "--zoo", "mnasnet_a1"), "unknown target 'pixel99'"),
        (("--target", "note10", "--zoo", "resnet"), "unknown zoo model 'resnet'"),
        (("--target", "note10", "--arch", "/nonexistent.json"), "cannot read /nonexistent.json"),
        (("--target", "note10"), "one of the arguments --arch --zoo is required"),
    ):
        result = run_cli("latency_models.predict", *args)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_predict_cli_prints_the_networks_costs(tmp_path):
    """Beside its latency, a network's params, MACs and, for each deployment, its flash, TFLM's
    arena and MCUNet's peak in KB (latency_models.footprint's figures)."""
    spec = get("mobilenet_v3_small_0.35", resolution=96)
    arch = tmp_path / "arch.json"
    arch.write_text(spec.to_json())
    result = run_cli("latency_models.predict", "--target", "note10", "--arch", str(arch))
    assert result.returncode == 0, result.stderr
    assert f"{count_params(spec) / 1e6:.3g} M params, {count_macs(spec) / 1e6:.4g} M MACs" in result.stdout
    for c in footprints(spec):
        row = re.search(rf"^{c.deployment} +(\S+) +(\S+) +(\S+)$", result.stdout, re.MULTILINE)
        expected = (c.flash_bytes / 1024, c.arena_bytes / 1024, c.mcunet_peak_bytes / 1024)
        assert tuple(float(v) for v in row.groups()) == pytest.approx(expected, abs=0.05)


def test_devices_cli_lists_profiles():
    result = run_cli("latency_models.devices", "--json")
    assert result.returncode == 0
    targets = {row["target"] for row in json.loads(result.stdout)}
    assert {"note10", "pixel1", "pixel3", "host"} <= targets


def _damage(document, edit):
    edit(document)
    return json.dumps(document).encode()


DAMAGED = {
    "not UTF-8": (lambda bundled: b"\xff\xfe{}", "not a UTF-8 text (JSON) file"),
    "nested": (lambda bundled: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "long integer": (lambda bundled: b'{"kind": ' + b"9" * 5000 + b"}", "not readable JSON"),
    "NaN price": (
        lambda bundled: _damage(bundled, lambda d: d["params"]["log_costs"].__setitem__(0, float("nan"))),
        "params.log_costs: holds a value that is not a finite number",
    ),
    "wrong shape": (lambda bundled: _damage(bundled, lambda d: d["params"]["w1"].pop()), "params.w1: shape"),
    "missing array": (lambda bundled: _damage(bundled, lambda d: d["params"].pop("b2")), "params.b2: missing"),
    "zero spread": (
        lambda bundled: _damage(bundled, lambda d: d["descriptor_std"].__setitem__(0, 0.0)),
        "descriptor_std: must be positive",
    ),
}


def _write_damaged(folder, case):
    make, message = DAMAGED[case]
    (folder / "profiles").mkdir()
    path = folder / "profiles" / "pixel1-fp32.json"
    path.write_bytes(make(json.loads(json.dumps(load_predictor("pixel1").to_dict()))))
    return path, message


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_profile_is_refused_naming_file_and_field(tmp_path, case):
    path, message = _write_damaged(tmp_path, case)
    with pytest.raises(PredictorError, match=re.escape(message)) as info:
        LatencyPredictor.load(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("case", ["not UTF-8", "NaN price"])
def test_a_damaged_user_profile_is_listed_as_damaged_and_refused_by_name(tmp_path, case):
    """One damaged file in $NAS_HOME/profiles: `devices` still lists every profile, marking that
    one; asking for it exits 2 with one line naming the file and what is wrong."""
    path, message = _write_damaged(tmp_path, case)
    env = {"NAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    listed = run_cli("latency_models.devices", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["target"], r["precision"]): r for r in json.loads(listed.stdout)}
    status = rows[("pixel1", "fp32")]["status"]
    assert status.startswith(f"damaged: {path}: ") and message in status
    assert "fit" in rows[("note10", "fp32")] and "status" not in rows[("note10", "fp32")]
    refused = run_cli("latency_models.predict", "--target", "pixel1", "--zoo", "mnasnet_a1", env=env)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert str(path) in refused.stderr and message in refused.stderr
