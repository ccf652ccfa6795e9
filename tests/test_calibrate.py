"""Few-shot calibration of a device profile (`python -m latency_models.calibrate`) and the bundled
pixel4 profile it was fitted with."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from common.cli import run
from latency_models import calibrate as calibrate_cli
from latency_models.devices import fidelity
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement
from latency_models.profiles.pixel4 import CONFIGS, MODELS, device_name, figures, for_gpu, precisions
from latency_models.profiles.registry import describe_profiles, load_predictor
from search_spaces import get_space
from search_spaces.graph import count_params
from search_spaces.zoo import get
from search_spaces.zoo.pytorchcv import pytorchcv_mobilenet_v2, pytorchcv_mobilenet_v3

# A made-up phone: 1.7x the Note10 profile plus 0.5 ms per network.
SCALE, OFFSET = 1.7, 0.5
TRAIN = (
    "mobilenet_v2_1.0",
    "mobilenet_v3_large_1.0",
    "mnasnet_a1",
    "proxylessnas_mobile",
    "mobilenet_v1_0.5",
    "efficientnet_lite0",
)
HELD_OUT = ("mobilenet_v3_small_1.0", "fbnet_a", "proxylessnas_cpu", "mobilenet_v2_0.5", "mobilenet_v3_large_0.75")


def write_csv(path, rows, header=("arch", "ms")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_cli_recovers_a_scaled_device(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("NAS_HOME", str(home))  # the bundled note10, and the new profile kept here
    note10 = load_predictor("note10", "fp32")

    def truth(spec):
        return SCALE * note10.spec_ms(spec) + OFFSET

    # One network given as a spec file next to the CSV, the rest as zoo names.
    spec = get_space("mbv3").materialize(get_space("mbv3").sample(np.random.default_rng(0)), resolution=192)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.json").write_text(spec.to_json())
    rows = [(name, f"{truth(get(name)):.4f}") for name in TRAIN] + [("specs/mine.json", f"{truth(spec):.4f}")]
    measurements = write_csv(tmp_path / "phone.csv", rows)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "latency_models.calibrate",
            "--base",
            "note10",
            "--measurements",
            str(measurements),
            "--name",
            "my_phone",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "in-sample: 7/7 within +-10%" in result.stdout
    assert (home / "profiles" / "my_phone-fp32.json").is_file()

    calibrated = load_predictor("my_phone", "fp32")  # found under $NAS_HOME/profiles by name
    for name in TRAIN:
        assert calibrated.spec_ms(get(name)) == pytest.approx(truth(get(name)), rel=0.02), name
    # Networks it never saw: within 5%. Not exact, by design: the prior holds the per-network
    # overhead near the base's, so the fixed 0.5 ms is priced as work (costliest for the small
    # mobilenet_v3_small, about -4%).
    for name in HELD_OUT:
        assert calibrated.spec_ms(get(name)) == pytest.approx(truth(get(name)), rel=0.05), name
    meta = calibrated.metadata
    assert meta["device"] == "my_phone" and meta["base"]["profile"] == "note10"
    assert meta["measurements"]["count"] == 7 and meta["measurements"]["file"].endswith("phone.csv")
    assert meta["report"]["in_sample"]["within_10pct"] == 1.0
    assert calibrated.network_scale == pytest.approx(SCALE, rel=0.05)


@pytest.fixture
def call(tmp_path, monkeypatch, capsys):
    """Run the CLI in this process; returns (exit code, stderr)."""
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))

    def invoke(*args):
        with pytest.raises(SystemExit) as exc:
            run(calibrate_cli.main, calibrate_cli.PROG, list(args))
        return exc.value.code, capsys.readouterr().err

    return invoke


def good_csv(tmp_path):
    return str(write_csv(tmp_path / "good.csv", [("mobilenet_v2_1.0", "30"), ("mnasnet_a1", "31")]))


@pytest.mark.parametrize(
    "rows, header, fragment",
    [
        ([("mobilenet_v2_1.0", "fast"), ("mnasnet_a1", "31")], ("arch", "ms"), "bad.csv:2: ms 'fast' is not a number"),
        ([("mobilenet_v2_1.0", "-3"), ("mnasnet_a1", "31")], ("arch", "ms"), "bad.csv:2: ms must be a positive"),
        ([("mobilenet_v2_1.0", "1e300"), ("mnasnet_a1", "31")], ("arch", "ms"), "at most 1e+06 ms, got 1e300"),
        ([("mobilenet_v2_1.0", "nan"), ("mnasnet_a1", "31")], ("arch", "ms"), "bad.csv:2: ms must be a positive"),
        ([("mobilenet_v2_1.0", "30"), ("resnet50", "31")], ("arch", "ms"), "bad.csv:3: arch 'resnet50' is neither"),
        ([("missing.json", "30"), ("mnasnet_a1", "31")], ("arch", "ms"), "cannot read"),
        ([("mobilenet_v2_1.0", "30", "fp16")], ("arch", "ms", "precision"), "precision 'fp16' is not one of"),
        (
            [("mobilenet_v2_1.0", "30")],
            ("arch", "ms"),
            "1 fp32 measurement(s) of 1 rows; a calibration needs at least 2",
        ),
        (
            [("mobilenet_v2_1.0", "30", "int8"), ("mnasnet_a1", "31", "fp32")],
            ("arch", "ms", "precision"),
            "needs at least 2",
        ),
        ([("mobilenet_v2_1.0",)], ("arch",), "no `ms` column"),
        ([("garbled.json", "30"), ("mnasnet_a1", "31")], ("arch", "ms"), "garbled.json: not a UTF-8 text (JSON) file"),
        ([("huge.json", "30"), ("mnasnet_a1", "31")], ("arch", "ms"), "spec.resolution: must be <= 4096"),
    ],
)
def test_bad_measurement_files_exit_2(call, tmp_path, rows, header, fragment):
    (tmp_path / "garbled.json").write_bytes(b"\xff\xfe{}")  # specs a row may name
    huge = get("mnasnet_a1").to_dict()
    huge["resolution"] = 10**9
    (tmp_path / "huge.json").write_text(json.dumps(huge))
    path = write_csv(tmp_path / "bad.csv", rows, header)
    code, err = call("--base", "note10", "--measurements", str(path), "--name", "x")
    assert code == 2 and fragment in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--base", "nosuchphone"), "--base: unknown target 'nosuchphone'"),
        (("--base", "note10", "--name", "pixel4"), "'pixel4' is a bundled profile"),
        (("--base", "note10", "--name", "host"), "'host' is this machine's own profile"),
        (("--base", "note10", "--name", "a/b"), "is not a profile name"),
        (("--base", "note10", "--name", "x-int8"), "is not a profile name"),
        (("--base", "note10", "--precision", "fp16"), "invalid choice: 'fp16'"),
        (("--base", "note10", "--steps", "0"), "argument --steps: must be >= 1, got 0"),
    ],
)
def test_bad_arguments_exit_2(call, tmp_path, args, fragment):
    argv = ["--measurements", good_csv(tmp_path), "--name", "x", *args]
    code, err = call(*argv)
    assert code == 2 and fragment in err, err
    assert len(err.strip().splitlines()) == 1


def test_missing_measurement_file_exits_2(call):
    code, err = call("--base", "note10", "--measurements", "/nonexistent/phone.csv", "--name", "x")
    assert code == 2 and "cannot read /nonexistent/phone.csv" in err


# --- the bundled pixel4 profile --------------------------------------------------------------------


def test_pytorchcv_builders_match_pytorchcv_parameter_counts():
    """The weight counts pytorchcv's own tests assert (osmr/imgclsmob, pytorch/pytorchcv/models/
    mobilenetv2.py and mobilenetv3.py, `_test`): BN scale/offset included, as we count."""
    expected_v2 = {1.0: 3504960, 0.75: 2627592, 0.5: 1964736, 0.25: 1516392}
    for width, params in expected_v2.items():
        assert count_params(pytorchcv_mobilenet_v2(width)) == params
    expected_v3 = {
        ("small", 0.35): 2159600,
        ("small", 0.5): 2288976,
        ("small", 0.75): 2581312,
        ("small", 1.0): 2945288,
        ("small", 1.25): 3643632,
        ("large", 0.35): 2943080,
        ("large", 0.5): 3334896,
        ("large", 0.75): 4263496,
        ("large", 1.0): 5481752,
        ("large", 1.25): 7459144,
    }
    for (size, width), params in expected_v3.items():
        assert count_params(pytorchcv_mobilenet_v3(size, width)) == params


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_bundled_pixel4_profile_records_its_fit(tmp_path, monkeypatch, precision):
    """Without the published data: the profile carries its figures, and predicts them as recorded."""
    monkeypatch.setenv("NAS_HOME", str(tmp_path))  # no user profile can shadow the bundled one
    predictor = load_predictor("pixel4", precision)
    meta = predictor.metadata
    assert meta["device"] == "pixel4" and meta["precision"] == precision and meta["threads"] == 1
    assert meta["provenance"]["file"] == "published_models.csv" and "latency_ms" in meta["provenance"]["source_columns"]
    assert {f["family"] for f in meta["figures"]} == set(meta["report"]["leave_one_family_out"]["families"])
    for fig in meta["figures"]:
        predicted = predictor.spec_ms(MODELS[fig["model"]].build(), precision)
        assert predicted / fig["latency_ms"] - 1 == pytest.approx(fig["in_sample_error"], abs=2e-3)
    if precision == "fp32":
        assert meta["report"]["in_sample"]["within_10pct"] >= 0.9


def test_bundled_pixel4_fp32_predicts_the_published_figures(latency_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    predictor = load_predictor("pixel4", "fp32")
    figs = figures(latency_data, "fp32")
    assert len(figs) == len(MODELS) >= 20
    relative = np.array([predictor.spec_ms(f.spec) / f.ms - 1 for f in figs])
    assert np.mean(np.abs(relative) <= 0.10) >= 0.9, dict(zip([f.name for f in figs], relative.round(3)))


def test_mapped_architectures_match_the_published_flops(latency_data):
    """The CSV's FLOPS are 2 x multiply-adds plus some element-wise work: our MACs within 4%."""
    for fig in figures(latency_data, "fp32"):
        assert fig.csv_macs / fig.our_macs == pytest.approx(1.0, abs=0.04), fig.name


@pytest.mark.parametrize("precision, within, rmspe", [("fp32", 0.9, 0.06), ("int8", 0.85, 0.08)])
def test_bundled_pixel4_profiles_hold_on_families_they_were_not_fitted_on(
    tmp_path, monkeypatch, precision, within, rmspe
):
    """The leave-one-family-out errors the build recorded: within +-10% on >= 90% (fp32) and 85%
    (int8) of the 79 figures of 16 families (the profiles' targets), and each figure recorded."""
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    meta = load_predictor("pixel4", precision).metadata
    held_out = meta["report"]["leave_one_family_out"]
    assert held_out["count"] == len(MODELS) == 79 and len(held_out["families"]) == 16
    assert held_out["within_10pct"] >= within and held_out["rmspe"] <= rmspe
    errors = np.array([f["lofo_error"] for f in meta["figures"]])
    assert np.mean(np.abs(errors) <= 0.10) == pytest.approx(held_out["within_10pct"], abs=0.02)


def test_every_pixel4_configuration_is_a_profile_with_its_fidelity(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    for config in CONFIGS:
        for precision in precisions(config):
            meta = load_predictor(device_name(config), precision).metadata
            assert meta["provenance"]["selection"]["measurement_note"] == f"starts with 'config {config}:'"
            assert meta["report"]["leave_one_family_out"]["count"] == 79
    rows = {(r["target"], r["precision"]): r for r in describe_profiles()}
    assert fidelity(rows[("pixel4-4small", "int8")]).startswith("leave-one-family-out ")
    assert fidelity(rows[("pixel4-gpu", "fp32")]).startswith("leave-one-family-out ")
    assert ("pixel4-gpu", "int8") not in rows  # the benchmark ran float models only on the GPU
    assert fidelity(rows[("note10", "fp32")]) == ""  # fitted on a per-block table: not measured this way


def test_the_gpu_profile_is_fitted_on_the_gpu_rows_with_its_floor(latency_data, tmp_path, monkeypatch):
    """pixel4-gpu: the benchmark's GPU-delegate figures (not the CPU's) of all 79 networks, and a
    per-network floor of about the millisecond its smallest networks take."""
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    gpu, cpu = figures(latency_data, "fp32", "gpu"), figures(latency_data, "fp32", "1large")
    assert [f.name for f in gpu] == [f.name for f in cpu] == list(MODELS)
    assert all(g.row["compute_unit"] == "GPU" and c.row["compute_unit"] == "CPU" for g, c in zip(gpu, cpu))
    predictor = load_predictor("pixel4-gpu", "fp32")
    assert predictor.metadata["delegate"] == "GPU (fp16)" and "threads" not in predictor.metadata
    smallest = min(f.ms for f in gpu)
    assert 0.3 * smallest < predictor.network_overhead_ms < smallest
    assert load_predictor("pixel4", "fp32").network_overhead_ms < 0.1  # a CPU invoke has no such floor


def test_for_gpu_drops_the_cpu_corrections_and_recovers_a_constant_per_network_overhead():
    """Networks timed as 0.5 x the base's linear prediction (its work at its prices, no per-block
    correction) + 1.2 ms: the GPU start has no corrections and the line's intercept, 1.2 ms."""
    base = load_predictor("note10", "fp32")
    params = {**base.params, "w2": np.zeros_like(base.params["w2"]), "b2": np.zeros_like(base.params["b2"])}
    linear = LatencyPredictor(params, base.desc_mean, base.desc_std)
    specs = [get(name) for name in ("mobilenet_v2_1.0", "mobilenet_v3_large_1.0", "mnasnet_a1", "mobilenet_v1_0.5")]
    own = base.network_overhead_ms
    timed = [Measurement(s, 0.5 * (linear.spec_ms(s) - own) + 1.2) for s in specs]
    start = for_gpu(base, timed)
    assert start.network_overhead_ms == pytest.approx(1.2, rel=1e-6)
    assert not start.params["w2"].any() and not start.params["b2"].any()
    assert base.params["w2"].any()  # the base itself is left as it was
