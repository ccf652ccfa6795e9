"""Size bounds in `python -m nas.search`: flash, peak SRAM (TFLM's activation arena), params and
MACs, alone or with latency. The choice and the front keep every bound by the exact count, the
record says which binds, an impossible bound exits 2 naming the smallest achievable value, bad
values exit 2 naming the flag, and a search resumes only with its own bounds. Searches run on the
synthetic proxy-form estimator (conftest's `estimator`): 28 px networks, priced fast."""

import json
import re

import numpy as np
import pytest

from latency_models.footprint.costs import footprint
from nas.search import __main__ as search
from nas.search.preparation import prepare_searches
from nas.search.settings import SearchSettings
from search_spaces.arch_spec import ArchSpec
from tests.test_search import exits_2

QUICK = ["--population", "16", "--generations", "2"]
KB = 1024


def test_size_bounds_alone_are_kept_by_the_choice_and_the_front_and_reported(estimator, tmp_path, capsys):
    # bounds near the middle of the space (28 px int8: flash 0.9-2 MB, arena 15-24 KB), so both bind sometimes
    args = ["--target=pixel4", "--estimator", estimator, "--precision", "int8", "--out", str(tmp_path), *QUICK]
    assert search.main([*args, "--max-flash-kb", "1300", "--max-sram-kb", "18", "--max-params-m", "1.2"]) == 0
    out = capsys.readouterr().out
    arch = json.loads((tmp_path / "pixel4/arch.json").read_text())
    assert arch["budget_ms"] is None and arch["budget_source"] is None  # latency is not bounded
    bounds = {"flash_bytes": 1300 * KB, "arena_bytes": 18 * KB, "params": 1_200_000}
    assert arch["size_budgets"] == bounds and arch["binding"] in bounds
    exact = footprint(ArchSpec.from_dict(arch["spec"]), "int8")  # recounted here, not read back
    assert [f for f in arch["footprint"] if f["precision"] == "int8" and not f["integer_io"]] == [exact.to_dict()]
    assert exact.flash_bytes <= bounds["flash_bytes"] and exact.arena_bytes <= bounds["arena_bytes"]
    assert exact.params <= bounds["params"]
    shares = {name: getattr(exact, name) / limit for name, limit in bounds.items()}
    assert arch["binding"] == max(shares, key=shares.get)
    pareto = json.loads((tmp_path / "pixel4/pareto.json").read_text())
    assert pareto["axis"] in bounds and pareto["front"]
    for point in pareto["front"]:
        assert point["flash_bytes"] <= bounds["flash_bytes"] and point["arena_bytes"] <= bounds["arena_bytes"]
        assert point["params"] <= bounds["params"]
    axis = [point[pareto["axis"]] for point in pareto["front"]]
    assert axis == sorted(axis)
    report = (tmp_path / "pixel4/report.md").read_text()
    assert "| flash | " in report and "(binds)" in report and "| int8 integer io |" in report
    assert "SRAM int8 (KB)" in out and "flash fp32 / int8 (MB)" in out


def test_aging_evolution_keeps_every_bound_beside_latency(estimator, tmp_path):
    settings = SearchSettings(
        target="pixel4", estimator=estimator, latency_ms=3.0, max_params=1_000_000, max_macs=9_000_000,
        population=16, generations=3,
    )  # fmt: skip
    [(device, _)] = prepare_searches([settings], [tmp_path / "pixel4"])
    try:
        for _ in range(3):
            device.evolution.step()
        members = np.array([c for c, _ in device.evolution.history])
        assert len(members) > 16
        assert (device.latency(members) <= 3.0).all()
        assert (device.params(members) <= 1_000_000).all() and (device.macs(members) <= 9_000_000).all()
        assert device.axis in ("latency_ms", "params", "macs")
    finally:
        device.release()


@pytest.mark.parametrize(
    "flag, value, given",
    [
        ("--max-flash-kb", "100", 100 * KB),
        ("--max-model-mb", "0.1", 0.1 * KB * KB),
        ("--max-sram-kb", "1", KB),
        ("--max-params-m", "0.1", 1e5),
        ("--max-macs-m", "1", 1e6),
    ],
)
def test_a_bound_no_network_meets_exits_2_naming_the_smallest_achievable_value(
    estimator, tmp_path, capsys, flag, value, given
):
    err = exits_2(capsys, "--target=pixel4", "--estimator", estimator, "--precision", "int8", flag, value,
                  "--out", str(tmp_path))  # fmt: skip
    assert flag in err and "is below the smallest architecture of mbv3" in err
    least = re.search(r"\(([\d.]+) (KB|MB|M)( int8)?, every choice at its smallest\)", err)
    number, unit = float(least.group(1)), {"KB": KB, "MB": KB * KB, "M": 1e6}[least.group(2)]
    assert number * unit > given  # the smallest achievable value, above the bound asked for
    assert not (tmp_path / "pixel4" / "arch.json").exists()


FLAGS = ["--max-flash-kb", "--max-model-mb", "--max-sram-kb", "--max-params-m", "--max-macs-m"]


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf", "1e30", "many"])
def test_a_bound_that_is_no_bound_exits_2_naming_the_flag(estimator, tmp_path, capsys, flag, value):
    err = exits_2(capsys, "--target=pixel4", "--estimator", estimator, f"{flag}={value}", "--out", str(tmp_path))
    assert flag in err


def test_integer_io_needs_int8_and_flash_takes_one_unit(estimator, tmp_path, capsys):
    err = exits_2(capsys, "--target=pixel4", "--estimator", estimator, "--integer-io", "--out", str(tmp_path))
    assert "--integer-io" in err and "int8" in err
    err = exits_2(capsys, "--target=pixel4", "--max-flash-kb", "900", "--max-model-mb", "1", "--out", str(tmp_path))
    assert "--max-model-mb" in err and "not allowed with" in err


def test_a_search_resumes_only_with_its_own_bounds(estimator, tmp_path, capsys):
    common = ["--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), "--population", "16"]
    assert search.main([*common, "--generations", "1", "--max-params-m", "1.5"]) == 0
    capsys.readouterr()
    err = exits_2(capsys, *common, "--generations", "4", "--max-params-m", "1.4", "--resume")
    assert "saved with size_budgets {'params': 1500000}" in err
    err = exits_2(capsys, *common, "--generations", "4", "--resume")  # the bound dropped: latency bounds again
    assert "saved with budget_ms None" in err
