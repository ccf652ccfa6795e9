"""`python -m nas.evaluate` on a tiny trained run: subnets by spec, by sampling, and the
one-line errors for architectures outside the supernet and for bad input."""

import json
import subprocess
import sys

import pytest

from nas.supernet.supernet import Layout
from search_spaces import get_space
from tests.test_train import REPO

PROG = "python -m nas.evaluate"


def evaluate(args, env):
    return subprocess.run(
        [sys.executable, "-m", "nas.evaluate", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )


def test_subnets_by_spec_and_by_sampling(trained_tiny, tmp_path):
    run, env = trained_tiny
    from nas.training.run import Run

    layout = Layout(Run.open(run).config.supernet)
    proxy = tmp_path / "proxy.json"
    proxy.write_text(layout.materialize(layout.smallest_choices).to_json())
    # the deployable form of a subnet (224 px, RGB, 1000 classes) is evaluated through its proxy
    deployable = tmp_path / "deployable.json"
    deployable.write_text(get_space("mbv3", stages=1).materialize(layout.largest_choices).to_json())
    result = evaluate(
        ["--supernet", str(run), "--arch", str(proxy), "--arch", str(deployable), "--sample", "2", "--largest"]
        + ["--calib-images", "32", "--json", "--cpu-devices", "1"],
        env,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["mbv3-proxy", "mbv3", "largest", "sample-0", "sample-1"]
    assert all(0 <= r["top1"] <= 1 and r["test_images"] == 64 for r in rows)
    assert rows[1]["top1"] == rows[2]["top1"]  # the same subnet, however it was named
    assert rows[2]["top1"] > 0.5


def test_a_zoo_model_outside_the_supernet_is_one_line_and_exit_2(trained_tiny):
    run, env = trained_tiny
    result = evaluate(["--supernet", str(run), "--zoo", "mobilenet_v2_1.0"], env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"{PROG}: error: mobilenet_v2_1.0 (zoo) is not a subnet of the supernet: stem[0] (conv): "
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--zoo", "mobilenet_v3_large_1.0"],
            r"layers\[3\] \(mbconv, out_ch 40\): a block after the space's last stage \(width 24\)",
        ),
        (["--zoo", "no_such_model"], "unknown zoo model 'no_such_model'"),
        ([], "nothing to evaluate"),
    ],
)
def test_bad_requests(trained_tiny, args, message, monkeypatch):
    from common.cli import UserError
    from nas.evaluate import main

    monkeypatch.setenv("XLA_FLAGS", "")
    run, _ = trained_tiny
    with pytest.raises(UserError, match=message):
        main(["--supernet", str(run), *args])


def test_a_flag_out_of_range_is_a_usage_error(trained_tiny, monkeypatch, capsys):
    from nas.evaluate import main

    monkeypatch.setenv("XLA_FLAGS", "")
    run, _ = trained_tiny
    with pytest.raises(SystemExit) as exited:
        main(["--supernet", str(run), "--sample", "-1"])
    assert exited.value.code == 2
    assert "--sample: must be >= 0, got -1" in capsys.readouterr().err


def test_arch_outside_the_supernet_and_missing_run(trained_tiny, tmp_path, monkeypatch):
    from common.cli import UserError
    from nas.evaluate import main
    from nas.training.run import Run, RunError

    monkeypatch.setenv("XLA_FLAGS", "")
    run, _ = trained_tiny
    layout = Layout(Run.open(run).config.supernet)
    spec = layout.materialize(layout.largest_choices)
    bad = tmp_path / "bad.json"
    bad.write_text(spec.to_json().replace('"activation": "hswish"', '"activation": "relu"', 1))
    with pytest.raises(UserError, match=r"stem\[0\] \(conv\): activation is relu, the supernet's is hswish"):
        main(["--supernet", str(run), "--arch", str(bad)])
    with pytest.raises(RunError, match="not a supernet run"):
        main(["--supernet", str(tmp_path / "nowhere"), "--largest"])


def test_a_compilation_cache_carried_in_a_run_folder_is_never_loaded(trained_tiny, tmp_path):
    """The swap an adversary makes: a run folder whose config and checkpoints are the original's,
    but whose xla-cache holds, under the keys of this run's own evaluation programs, the
    executables compiled for another run (batch-norm epsilon 10). Used as the cache, that folder
    changes the top-1; handed over, it is ignored and the top-1 is the original's."""
    import shutil

    tiny, env = trained_tiny
    original, foreign = tmp_path / "original", tmp_path / "foreign"
    shutil.copytree(tiny, original)
    shutil.copytree(tiny, foreign)
    config = json.loads((foreign / "config.json").read_text())
    config["supernet"]["bn_eps"] = 10.0
    (foreign / "config.json").write_text(json.dumps(config))
    args = ["--largest", "--calib-images", "32", "--json", "--cpu-devices", "1"]

    def start(run, environment):
        return subprocess.Popen(
            [sys.executable, "-m", "nas.evaluate", "--supernet", str(run), *args],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def top1(*processes):
        results = [process.communicate(timeout=240) for process in processes]
        assert all(process.returncode == 0 for process in processes), [stderr for _, stderr in results]
        return [(json.loads(stdout)["top1"], stderr) for stdout, stderr in results]

    def programs(cache):  # the evaluation's own programs, by name (JAX names entries NAME-KEY-cache)
        return {p.name.split("-")[0]: p for p in cache.iterdir() if p.name.startswith(("jit_calibrate", "jit_correct"))}

    carried = original / "xla-cache"  # where earlier versions kept a run's compiled programs
    (expected, _), (other, _) = top1(  # both at once: each compiles its programs for a few seconds
        start(original, {**env, "JAX_COMPILATION_CACHE_DIR": str(carried)}),
        start(foreign, {**env, "JAX_COMPILATION_CACHE_DIR": str(foreign / "xla-cache")}),
    )
    assert other != expected  # the two programs compute different things
    planted = programs(carried)
    assert set(planted) == {"jit_calibrate", "jit_correct"}
    for name, path in programs(foreign / "xla-cache").items():
        shutil.copyfile(path, planted[name])  # the foreign executable under the original's key
    [(swapped, _)] = top1(start(original, {**env, "JAX_COMPILATION_CACHE_DIR": str(carried)}))
    assert swapped == other  # loaded as a cache, the folder's executables run

    before = {p.name: p.read_bytes() for p in carried.iterdir()}
    home = tmp_path / "home"
    own = {k: v for k, v in env.items() if k != "JAX_COMPILATION_CACHE_DIR"} | {"NAS_HOME": str(home)}
    [(handed_over, stderr)] = top1(start(original, own))
    assert handed_over == expected
    assert (
        f"{carried}: ignored (compiled programs are loaded only from this machine's cache, {home / 'xla-cache'})"
        in (stderr)
    )
    assert programs(home / "xla-cache").keys() == {"jit_calibrate", "jit_correct"}  # compiled here, kept here
    assert {p.name: p.read_bytes() for p in carried.iterdir()} == before  # nothing written into the run folder
