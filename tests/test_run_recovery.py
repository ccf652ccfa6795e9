"""Training runs recover: a damaged newest checkpoint falls back to the newest intact one, a
torn last metrics line is dropped, a start that fails writes nothing, and resuming a finished
run changes nothing. Each test damages a copy of the session's tiny run (trained_tiny)."""

import hashlib
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from nas.training.run import Run, RunError, load_supernet
from nas.training.step import make_mesh
from tests.test_train import TINY_FLAGS, TINY_STEPS, params_of, tiny_args, train

KEPT = (TINY_STEPS - 4, TINY_STEPS)  # checkpoints every 6 steps, the last two kept: 36 and 40


def copy_run(trained_tiny, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained_tiny[0], out)
    return out


def garble(out: Path, step: int) -> None:
    """Junk in place of the parameter files of checkpoint `step` (as a disk or a copy may leave)."""
    files = [p for p in (out / "checkpoints" / str(step) / "params").rglob("*") if p.is_file()]
    assert files
    for path in files:
        path.write_bytes(b"\x00junk\xff" * 7)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def resume(out: Path, env: dict, *extra: str) -> tuple[int, str, str]:
    """`nas.train --resume` of `out` with the flags `extra`: (exit code, stdout, stderr)."""
    process = train([*extra, "--out", str(out), "--resume"], env)
    stdout, stderr = process.communicate(timeout=240)
    return process.returncode, stdout, stderr


def test_runs_kept_steps_are_as_assumed(trained_tiny):
    assert tuple(sorted(Run.open(trained_tiny[0]).steps())) == KEPT


def test_damaged_latest_checkpoint_falls_back_to_the_older_one(trained_tiny, tmp_path, tmp_path_factory, capsys):
    out = copy_run(trained_tiny, tmp_path)
    garble(out, TINY_STEPS)
    trained = load_supernet(Run.open(out), make_mesh(jax.devices()[:1]))  # as nas.evaluate and extraction
    assert trained.step == KEPT[0]
    err = capsys.readouterr().err
    assert f"checkpoint step {TINY_STEPS} is damaged (" in err and f"using step {KEPT[0]}" in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = resume(out, trained_tiny[1], *tiny_args(tmp_path_factory.getbasetemp()))
    assert code == 0, err
    assert f"checkpoint step {TINY_STEPS} is damaged (" in err and f"using step {KEPT[0]}" in err
    assert f"resuming at step {KEPT[0]}" in err
    run = Run.open(out)
    assert run.latest_step() == TINY_STEPS
    assert load_supernet(run, make_mesh(jax.devices()[:1])).step == TINY_STEPS  # saved again, intact
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == list(range(1, TINY_STEPS + 1))
    assert [r["step"] for r in run.metrics() if "eval" in r] == [TINY_STEPS // 2, TINY_STEPS]
    # Retrained from the older step, it ends with the parameters of the uninterrupted run.
    for resumed, uninterrupted in zip(params_of(out), params_of(trained_tiny[0]), strict=True):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)


def test_no_intact_checkpoint_is_one_error_naming_the_folder(trained_tiny, tmp_path):
    out = copy_run(trained_tiny, tmp_path)
    for step in KEPT:
        garble(out, step)
    with pytest.raises(RunError, match=f"{out / 'checkpoints'}: no intact checkpoint") as raised:
        load_supernet(Run.open(out), make_mesh(jax.devices()[:1]))
    assert "\n" not in str(raised.value)


def test_torn_last_metrics_line_is_dropped_on_resume(trained_tiny, tmp_path, tmp_path_factory):
    out = copy_run(trained_tiny, tmp_path)
    metrics = out / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole[: len(whole) - 20])  # the final evaluation, cut short by a kill
    lines = len(whole.splitlines())
    assert len(Run.open(out).metrics()) == lines - 1  # reading ignores it

    code, stdout, err = resume(out, trained_tiny[1], *tiny_args(tmp_path_factory.getbasetemp()))
    assert code == 0, err
    assert f"{metrics}: line {lines} is torn (" in err
    records = Run.open(out).metrics()
    assert len(records) == lines and metrics.read_text().endswith("\n")
    assert [r["step"] for r in records if "eval" in r] == [TINY_STEPS // 2, TINY_STEPS]  # evaluated again
    assert "largest" in stdout


def test_corrupt_metrics_line_in_the_middle_is_an_error(trained_tiny, tmp_path):
    out = copy_run(trained_tiny, tmp_path)
    metrics = out / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    lines[2] = '{"step": 3, "lo\n'
    metrics.write_text("".join(lines))
    with pytest.raises(RunError, match=f"{metrics}: line 3: not JSON \\(Unterminated string"):
        Run.open(out).metrics()


def test_resuming_a_finished_run_changes_nothing(trained_tiny, tmp_path, tmp_path_factory):
    out = copy_run(trained_tiny, tmp_path)
    before = digests(out)
    code, stdout, err = resume(out, trained_tiny[1], *tiny_args(tmp_path_factory.getbasetemp()))
    assert code == 0, err
    assert f"already trained ({TINY_STEPS} steps), nothing to do" in err
    assert "largest" in stdout  # the final result, as stored
    assert digests(out) == before


def test_a_start_that_fails_writes_nothing(tmp_path_factory, tmp_path, monkeypatch, trained_tiny):
    import nas.train
    from common.cli import UserError

    monkeypatch.setenv("XLA_FLAGS", "")
    data_args = tiny_args(tmp_path_factory.getbasetemp())
    out = tmp_path / "refused"
    with pytest.raises(UserError, match="--batch-size 16 exceeds the 8 training images"):
        nas.train.main([*data_args, "--train-images", "8", "--out", str(out)])
    assert not out.exists()

    class Broken(Exception):
        pass

    def broken_trainer(*args, **kwargs):
        raise Broken

    monkeypatch.setattr(nas.train, "Trainer", broken_trainer)  # any failure while setting up
    with pytest.raises(Broken):
        nas.train.main([*data_args, "--out", str(out)])
    assert not (out / "config.json").exists()


def test_few_training_images_train(tmp_path_factory, tmp_path, trained_tiny):
    """--train-images below the evaluation batch: recalibration batches shrink to fit (this
    failed after writing config.json, so a plain rerun was refused)."""
    data = tiny_args(tmp_path_factory.getbasetemp())[:2]
    out = tmp_path / "few"
    process = train([*data, *TINY_FLAGS, "--epochs", "1", "--train-images", "64", "--out", str(out)], trained_tiny[1])
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    assert Run.open(out).latest_step() == 64 // 16


DAMAGED_CONFIGS = [
    (lambda c: c["normalizer"]["std"].__setitem__(0, 0.0), "normalizer.std: must be positive, got 0.0"),
    (lambda c: c["normalizer"]["mean"].__setitem__(0, float("nan")), "normalizer: mean and std must be equally long"),
    (lambda c: c["train"].update(epochs=0), "train.epochs: must be a positive integer, got 0"),
    (lambda c: c["train"].update(seed=-1), "train.seed: must be a non-negative integer, got -1"),
    (lambda c: c["train"].update(learning_rate=float("inf")), "train.learning_rate: must be a number in [0, inf)"),
    (lambda c: c["train"].update(label_smoothing=1.5), "train.label_smoothing: must be a number in [0, 1)"),
]


def test_a_run_config_no_training_writes_is_refused_naming_the_field(trained_tiny, tmp_path):
    """A zero normaliser spread once made a trained supernet evaluate at chance; such configs, and
    settings no training uses, are refused when the run is opened, naming the file and field."""
    run, _ = trained_tiny
    saved = json.loads((run / "config.json").read_text())
    assert Run.open(run).config.normalizer.std  # the real one opens
    for edit, message in DAMAGED_CONFIGS:
        folder = tmp_path / "run"
        folder.mkdir(exist_ok=True)
        config = json.loads(json.dumps(saved))
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(RunError) as info:
            Run.open(folder)
        assert str(info.value).startswith(f"{folder / 'config.json'}: ") and message in str(info.value)
    (folder / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(RunError, match="not a UTF-8 text"):
        Run.open(folder)
