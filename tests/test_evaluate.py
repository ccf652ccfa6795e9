"""`latency_models.evaluate` end to end on a tiny space, and its input errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from common.stats import kendall_tau
from latency_models.predictor.fidelity import MeasurementLog, cross_fitted, scores, unmeasured
from latency_models.profiles.registry import load_predictor
from search_spaces import zoo


def test_kendall_tau_and_scores():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau(a, a) == 1.0 and kendall_tau(a, -a) == -1.0
    s = scores(np.array([1.04, 2.16, 2.76]), np.array([1.0, 2.0, 3.0]))
    assert s["within_5pct"] == pytest.approx(1 / 3) and s["within_10pct"] == pytest.approx(1.0)
    assert s["rmspe"] == pytest.approx(np.sqrt((0.04**2 + 0.08**2 + 0.08**2) / 3))


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, env=env)


def test_evaluate_measures_scores_plots_and_keeps_the_host_predictor(tmp_path):
    table = tmp_path / "t.jsonl"
    measured = run(
        "latency_models.measure",
        "--target",
        "host",
        "--space",
        "fbnet_cifar",
        "--resolution",
        "32",
        "--out",
        str(table),
    )
    assert measured.returncode == 0, measured.stderr
    out = tmp_path / "eval"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # the user's, left alone
    args = [
        "latency_models.evaluate",
        "--space",
        "fbnet_cifar",
        "--resolution",
        "32",
        "--n",
        "5",
        "--calibrate",
        "3",
        "--no-zoo",
        "--table",
        str(table),
        "--out",
        str(out),
        "--json",
    ]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    subnets = report["sets"]["subnets"]
    assert subnets["learned_predictor"]["n"] == 5 and subnets["table_sum"]["n"] == 5
    assert 0 <= subnets["learned_predictor"]["within_10pct"] <= 1
    assert (out / "predicted_vs_measured_subnets.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == [
        "measurements.json", "notes.txt", "predicted_vs_measured_subnets.png", "report.json"
    ]  # fmt: skip
    assert (out / "notes.txt").read_text() == "mine"
    assert len(json.loads((out / "measurements.json").read_text())) == 8
    again = run(*args)  # everything is measured already: nothing is timed twice
    assert again.returncode == 0 and json.loads(again.stdout)["sets"] == report["sets"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--target", "pixel4"), "only 'host' works"),
        (("--n", "0"), "argument --n: must be >= 1, got 0"),
        (("--table", "/nonexistent/t.jsonl"), "no latency table at /nonexistent/t.jsonl"),
    ],
)
def test_bad_input(args, message):
    result = run("latency_models.evaluate", *args)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_table_of_another_space_is_refused(tmp_path):
    table = tmp_path / "fbnet.jsonl"
    assert (
        run(
            "latency_models.measure",
            "--target",
            "host",
            "--space",
            "fbnet_cifar",
            "--resolution",
            "32",
            "--limit",
            "3",
            "--out",
            str(table),
        ).returncode
        == 0
    )
    result = run("latency_models.evaluate", "--space", "mbv3", "--table", str(table), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and "lacks 192 blocks of mbv3 at 224 px" in result.stderr


def test_each_zoo_model_is_predicted_by_a_calibration_without_it(tmp_path):
    """Leave-one-out: a zoo model's own timing never moves its own prediction."""
    specs = [zoo.get(name, resolution=96) for name in ("mobilenet_v2_0.5", "mnasnet_a1", "fbnet_a", "spnasnet")]
    base = load_predictor("pixel4", "fp32")
    log = MeasurementLog(tmp_path / "m.json", "fp32")
    # A "machine" twice as slow as pixel4 except on one model, measured 6x slower: the others are
    # calibrated on a 2x machine (one outlier among three), the outlier is predicted near 2x.
    odd = specs[1]
    for spec in specs:
        log.add(spec, base.spec_ms(spec) * (6 if spec is odd else 2))
    error = cross_fitted(base, [], specs, log, "fp32") / np.array([log.get(s) for s in specs]) - 1
    assert error[1] < -0.5  # predicted ~2x, measured 6x: not fitted on itself
    assert all(e > 0 for i, e in enumerate(error) if i != 1)  # the outlier, in their calibration, pulls them up


def test_each_network_is_timed_once_per_pass_and_scored_by_the_mean(tmp_path):
    specs = [zoo.get(name, resolution=64) for name in ("mobilenet_v2_0.5", "mnasnet_a1", "fbnet_a")]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({f"{specs[0].content_hash()}-fp32": 2.0}))  # a log of one number per network
    log = MeasurementLog(path, "fp32")
    todo = unmeasured(specs, log, seed=0, passes=2)
    # Pass 1: the two never timed; pass 2: all three, each once more.
    assert len(todo) == 5 and set(todo[:2]) == set(specs[1:]) and set(todo[2:]) == set(specs)
    for spec in todo:
        log.add(spec, 3.0 if spec is specs[0] else 1.0)
    assert unmeasured(specs, MeasurementLog(path, "fp32"), seed=0, passes=2) == []
    assert MeasurementLog(path, "fp32").get(specs[0]) == 2.5 and log.count(specs[1]) == 2


def test_a_table_with_a_nan_timing_exits_2_naming_file_and_line(tmp_path):
    header = {"kind": "latency_table", "schema_version": 1, "metadata": {"device": "host"}}
    row = {"block": {"layer": {"op": "conv", "in_ch": 3, "out_ch": 8, "kernel": 3, "stride": 2}}, "mean_ms": 1.0}
    row["block"].update(in_shape=[32, 32, 3], precision="fp32")
    row["mean_ms"] = float("nan")
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps(header) + "\n" + json.dumps(row) + "\n")
    result = run("latency_models.evaluate", "--table", str(table), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{table}: line 2: row" in result.stderr and "mean_ms must be a finite non-negative number" in result.stderr
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\xff\xfe{}", "not a UTF-8 text (JSON) file"),
        (b'{"abc-fp32": [1.5, 2', "not JSON (Expecting"),
        (b'{"abc-fp32": [1.5, NaN]}', "not a log of timings"),
        (b'{"abc-fp32": -3}', "not a log of timings"),
        (b'{"abc-fp32": [1.5, "fast"]}', "not a log of timings"),
        (b"[1.5, 2.0]", "not a log of timings"),
    ],
)
def test_a_damaged_measurement_log_is_refused_naming_it(tmp_path, content, reason):
    from latency_models.predictor.fidelity import MeasurementLog, MeasurementLogError

    path = tmp_path / "measurements.json"
    path.write_bytes(content)
    with pytest.raises(MeasurementLogError, match=f"^{path}: ") as info:
        MeasurementLog(path, "fp32")
    assert reason in str(info.value) and path.read_bytes() == content  # nothing rewritten
    path.write_text('{"abc-fp32": 2.5, "def-fp32": [1.0, 3.0]}')  # one number per network: an earlier log
    assert MeasurementLog(path, "fp32").ms == {"abc-fp32": [2.5], "def-fp32": [1.0, 3.0]}
