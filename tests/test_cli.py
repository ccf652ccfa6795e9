"""The command lines as a user runs them: output, JSON, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from search_spaces import ArchSpec
from search_spaces.graph import count_macs, count_params
from search_spaces.zoo import get


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_zoo_list_json_has_every_model():
    result = run("search_spaces.zoo", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mobilenet_v2_1.0"]["macs"] == count_macs(get("mobilenet_v2_1.0"))
    assert rows["efficientnet_lite4"]["resolution"] == 300


def test_zoo_show_json_includes_macs_params_and_spec():
    result = run("search_spaces.zoo", "show", "mobilenet_v3_large_1.0", "--resolution", "192", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    spec = ArchSpec.from_dict(data["spec"])
    assert spec.resolution == 192 and spec == get("mobilenet_v3_large_1.0", resolution=192)
    assert data["macs"] == count_macs(spec) and data["params"] == count_params(spec)
    assert data["layers"][0]["out_shape"] == [96, 96, 16]


def test_zoo_show_table():
    result = run("search_spaces.zoo", "show", "mnasnet_a1")
    assert result.returncode == 0
    assert "mnasnet_a1" in result.stdout and "MACs 311.6 M" in result.stdout


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("search_spaces.zoo", "show", "resnet50"), ["unknown model 'resnet50'"]),
        (
            ("search_spaces.zoo", "show", "mnasnet_a1", "--resolution", "-3"),
            ["argument --resolution: must be >= 1, got -3"],
        ),
        (
            ("search_spaces.zoo", "show", "mnasnet_a1", "--resolution", "big"),
            ["argument --resolution: expected an integer, got 'big'"],
        ),
        (("search_spaces.zoo",), ["required: command"]),
        (("search_spaces.spec", "sample", "--space", "nasnet"), ["invalid choice: 'nasnet'"]),
        (("search_spaces.spec", "show", "/nonexistent/arch.json"), ["cannot read /nonexistent/arch.json"]),
        (("search_spaces.spec", "sample", "--seed", "-1"), ["argument --seed: must be >= 0, got -1"]),
        (("nas.search", "--seed", "-1"), ["argument --seed: must be >= 0, got -1"]),
        (("nas.train", "--seed", "-1"), ["argument --seed: must be >= 0, got -1"]),
        (("nas.search", "--population", "1000000000"), ["argument --population: must be <= 100,000"]),
        (("nas.search", "--generations", "1000000"), ["argument --generations: must be <= 10,000"]),
        (("nas.search", "--latency-ms", "inf"), ["argument --latency-ms: must be in (0, inf), got inf"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, fragments):
    assert_one_line_error(run(*args), *fragments)


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda d: d["layers"][2].update(kernel=4), ["layers[2].kernel: must be odd"]),
        (lambda d: d["layers"][2].update(in_ch=999), ["layers[2] (mbconv).in_ch: 999 does not match"]),
        (lambda d: d["stem"][0].update(activation="gelu"), ["stem[0].activation: unknown value 'gelu'"]),
        (lambda d: d.pop("resolution"), ["resolution: missing"]),
    ],
)
def test_invalid_spec_file_exits_2_naming_the_field(tmp_path, edit, fragments):
    data = get("mobilenet_v2_1.0").to_dict()
    edit(data)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    assert_one_line_error(run("search_spaces.spec", "show", str(path)), str(path), *fragments)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"\xff\xfe{}", "not a UTF-8 text (JSON) file"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"resolution": ' + b"9" * 5000 + b"}", "not readable JSON"),
    ],
)
def test_unreadable_spec_file_exits_2(tmp_path, content, fragment):
    path = tmp_path / "arch.json"
    path.write_bytes(content)
    assert_one_line_error(run("search_spaces.spec", "show", str(path)), str(path), fragment)


def test_truncated_spec_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(get("mnasnet_a1").to_json()[:200])
    assert_one_line_error(run("search_spaces.spec", "show", str(path)), f"{path}: not JSON (")


def test_spec_sample_then_show_round_trips(tmp_path):
    path = tmp_path / "out" / "arch.json"
    result = run("search_spaces.spec", "sample", "--space", "proxyless", "--seed", "5", "--out", str(path))
    assert result.returncode == 0, result.stderr
    spec = ArchSpec.from_json(path.read_text())
    again = run("search_spaces.spec", "sample", "--space", "proxyless", "--seed", "5")
    assert ArchSpec.from_json(again.stdout) == spec  # same seed, same spec
    shown = run("search_spaces.spec", "show", str(path), "--json")
    assert json.loads(shown.stdout)["content_hash"] == spec.content_hash()
    assert not [p for p in path.parent.iterdir() if p.name != "arch.json"]  # no temp files left


def test_main_job_runs_with_what_ships(tmp_path):
    """The README's main job, as a fresh install runs it: bundled pixel4 predictor and estimator."""
    result = run("nas.search", "--target=pixel4", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "pixel4").iterdir()} >= {"arch.json", "pareto.json", "pareto.png", "report.md"}
    assert "ms = mobilenet_v2_1.0 at 224 px on pixel4, predicted" in result.stderr


@pytest.mark.parametrize(
    "flags, dtype, interface",
    [((), "float32", "float32"), (("--int8",), "int8", "float32"), (("--int8", "--integer-io"), "int8", "int8")],
)
def test_export_random_weights_tflite(tmp_path, flags, dtype, interface):
    from latency_models.tflite.runtime import make_interpreter

    arch = tmp_path / "arch.json"
    arch.write_text(get("mobilenet_v3_small_1.0", resolution=96).to_json())
    out = tmp_path / "m.tflite"
    result = run("nas.export", "--arch", str(arch), "--format", "tflite", "--random-weights", *flags, "--out", str(out))
    assert result.returncode == 0, result.stderr
    interpreter = make_interpreter(out.read_bytes())
    assert tuple(interpreter.get_input_details()[0]["shape"]) == (1, 96, 96, 3)
    assert tuple(interpreter.get_output_details()[0]["shape"]) == (1, 1000)
    conv = [d for d in interpreter.get_tensor_details() if d["name"] == "stem[0]"][0]
    assert np.dtype(conv["dtype"]) == np.dtype(dtype)
    ends = [*interpreter.get_input_details(), *interpreter.get_output_details()]
    assert {np.dtype(d["dtype"]) for d in ends} == {np.dtype(interface)}
    interpreter.invoke()


def test_export_errors(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(get("mnasnet_a1").to_json())
    out = tmp_path / "m.tflite"
    assert_one_line_error(run("nas.export", "--arch", str(arch), "--out", str(out)), "--random-weights")
    assert_one_line_error(
        run("nas.export", "--arch", str(arch), "--random-weights", "--integer-io", "--out", str(out)),
        "--integer-io needs --int8",
    )
    arch.write_text("{}")
    assert_one_line_error(
        run("nas.export", "--arch", str(arch), "--random-weights", "--out", str(out)), "schema_version"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "command, where, fragment",
    [
        (("nas.search", "--target=pixel4", "--out"), "", "pixel4: cannot write there (File exists: "),
        (
            ("latency_models.measure", "--target", "host", "--space", "fbnet_cifar", "--out"),
            "/t.jsonl",
            "t.jsonl: cannot write there (File exists: ",
        ),
        (("nas.train", "--epochs", "1", "--out"), "", ": a file, not a run folder"),
        (("nas.import_estimator", "--out"), "/e.json", "cannot use "),
    ],
)
def test_an_output_place_that_is_a_file_exits_2_before_any_work(tmp_path, command, where, fragment):
    occupied = tmp_path / "occupied"
    occupied.write_text("a file a user keeps")
    result = run(*command, f"{occupied}{where}")
    assert_one_line_error(result, str(occupied), fragment)
    assert occupied.read_text() == "a file a user keeps"
