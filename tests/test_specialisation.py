"""benchmarks/specialisation.py's arithmetic: which choices count on a device, and the gains."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "specialisation.py"
_spec = importlib.util.spec_from_file_location("specialisation_benchmark", PATH)
specialisation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(specialisation)


def run(top1, latency, budget):
    return {"latency_ms": latency, "meets": latency <= budget, "overrun": latency / budget - 1, "mapped_top1": top1}


def test_gains_count_only_foreign_choices_that_fit_seed_by_seed():
    cells = {  # budgets: a 10 ms, b 20 ms
        # a's choices: fit a; on b one fits (seed 0), one does not (seed 1)
        "a": {"a": [run(0.770, 9.9, 10), run(0.771, 9.8, 10)], "b": [run(0.770, 19, 20), run(0.771, 21, 20)]},
        # b's choices: more accurate, but over a's budget in both seeds
        "b": {"a": [run(0.780, 11, 10), run(0.781, 12, 10)], "b": [run(0.780, 19.9, 20), run(0.781, 19.5, 20)]},
    }
    gains = specialisation.column_gains(["a", "b"], cells, reference_top1=0.752, seeds=2)
    assert gains["a"]["over_best_foreign_points"] == []  # b's more accurate choices do not fit a
    assert gains["b"]["over_best_foreign_points"] == pytest.approx([1.0])  # seed 1's a-choice is over b's budget
    assert gains["b"]["best_foreign"] == ["a"] and gains["b"]["diagonal_meets_every_seed"]
    assert gains["a"]["over_reference_points"] == pytest.approx([1.8, 1.9])
    assert specialisation.cell_text(cells["b"]["a"]) == "0/2 +15.0%"
    assert specialisation.cell_text(cells["a"]["a"]) == "77.05%"
