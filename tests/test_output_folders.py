"""No command deletes or replaces what it did not write: for each command that writes a folder,
an existing folder holding an unrelated file keeps it. A command that makes a folder of its own
(a Flax export, a run, a device's search) is refused, one line and exit 2, where the folder holds
anything; one that writes named files into a folder (a search's OUT, build_profiles, calibrate's
profiles, latency_models.evaluate) writes those and leaves the rest alone. The successful
searches and latency_models.evaluate's run are in test_search.py and test_evaluate.py."""

import subprocess
import sys

import pytest

from common.cli import run
from tests.test_train import REPO

UNRELATED = "notes.txt"


def folder_with_a_file(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / UNRELATED).write_text("mine")
    return path


def kept(folder) -> bool:
    return (folder / UNRELATED).read_text() == "mine"


def one_line_exit_2(main, prog, args, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        run(main, prog, args)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_export_refuses_a_folder_that_holds_anything(tmp_path, capsys):
    from nas.export import __main__ as export

    out = folder_with_a_file(tmp_path / "flax")
    arch = tmp_path / "arch.json"  # refused before the spec or the supernet is read
    base = ["--arch", str(arch), "--supernet", str(tmp_path / "run")]
    err = one_line_exit_2(export.main, export.PROG, [*base, "--format", "flax", "--out", str(out)], capsys)
    assert f"{out} is not empty: a Flax export goes into a new or empty folder" in err
    for fmt in ("spec", "tflite"):  # these write a file, never in place of a folder
        err = one_line_exit_2(export.main, export.PROG, [*base, "--format", fmt, "--out", str(out)], capsys)
        assert f"{out} is a folder: --format {fmt} writes a file there" in err
    assert kept(out) and sorted(p.name for p in out.iterdir()) == [UNRELATED]


def test_the_flax_writer_itself_never_replaces_a_folder(tmp_path):
    """The library's own check, for callers that skip the command's: a folder that holds anything
    is refused before anything is built."""
    from nas.export.to_flax import FlaxExportError, save

    out = folder_with_a_file(tmp_path / "flax")
    with pytest.raises(FlaxExportError, match="is not empty"):
        save(None, out)  # refused before the extracted network is looked at
    assert kept(out) and [p.name for p in tmp_path.iterdir()] == ["flax"]  # no staging folder left


def test_train_refuses_a_new_run_in_a_folder_that_holds_anything(trained_tiny, tmp_path):
    _, env = trained_tiny
    out = folder_with_a_file(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "nas.train", "--data", "fashion-mnist", "--out", str(out)],
        cwd=REPO,
        env={**env, "NAS_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"python -m nas.train: error: {out} is not empty: a new run goes into a new or empty folder "
        "(nothing there is replaced)"
    )
    assert kept(out) and sorted(p.name for p in out.iterdir()) == [UNRELATED]


def test_build_profiles_writes_its_profiles_beside_other_files(tmp_path, capsys):
    from latency_models import build_profiles
    from latency_models.predictor.latency_predictor import LatencyPredictor

    out = folder_with_a_file(tmp_path / "profiles")
    assert build_profiles.main(["--device", "pixel1", "--out", str(out)]) == 0
    assert kept(out) and sorted(p.name for p in out.iterdir()) == [UNRELATED, "pixel1-fp32.json"]
    assert LatencyPredictor.load(out / "pixel1-fp32.json").metadata["device"] == "pixel1"


def test_calibrate_writes_its_profile_beside_other_files_and_never_over_a_folder(tmp_path, monkeypatch, capsys):
    from latency_models import calibrate
    from tests.test_calibrate import good_csv

    home = tmp_path / "home"
    monkeypatch.setenv("NAS_HOME", str(home))
    profiles = folder_with_a_file(home / "profiles")
    measurements = ["--base", "note10", "--measurements", good_csv(tmp_path), "--steps", "50"]
    assert calibrate.main([*measurements, "--name", "my_phone"]) == 0
    assert kept(profiles) and sorted(p.name for p in profiles.iterdir()) == ["my_phone-fp32.json", UNRELATED]
    out = folder_with_a_file(tmp_path / "out")
    err = one_line_exit_2(calibrate.main, calibrate.PROG, [*measurements, "--name", "x", "--out", str(out)], capsys)
    assert f"cannot write {out}" in err
    assert kept(out) and sorted(p.name for p in out.iterdir()) == [UNRELATED]
