"""`python -m nas.search`: the four files, the budget, determinism, resume, several devices, the
estimators' scopes (the ImageNet default searching deployed networks over its resolutions, a
proxy estimator pricing the proxy form), and the one-line exit-2 cases. A synthetic proxy-form
estimator (top-1 rising with MACs) stands in for the bundled Fashion-MNIST one, so these tests do
not depend on which supernet fitted the bundled file."""

import json
from pathlib import Path

import numpy as np
import pytest

from common.cli import run
from latency_models.profiles.registry import known_targets, load_predictor
from latency_models.tables.other_projects import import_ofa
from nas.accuracy.estimator import BUNDLED, AccuracyPredictor
from nas.search import __main__ as search
from nas.search.run import search_device, write_record
from nas.search.settings import SearchError, SearchSettings
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.mbv3 import MobileNetV3Space

QUICK = ["--population", "16", "--generations", "4"]


def proxy_form(name: str) -> ArchSpec:
    """A published model as a proxy-form search prices it: fed the proxy's 28 px, 1 channel, 10
    classes (written out here, not taken from the library's published_form, so the test checks it)."""
    return zoo.get(name, resolution=28, num_classes=10).with_in_channels(1)


def run_search(capsys, *args):
    code = search.main(list(args))
    return code, capsys.readouterr()


def without_timing(path):
    result = json.loads(path.read_text())
    result["search"].pop("seconds")
    return result


def test_main_job_writes_the_four_files_within_the_mobilenet_v2_budget(estimator, tmp_path, capsys):
    """A proxy-form estimator: the networks searched and priced are the proxy form it scores, and
    the default budget is MobileNetV2-1.0 fed that same input. A file of the user's in OUT is left alone."""
    (tmp_path / "notes.txt").write_text("mine")
    code, _ = run_search(capsys, "--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), *QUICK)
    assert code == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    folder = tmp_path / "pixel4"
    assert {p.name for p in folder.iterdir()} >= {"arch.json", "pareto.json", "pareto.png", "report.md"}
    result = json.loads((folder / "arch.json").read_text())
    spec = ArchSpec.load(str(folder / "arch.json"))  # arch.json reads as an ArchSpec
    assert spec.content_hash() == result["spec_hash"] and result["form"] == "proxy"
    assert (spec.resolution, spec.in_channels, spec.classifier.out_ch) == (28, 1, 10)
    space = MobileNetV3Space(num_classes=10, in_channels=1)
    proxy = space.materialize(space.from_values(result["choices"]), resolution=28, proxy=True)
    assert proxy.content_hash() == spec.content_hash()
    predictor = load_predictor("pixel4")
    budget = predictor.spec_ms(proxy_form("mobilenet_v2_1.0"))
    assert result["budget_ms"] == pytest.approx(budget)
    assert predictor.spec_ms(spec) == pytest.approx(result["predicted_latency_ms"], rel=1e-4)
    assert result["predicted_latency_ms"] <= budget
    front = json.loads((folder / "pareto.json").read_text())["front"]
    assert all(p["predicted_latency_ms"] <= budget for p in front)
    latencies = [p["predicted_latency_ms"] for p in front]
    accuracies = [p["estimated_top1"] for p in front]
    assert latencies == sorted(latencies) and accuracies == sorted(accuracies)  # non-dominated
    assert (folder / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (folder / "report.md").read_text()
    assert "mobilenet_v2_1.0" in report and f"{budget:.2f} ms" in report and "published top-1" in report
    assert "mapped" not in json.dumps(result)  # no mapping: nothing is said about ImageNet


def test_the_default_imagenet_search_prices_the_deployed_network_it_scores(tmp_path, capsys):
    """The default estimator: mbv3 at width 1.2, resolution searched over 160..224, priced as
    that deployed network; the mapped top-1 is reported beside the published models near the
    budget, which the plot and report place on the same axes."""
    code, captured = run_search(capsys, "--target=pixel4", "--out", str(tmp_path), *QUICK)
    assert code == 0
    result = json.loads((tmp_path / "pixel4" / "arch.json").read_text())
    spec = ArchSpec.load(str(tmp_path / "pixel4" / "arch.json"))
    assert result["form"] == "deployed" and result["choices"]["width"] == 1.2
    assert spec.resolution in (160, 176, 192, 208, 224) and spec.resolution == result["choices"]["resolution"]
    assert (spec.in_channels, spec.classifier.out_ch) == (3, 1000)
    predictor = load_predictor("pixel4")
    assert predictor.spec_ms(spec) == pytest.approx(result["predicted_latency_ms"], rel=1e-4)
    assert result["budget_ms"] == pytest.approx(predictor.spec_ms(zoo.get("mobilenet_v2_1.0")))
    mapping = result["estimator"]["mapping"]
    assert result["mapped_top1"] == pytest.approx(mapping["slope"] * result["estimated_top1"] + mapping["intercept"])
    comparison = result["published_comparison"]
    budget = result["budget_ms"]
    assert comparison["near_budget"] and all(
        abs(b["predicted_latency_ms"] - budget) <= 0.15 * budget and b["top1_source"] for b in comparison["near_budget"]
    )
    best = comparison["best_at_or_under"]
    assert best["predicted_latency_ms"] <= result["predicted_latency_ms"]
    assert comparison["gain_points"] == pytest.approx(100 * (result["mapped_top1"] - best["published_top1"]))
    report = (tmp_path / "pixel4" / "report.md").read_text()
    covered = mapping["raw_range"][0] <= result["estimated_top1"] <= mapping["raw_range"][1]
    assert result["mapped_top1_extrapolated"] == (not covered)
    quoted = f"{100 * result['mapped_top1']:.1f}%" + (" ± " if covered else ", extrapolated")
    assert quoted in report and quoted in captured.out and best["top1_source"] in report
    assert "ImageNet top-1 (mapped" in captured.out and f"over {best['name']} (" in captured.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--estimator", "fashion-mnist", "--resolution", "224"], "scores the proxy form at 28 px, not a 224 px input"),
        (["--width", "1.0"], "scores width 1.2 only, not width 1.0"),
        (["--form", "proxy"], "scores the deployed form, not the proxy form"),
        (["--resolution", "144"], "at 160..224 px (step 16), not a 144 px input"),
        (["--estimator", "fashion-mnist", "--form", "deployed"], "scores the proxy form, not the deployed form"),
    ],
)
def test_asking_an_estimator_outside_its_scope_exits_2_naming_both(tmp_path, capsys, args, message):
    err = exits_2(capsys, "--target=pixel4", "--out", str(tmp_path), *args)
    assert message in err and "it scores: mbv3" in err
    assert not tmp_path.joinpath("pixel4").exists()  # refused before anything is written


def test_same_seed_same_search_and_resume_ends_where_an_uninterrupted_search_does(estimator, tmp_path, capsys):
    common = ["--target=note10", "--estimator", estimator, "--population", "16", "--latency-ms", "25"]
    run_search(capsys, *common, "--generations", "6", "--out", str(tmp_path / "a"))
    run_search(capsys, *common, "--generations", "6", "--out", str(tmp_path / "b"))
    assert without_timing(tmp_path / "a/note10/arch.json") == without_timing(tmp_path / "b/note10/arch.json")
    # stopped after generation 3 (its state saved), then continued to 6
    run_search(capsys, *common, "--generations", "3", "--out", str(tmp_path / "c"))
    state = json.loads((tmp_path / "c/note10/search-state.json").read_text())
    assert state["evolution"]["generation"] == 3
    run_search(capsys, *common, "--generations", "6", "--out", str(tmp_path / "c"), "--resume")
    assert without_timing(tmp_path / "c/note10/arch.json") == without_timing(tmp_path / "a/note10/arch.json")
    assert (tmp_path / "c/note10/pareto.json").read_text() == (tmp_path / "a/note10/pareto.json").read_text()
    # another seed searches differently
    run_search(capsys, *common, "--generations", "6", "--out", str(tmp_path / "d"), "--seed", "1")
    assert json.loads((tmp_path / "d/note10/search-state.json").read_text()) != json.loads(
        (tmp_path / "a/note10/search-state.json").read_text()
    )


def test_several_devices_one_architecture_each(estimator, tmp_path, capsys):
    code, captured = run_search(
        capsys, "--target=pixel4,pixel1", "--estimator", estimator, "--out", str(tmp_path), *QUICK
    )
    assert code == 0
    budgets = {}
    for device in ("pixel4", "pixel1"):
        result = json.loads((tmp_path / device / "arch.json").read_text())
        assert result["target"]["name"] == device
        assert result["predicted_latency_ms"] <= result["budget_ms"]
        budgets[device] = result["budget_ms"]
    assert budgets["pixel1"] > budgets["pixel4"]  # the older phone is slower on MobileNetV2
    assert "pixel1" in captured.out and "pixel4" in captured.out  # the summary table


def exits_2(capsys, *args) -> str:
    """Through the command's own entry point, which turns a UserError into one line and exit 2."""
    with pytest.raises(SystemExit) as exc:
        run(search.main, search.PROG, list(args))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_input_is_one_line_and_exit_2(estimator, tmp_path, capsys, trained_tiny):
    err = exits_2(capsys, "--target=iphone99", "--estimator", estimator, "--out", str(tmp_path))
    assert "unknown target 'iphone99'" in err and all(t in err for t in known_targets())
    err = exits_2(capsys, "--target=pixel4", "--latency-ms", "0.5", "--estimator", estimator, "--out", str(tmp_path))
    assert "below the fastest architecture" in err and " ms, every choice at its smallest" in err
    err = exits_2(capsys, "--target=pixel4", "--space", "fbnet", "--out", str(tmp_path))
    assert "no accuracy estimator for 'fbnet'" in err
    err = exits_2(capsys, "--target=pixel4", "--estimator", estimator, "--supernet", str(trained_tiny[0]))
    assert "its supernet is not over the whole mbv3 space" in err  # the tiny run has one stage
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "not JSON" in exits_2(capsys, "--target=pixel4", "--estimator", str(broken), "--out", str(tmp_path))
    run_search(capsys, "--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), *QUICK)
    before = (tmp_path / "pixel4" / "arch.json").read_bytes()
    err = exits_2(capsys, "--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), *QUICK)
    assert "already holds a search" in err
    assert (tmp_path / "pixel4" / "arch.json").read_bytes() == before  # nothing overwritten
    err = exits_2(
        capsys, "--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), "--resume", "--seed", "5", *QUICK
    )
    assert "saved with seed 0" in err and "cannot resume from it" not in err  # said once, not wrapped


def test_settings_a_search_cannot_run_with_are_refused():
    for bad in ({"population": 3}, {"generations": 0}, {"latency_ms": 0.0}, {"latency_ms": float("inf")}):
        with pytest.raises(SearchError, match="pixel4: a search cannot run with"):
            SearchSettings(target="pixel4", **bad)


def test_the_bundled_fashion_mnist_estimator_carries_its_provenance_and_scope():
    predictor = AccuracyPredictor.load(BUNDLED["fashion-mnist"])
    info = predictor.info
    assert info["samples"]["subnets"] >= 1000
    assert info["supernet"]["data"]["name"] == "fashion-mnist"
    assert {"rmse_points", "kendall_tau"} <= set(info["held_out"]) and info["made_by"].startswith("python -m")
    scope = predictor.scope
    assert (scope.form, scope.resolutions, scope.in_channels, scope.classes) == ("proxy", (28,), 1, 10)
    predictor.encoder(MobileNetV3Space(num_classes=10, in_channels=1))  # fits the space the search uses


def test_the_library_runs_the_same_search_as_the_command(estimator, tmp_path, capsys):
    """search_device from settings is the command's search: the same arch.json, and a callback
    after each generation."""
    code, _ = run_search(capsys, "--target=note10", "--estimator", estimator, "--out", str(tmp_path / "cli"), *QUICK)
    assert code == 0
    generations = []
    settings = SearchSettings(target="note10", estimator=estimator, population=16, generations=4)
    record = search_device(settings, tmp_path / "lib", lambda s: generations.append(s.evolution.generation))
    write_record(record, tmp_path / "lib")
    assert generations == [1, 2, 3, 4]
    ours, theirs = (
        without_timing(tmp_path / "lib" / "arch.json"),
        without_timing(tmp_path / "cli" / "note10" / "arch.json"),
    )
    assert ours == theirs


def test_once_for_alls_tutorial_setting_is_met_on_its_own_table(tmp_path, latency_data):
    """`nas.search --target=note10 --latency-ms 25` with the defaults: a width-1.2 network scored at
    least the tutorial's 81.71% by Once-for-All's predictor and within 25 ms by Once-for-All's own
    Note10 table (imported by latency_models.import_table), not only by the learned profile."""
    record = search_device(SearchSettings(target="note10", latency_ms=25.0), tmp_path)
    table = import_ofa(sorted((latency_data / "raw" / "ofa_note10").glob("*_lookup_table.yaml")))
    assert record.choice.choices["width"] == 1.2 and record.accuracy.estimated_top1 >= 0.8171
    assert table.spec_latency(record.choice.spec) <= 25.0


DAMAGED_STATES = [
    (lambda s: s["evolution"]["members"][0].__setitem__(0, -1), "members: option index -1 outside 0.."),
    (lambda s: s["evolution"].update(generation=-5), "generation: must be a non-negative integer, got -5"),
    (lambda s: s["evolution"]["scores"].__setitem__(0, 1.7), "scores must be estimated top-1 fractions"),
    (lambda s: s["evolution"]["scores"].__setitem__(0, float("nan")), "scores: scores must be finite numbers"),
    (lambda s: s["pareto"]["seen"].append([0]), "seen: expected lists of"),
    (lambda s: s.update(seconds=-3), "seconds: must be a finite non-negative number, got -3"),
]


def test_a_search_state_no_search_writes_is_not_resumed(estimator, tmp_path, capsys):
    """Negative genes, negative generations, scores no estimator gives: --resume exits 2 naming
    the file and field, and the state is left as it was."""
    common = ["--target=note10", "--estimator", estimator, "--population", "16", "--latency-ms", "25"]
    run_search(capsys, *common, "--generations", "2", "--out", str(tmp_path))
    path = tmp_path / "note10" / "search-state.json"
    saved = path.read_text()
    for edit, message in DAMAGED_STATES:
        state = json.loads(saved)
        edit(state)
        path.write_text(json.dumps(state))
        before = path.read_bytes()
        err = exits_2(capsys, *common, "--generations", "4", "--out", str(tmp_path), "--resume")
        assert f"{path}: cannot resume from it" in err and message in err
        assert path.read_bytes() == before


def test_a_damaged_estimator_or_profile_exits_2_naming_the_file_before_any_work(
    estimator, tmp_path, capsys, monkeypatch
):
    """An estimator with no layers once scored 188.97%, a NaN one wrote NaN; a NaN user profile
    ended a search in "no architecture within nan ms" without naming the file."""
    data = json.loads(Path(estimator).read_text())
    damaged = {
        "no layers": ({**data, "layers": []}, "layers: an estimator needs at least one layer"),
        "NaN weight": (
            {
                **data,
                "layers": [{**data["layers"][0], "b": [float("nan")] * len(data["layers"][0]["b"])}]
                + data["layers"][1:],
            },
            "layers[0]: holds a value that is not a finite number",
        ),
    }
    out = tmp_path / "out"
    for name, (document, message) in damaged.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document))
        err = exits_2(capsys, "--target=note10", "--estimator", str(path), "--out", str(out), *QUICK)
        assert str(path) in err and message in err, err
    path = tmp_path / "not-utf8.json"
    path.write_bytes(b"\xff\xfe{}")
    assert "not a UTF-8 text (JSON) file" in exits_2(capsys, "--estimator", str(path), "--out", str(out), *QUICK)
    profile = json.loads(json.dumps(load_predictor("note10").to_dict()))
    profile["params"]["net_overhead"] = float("nan")
    (tmp_path / "home" / "profiles").mkdir(parents=True)
    (tmp_path / "home" / "profiles" / "note10-fp32.json").write_text(json.dumps(profile))
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    err = exits_2(capsys, "--target=note10", "--estimator", estimator, "--out", str(out), *QUICK)
    assert "note10-fp32.json: params.net_overhead: holds a value that is not a finite number" in err
    assert not out.exists() or not any(out.rglob("*"))  # at most the empty folder its lock was taken in


def test_an_estimator_whose_scores_overflow_stops_the_search_before_any_work(estimator, tmp_path, capsys):
    """Finite weights can still overflow float32 (1e30 x 1e30): the scores are checked finite
    before anything is written."""
    data = json.loads(Path(estimator).read_text())
    data["layers"] = [{**layer, "w": (np.asarray(layer["w"]) * 1e30).tolist()} for layer in data["layers"]]
    path = tmp_path / "overflowing.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    err = exits_2(capsys, "--target=note10", "--estimator", str(path), "--out", str(out), *QUICK)
    assert "note10: the smallest architecture is priced" in err and "is not usable" in err
    assert not out.exists() or not any(out.rglob("*"))


def test_a_new_search_refuses_a_device_folder_that_holds_anything(estimator, tmp_path, capsys):
    """Whatever is there, the search does not write over it: refused before any work."""
    folder = tmp_path / "pixel4"
    folder.mkdir()
    (folder / "pareto.png").write_text("the user's own")
    with pytest.raises(SearchError, match=f"{folder} is not empty: a new search goes into a new or empty folder"):
        search.main(["--target=pixel4", "--estimator", estimator, "--out", str(tmp_path), *QUICK])
    assert [p.name for p in folder.iterdir()] == ["pareto.png"]
    assert (folder / "pareto.png").read_text() == "the user's own"
