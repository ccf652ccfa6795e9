"""Training end to end on a tiny space and data set: the run folder, and a run killed between
checkpoints that resumes to the same parameters as an uninterrupted run of the same length."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from nas.training.run import Run, load_supernet
from nas.training.step import make_mesh

REPO = Path(__file__).resolve().parents[1]
# one stage of the space, 12 px images, 4 classes: compiles in seconds, trains in milliseconds
TINY_FLAGS = ["--stages", "1", "--batch-size", "16", "--cpu-devices", "1", "--eval-images", "32"]
TINY_FLAGS += ["--calib-images", "32", "--log-every", "1"]
TINY_EPOCHS, TINY_IMAGES, TINY_BATCH = 2, 320, 16
TINY_STEPS = TINY_EPOCHS * TINY_IMAGES // TINY_BATCH


def tiny_data(folder: Path) -> Path:
    """Four classes, each a bright quadrant on noise: learnable in a few steps."""
    rng = np.random.default_rng(0)

    def make(n):
        labels = rng.integers(0, 4, n)
        images = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, (c // 2) * 6 : (c // 2) * 6 + 6, (c % 2) * 6 : (c % 2) * 6 + 6] += 150
        return images, labels

    (xt, yt), (xv, yv) = make(TINY_IMAGES), make(64)
    path = folder / "tiny.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xv, y_test=yv)
    return path


def environment(cache: Path) -> dict:
    """Subprocesses share a persistent compilation cache (the tiny step compiles once for the
    whole test session) and compile with less LLVM optimisation (measured: the fastest total for
    one compiling and several cached runs)."""
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "XLA_FLAGS": "--xla_backend_optimization_level=1",
    }


def train(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nas.train", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def compile_cache(pytestconfig, basetemp: Path) -> Path:
    """Where subprocesses keep compiled programs: pytest's cache folder, so they persist across
    test sessions (a cold session compiles the tiny step once, about 15 s), else the session's
    temporary folder. JAX's cache is keyed by program, flags and versions: never stale."""
    cache = getattr(pytestconfig, "cache", None)
    return cache.mkdir("jax-compilation-cache") if cache is not None else basetemp / "jax-cache"


def tiny_run(basetemp: Path, cache: Path) -> Path:
    """An uninterrupted tiny run, trained once per test session and shared (read-only) by the
    tests here, in test_supernet_sharding.py and in test_nas_evaluate.py."""
    out = basetemp / "tiny-run"
    if (out / "config.json").exists() and Run.open(out).latest_step() == TINY_STEPS:
        return out
    process = train([*tiny_args(basetemp), "--out", str(out)], environment(cache))
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    return out


def tiny_args(basetemp: Path) -> list[str]:
    data = basetemp / "tiny.npz"
    if not data.exists():
        tiny_data(basetemp)
    return ["--data", str(data), "--epochs", str(TINY_EPOCHS), "--checkpoint-every", "6", *TINY_FLAGS]


def params_of(path: Path) -> list[np.ndarray]:
    trained = load_supernet(Run.open(path), make_mesh(jax.devices()[:1]))
    return [np.asarray(leaf) for leaf in jax.tree.leaves(trained.params)]


def test_killed_run_resumes_to_the_same_parameters(tmp_path_factory, tmp_path, pytestconfig):
    basetemp = tmp_path_factory.getbasetemp()
    cache = compile_cache(pytestconfig, basetemp)
    whole = tiny_run(basetemp, cache)
    env = environment(cache)
    killed = tmp_path / "killed"
    victim = train([*tiny_args(basetemp), "--out", str(killed)], env)
    checkpoints, metrics = killed / "checkpoints", killed / "metrics.jsonl"
    deadline, killed_at = time.time() + 240, None
    while time.time() < deadline and victim.poll() is None:
        saved = [int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()] if checkpoints.exists() else []
        logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()] if metrics.exists() else []
        if saved and logged and max(logged) > max(saved):  # past a checkpoint, before the next
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = max(logged)
            break
        time.sleep(0.005)
    assert killed_at is not None, "training ended before it could be killed between checkpoints"
    assert killed_at < TINY_STEPS

    resumed = train([*tiny_args(basetemp), "--out", str(killed), "--resume"], env)
    _, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert "resuming at step" in err
    for a, b in zip(params_of(whole), params_of(killed), strict=True):
        np.testing.assert_array_equal(a, b)
    steps = [r["step"] for r in Run.open(killed).metrics() if "loss" in r]
    assert steps == list(range(1, TINY_STEPS + 1))  # the log reads as one uninterrupted run


def test_run_folder_holds_config_checkpoints_and_metrics(tmp_path_factory, pytestconfig):
    basetemp = tmp_path_factory.getbasetemp()
    out = tiny_run(basetemp, compile_cache(pytestconfig, basetemp))
    config = json.loads((out / "config.json").read_text())
    assert config["schema_version"] == 1
    assert config["supernet"] == {
        "space": "mbv3",
        "space_args": {"num_classes": 4, "in_channels": 1, "stages": 1},
        "resolution": 12,
        "bn_eps": 1e-5,
    }
    assert config["train"]["epochs"] == TINY_EPOCHS and config["train"]["seed"] == 0
    assert config["data"]["train"] == TINY_IMAGES and config["data"]["resolution"] == 12
    run = Run.open(out)
    assert run.latest_step() == TINY_STEPS
    records = run.metrics()
    assert [r["step"] for r in records if "eval" in r] == [TINY_STEPS // 2, TINY_STEPS]
    assert records[-1]["eval"]["largest"] > 0.5  # the task is easy


def test_flags_that_would_break_a_run_are_refused(tmp_path_factory, monkeypatch, pytestconfig, capsys):
    from common.cli import UserError
    from nas.train import main

    monkeypatch.setenv("XLA_FLAGS", "")  # main() adds the device count for its own process
    basetemp = tmp_path_factory.getbasetemp()
    out = tiny_run(basetemp, compile_cache(pytestconfig, basetemp))
    with pytest.raises(UserError, match="already holds a run"):
        main([*tiny_args(basetemp), "--out", str(out)])
    with pytest.raises(UserError, match="--epochs 3 differs from the run's 2"):
        main([*tiny_args(basetemp), "--out", str(out), "--resume", "--epochs", "3"])
    with pytest.raises(SystemExit) as exited:  # a flag out of range is a usage error
        main([*tiny_args(basetemp), "--out", str(basetemp / "other"), "--batch-size", "0"])
    assert exited.value.code == 2
    assert "--batch-size: must be >= 1, got 0" in capsys.readouterr().err
