"""`python -m nas.fit_accuracy` on the tiny trained run: subnets evaluated and kept as they come,
a run cut short carries on from its file with the same results, and the predictor is written
with its held-out figures and provenance."""

import json
import subprocess
import sys

from nas.accuracy.estimator import AccuracyPredictor
from nas.accuracy.fitting import DATASET
from tests.test_train import REPO

FLAGS = ["--val-images", "64", "--calib-images", "32", "--steps", "50", "--cpu-devices", "1"]


def fit_accuracy(args, env):
    return subprocess.run(
        [sys.executable, "-m", "nas.fit_accuracy", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collects_resumes_and_fits(trained_tiny, tmp_path):
    import shutil

    source, env = trained_tiny
    run = tmp_path / "run"
    shutil.copytree(source, run)  # the shared run stays read-only
    out = tmp_path / "predictor.json"
    result = fit_accuracy(["--supernet", str(run), "--subnets", "12", "--out", str(out), *FLAGS], env)
    assert result.returncode == 0, result.stderr
    lines = (run / DATASET).read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["val_images"] == 64 and len(rows) == 12
    assert len({tuple(r["choices"]) for r in rows}) == 12 and all(0 <= r["top1"] <= 1 for r in rows)
    predictor = AccuracyPredictor.load(out)
    assert predictor.info["samples"]["subnets"] == 12 and predictor.info["held_out"]["count"] == 2
    assert predictor.info["made_by"].startswith("python -m nas.fit_accuracy --supernet")

    # a run killed in the middle of a line: the finished rows stay as they were, the rest is redone
    (run / DATASET).write_text("\n".join(lines[:6]) + "\n" + lines[6][:15])
    result = fit_accuracy(["--supernet", str(run), "--subnets", "14", "--out", str(out), *FLAGS], env)
    assert result.returncode == 0, result.stderr
    again = (run / DATASET).read_text().splitlines()
    assert again[:6] == lines[:6] and len(again) == 15
    strip = [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in again[1:13]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # same subnets, same top-1

    other_calibration = ["--val-images", "64", "--calib-images", "64", "--cpu-devices", "1"]
    changed = fit_accuracy(["--supernet", str(run), *other_calibration], env)
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1
    assert "made with other settings" in changed.stderr
