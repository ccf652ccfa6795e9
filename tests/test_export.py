"""`python -m nas.export` with trained weights: batch-norm folding, the three formats, the
verification, and the one-line errors."""

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from latency_models.predictor.batch import SpaceCost
from latency_models.profiles.registry import load_predictor
from nas.accuracy.estimator import fit, proxy_scope, supernet_dimensions
from nas.export.extract import extract
from nas.search.run import search_device, write_record
from nas.search.settings import SearchError, SearchSettings
from nas.supernet.supernet import Layout
from nas.training.run import Run
from search_spaces import get_space
from tests.test_cli import assert_one_line_error
from tests.test_train import REPO

PROG = "python -m nas.export"


def export(args, env):
    return subprocess.run(
        [sys.executable, "-m", "nas.export", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def searched(trained_tiny, tmp_path_factory):
    """A deployable spec of the tiny supernet (224 px, RGB, 1000 classes), as a search writes."""

    run, _ = trained_tiny
    layout = Layout(Run.open(run).config.supernet)
    choices = layout.space.sample(np.random.default_rng(3))
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    path.write_text(get_space("mbv3", stages=1).materialize(choices).to_json())
    return path


def test_folding_batch_norm_keeps_the_network(tmp_path):
    """A SpecNet with non-trivial batch-norm statistics, folded and emitted, computes what it
    computes in eval mode (every layer kind the mbv3 space uses: SE, h-swish, shortcut)."""
    import jax
    from flax import nnx

    from latency_models.tflite.emit import emit_spec
    from latency_models.tflite.runtime import run
    from nas.export.fold import inference_weights
    from nas.supernet.layers import Mode
    from nas.supernet.model import SpecNet

    space = get_space("mbv3", num_classes=10, in_channels=1, stages=2)
    spec = space.materialize(space.sample(np.random.default_rng(0)), resolution=28, proxy=True)
    model = SpecNet(spec, seed=1)
    rng = np.random.default_rng(2)
    state = nnx.state(model)
    randomised = jax.tree.map(lambda x: np.asarray(x) + rng.uniform(0.1, 0.5, np.shape(x)), nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, randomised)
    nnx.update(model, state)
    images = rng.normal(size=(8, 28, 28, 1)).astype(np.float32)
    expected = np.asarray(model(images, Mode("eval")))
    got = run(emit_spec(spec, inference_weights(spec, model)), images)
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_float_export_verifies_against_the_flax_subnet(trained_tiny, searched, tmp_path):
    run, env = trained_tiny
    out = tmp_path / "model.tflite"
    result = export(["--arch", str(searched), "--supernet", str(run), "--out", str(out), "--calib-images", "32"], env)
    assert result.returncode == 0, result.stderr
    assert "verification passed" in result.stdout
    diff = float(re.search(r"max \|diff\| (\S+),", result.stdout).group(1))
    assert diff <= 1e-4
    assert re.search(r"same top-1 on (\d+)/\1", result.stdout)
    assert "host latency" in result.stdout
    sidecar = json.loads((tmp_path / "model.tflite.json").read_text())
    resolution = sidecar["spec"]["resolution"]
    assert sidecar["precision"] == "fp32" and sidecar["input"]["shape"][:3] == [1, resolution, resolution]
    assert sidecar["provenance"]["supernet"] == str(run)
    # verification on its own gives the same agreement
    again = export(
        ["--verify", str(out), "--arch", str(searched), "--supernet", str(run)]
        + ["--calib-images", "32", "--no-latency"],
        env,
    )
    assert again.returncode == 0, again.stderr
    assert f"max |diff| {diff:.2e}" in again.stdout and "host latency" not in again.stdout


def assert_tflm_checked(stdout: str, model: bytes, spec: dict, integer_io: bool, images: int) -> None:
    """The verification ran the int8 model in TFLM on the agreement images and printed TFLM's own
    arena (head, tail, smallest) beside footprint's prediction, and the file's size beside
    flash's."""
    from latency_models.footprint import tflm
    from latency_models.footprint.costs import footprint
    from search_spaces.arch_spec import ArchSpec

    ran = re.search(r"TensorFlow Lite Micro on (\d+) test images: .* same top-1 on (\d+)/", stdout)
    assert int(ran.group(1)) == images and int(ran.group(2)) >= 0.9 * images, stdout
    arena = re.search(
        r"TFLM arena: head (\d+) bytes, predicted (\d+) \((.*?)\); tail (\d+) bytes; "
        r"smallest arena accepted (\d+) bytes",
        stdout,
    )
    head, predicted, verdict, tail, smallest = arena.groups()
    assert (int(head), int(tail), int(smallest)) == dataclasses.astuple(tflm.arena_use(model))
    predicted_costs = footprint(ArchSpec.from_dict(spec), "int8", integer_io)
    assert int(predicted) == predicted_costs.arena_bytes and verdict == "exact"
    flash = re.search(r"flash: (\d+) bytes, predicted (\d+) \(([-+.\d]+)%; limit 1%\)", stdout)
    assert int(flash.group(1)) == len(model) and int(flash.group(2)) == predicted_costs.flash_bytes
    assert abs(float(flash.group(3))) <= 1


def test_int8_export_is_int8_smaller_and_mostly_agrees(trained_tiny, searched, tmp_path):
    from nas.export.verify import is_int8

    run, env = trained_tiny
    out = tmp_path / "int8.tflite"
    args = ["--arch", str(searched), "--supernet", str(run), "--calib-images", "32", "--no-latency"]
    result = export([*args, "--int8", "--calib", "16", "--out", str(out)], env)
    assert result.returncode in (0, 1), result.stderr  # 1: more than a point lost, possible on 64 images
    assert is_int8(out.read_bytes())
    ratio = float(re.search(r"([\d.]+)x smaller than float", result.stdout).group(1))
    assert ratio > 2
    agree, n = map(int, re.search(r"same top-1 on (\d+)/(\d+)", result.stdout).groups())
    assert agree >= 0.8 * n
    spec = json.loads((tmp_path / "int8.tflite.json").read_text())["spec"]
    assert_tflm_checked(result.stdout, out.read_bytes(), spec, integer_io=False, images=n)


def test_integer_io_export_takes_and_gives_int8(trained_tiny, searched, tmp_path):
    """--integer-io: int8 input and output tensors, whose scales and zero points OUT.json gives;
    quantising pixels by its recipe by hand reproduces the top-1 the verification reports, and
    the verification ran TFLM on the quantised images."""
    from latency_models.tflite.runtime import make_interpreter
    from nas.training.data import load_dataset

    run, env = trained_tiny
    out = tmp_path / "io.tflite"
    args = ["--arch", str(searched), "--supernet", str(run), "--calib-images", "32", "--no-latency"]
    result = export([*args, "--int8", "--integer-io", "--calib", "16", "--out", str(out)], env)
    assert result.returncode in (0, 1), result.stderr  # 1: more than a point lost, possible on 64 images
    interpreter = make_interpreter(out.read_bytes())
    (given,), (returned,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert given["dtype"] == np.int8 and returned["dtype"] == np.int8
    sidecar = json.loads((tmp_path / "io.tflite.json").read_text())
    for side, details in (("input", given), ("output", returned)):
        assert sidecar[side]["dtype"] == "int8"
        assert (sidecar[side]["scale"], sidecar[side]["zero_point"]) == pytest.approx(details["quantization"])
    data = load_dataset(json.loads((run / "config.json").read_text())["train"]["data"])
    mean, std = (np.array(sidecar["input"][k], np.float32) for k in ("mean", "std"))
    x = (data.test_x.astype(np.float32) / np.float32(255) - mean) / std
    pixels = np.clip(np.round(x / sidecar["input"]["scale"]) + sidecar["input"]["zero_point"], -128, 127)
    top1 = []
    for image in pixels.astype(np.int8):
        interpreter.set_tensor(given["index"], image[np.newaxis])
        interpreter.invoke()
        q = interpreter.get_tensor(returned["index"])[0].astype(np.float32)
        top1.append(np.argmax((q - sidecar["output"]["zero_point"]) * sidecar["output"]["scale"]))
    reported = float(re.search(r"exported ([\d.]+)%", result.stdout).group(1))
    assert 100 * np.mean(np.array(top1) == data.test_y) == pytest.approx(reported, abs=0.01)
    agree, n = map(int, re.search(r"same top-1 on (\d+)/(\d+)", result.stdout).groups())
    assert agree >= 0.8 * n and "(int8 integer io)" in result.stdout
    assert_tflm_checked(result.stdout, out.read_bytes(), sidecar["spec"], integer_io=True, images=n)


def test_flax_and_spec_formats(trained_tiny, searched, tmp_path):
    from latency_models.tflite.runtime import run as run_tflite
    from nas.export.to_flax import load
    from nas.supernet.layers import Mode
    from nas.training.data import load_dataset
    from search_spaces.arch_spec import ArchSpec

    run, env = trained_tiny
    common = ["--arch", str(searched), "--supernet", str(run), "--calib-images", "32"]
    assert export([*common, "--format", "flax", "--out", str(tmp_path / "flax")], env).returncode == 0
    assert export([*common, "--format", "spec", "--out", str(tmp_path / "spec.json")], env).returncode == 0
    float_run = export([*common, "--no-verify", "--out", str(tmp_path / "m.tflite")], env)
    assert float_run.returncode == 0, float_run.stderr
    model, spec, normalizer = load(tmp_path / "flax")
    assert spec == ArchSpec.load(str(tmp_path / "spec.json"))
    config = json.loads((run / "config.json").read_text())
    images = normalizer(load_dataset(config["train"]["data"]).test_x[:16])
    flax_out = np.asarray(model(images, Mode("eval")))
    assert np.abs(flax_out - run_tflite((tmp_path / "m.tflite").read_bytes(), images)).max() <= 1e-4


def test_an_arch_outside_the_supernet_exits_2_naming_the_layer_and_keeps_the_output(trained_tiny, tmp_path):
    from search_spaces import zoo

    run, env = trained_tiny
    arch = tmp_path / "mbv2.json"
    arch.write_text(zoo.get("mobilenet_v2_1.0").to_json())
    out = tmp_path / "model.tflite"
    out.write_bytes(b"an earlier export")
    result = export(["--arch", str(arch), "--supernet", str(run), "--out", str(out)], env)
    assert_one_line_error(result, f"{PROG}: error: {arch}: not a subnet of the supernet", "stem[0] (conv): ")
    assert out.read_bytes() == b"an earlier export"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "flax", "--int8"], "--int8 applies to --format tflite only"),
        (["--calib", "0"], "--calib: must be >= 1"),
        (["--verify", "missing.tflite"], "--verify missing.tflite: no such file"),
        (["--format", "spec", "--int8", "--integer-io"], "--integer-io applies to --format tflite only"),
    ],
)
def test_bad_requests(trained_tiny, searched, tmp_path, extra, message):
    run, env = trained_tiny
    result = export(["--arch", str(searched), "--supernet", str(run), "--out", str(tmp_path / "m"), *extra], env)
    assert_one_line_error(result, message)


@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_tensorflow_crosscheck_agrees_with_the_emitter(trained_tiny, searched, tmp_path, int8):
    """The `tf` extra (installed by the README's set-up, so CI runs this): jax2tf and TFLite's
    converter turn the same Flax subnet into a model whose outputs match the emitter's; int8,
    calibrated on the same images, they agree on most top-1s and ours is the smaller file (it
    writes the all-zero per-channel zero points once, TensorFlow once per tensor)."""
    pytest.importorskip("tensorflow")
    run, env = trained_tiny
    args = ["--arch", str(searched), "--supernet", str(run), "--calib-images", "32", "--tf-crosscheck"]
    args += ["--int8", "--calib", "32"] if int8 else []
    result = export([*args, "--out", str(tmp_path / "m.tflite")], env)
    assert result.returncode == 0, result.stderr
    found = re.search(
        r"TensorFlow cross-check \((\w+)\) on (\d+) test images: max \|diff\| (\S+), same top-1 on (\d+)/",
        result.stdout,
    )
    precision, images, diff, agree = found.group(1), int(found.group(2)), float(found.group(3)), int(found.group(4))
    theirs = re.search(r"ops, TensorFlow: (.*) \((\S+) MB\)", result.stdout)
    ours = re.search(r"ops, ours: +(.*) \((\S+) MB\)", result.stdout)
    assert "CONV_2D" in theirs.group(1) and "DEPTHWISE_CONV_2D" in theirs.group(1)
    assert re.search(r"host latency: ours \S+ ms, TensorFlow's \S+ ms", result.stdout)
    if int8:
        assert precision == "int8" and "QUANTIZE" in theirs.group(1)
        assert agree >= 0.8 * images
        assert float(ours.group(2)) < float(theirs.group(2))
    else:
        assert precision == "fp32"
        assert diff <= 1e-4 and agree == images


def test_a_search_with_a_supernets_estimator_prices_the_network_export_exports(trained_tiny, tmp_path):
    """The own-supernet path: an estimator fitted on a supernet declares that supernet's proxy form,
    and the search prices exactly the network nas.export then exports from the supernet."""
    run, _ = trained_tiny
    config = Run.open(run).config
    space = config.supernet.build_space()
    choices = np.array([space.sample(np.random.default_rng(i)) for i in range(64)])
    top1 = 0.5 + 0.4 * SpaceCost(space)(choices) / SpaceCost(space)(choices).max()  # synthetic: rises with MACs
    supernet = {
        "proxy_resolution": config.supernet.resolution,
        "space_args": config.supernet.space_args,
        "data": config.data,
    }
    scope = proxy_scope(space.name, supernet, 32)
    path = tmp_path / "estimator.json"
    fit(space, supernet_dimensions(space), choices, top1, steps=50, scope=scope).save(path)
    settings = SearchSettings(target="pixel4", estimator=str(path), latency_ms=50.0, population=8, generations=2)
    write_record(search_device(settings, tmp_path / "search"), tmp_path / "search")
    arch = json.loads((tmp_path / "search" / "arch.json").read_text())
    exported = extract(str(run), str(tmp_path / "search" / "arch.json"), calib_images=32).spec
    assert exported.content_hash() == arch["spec_hash"] and arch["form"] == "proxy"
    assert load_predictor("pixel4").spec_ms(exported) == pytest.approx(arch["predicted_latency_ms"], rel=1e-4)
    # re-scoring on a supernet that trains another form than the estimator scores is refused
    other = proxy_scope(space.name, {**supernet, "proxy_resolution": config.supernet.resolution + 4}, 32)
    fit(space, supernet_dimensions(space), choices, top1, steps=50, scope=other).save(path)
    with pytest.raises(SearchError, match="its supernet trains"):
        search_device(dataclasses.replace(settings, supernet=str(run)), tmp_path / "other")
