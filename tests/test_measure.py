"""`latency_models.measure` on this machine: rows land one at a time, a killed run resumes
without re-measuring or losing rows, and bad input exits 2."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from latency_models.measurement.backends import BlockError, Timing
from latency_models.measurement.block_timing import measure_into
from latency_models.tables.latency_table import LatencyTable, TableMetadata
from latency_models.tables.signature import space_blocks
from latency_models.tflite.emit import emit_block
from search_spaces import get_space

MEASURE = [sys.executable, "-m", "latency_models.measure", "--target", "host"]


def measure(*args, timeout=300):
    return subprocess.run([*MEASURE, *args], capture_output=True, text=True, timeout=timeout)


def test_measures_blocks_into_a_table(tmp_path):
    out = tmp_path / "host.jsonl"
    result = measure("--space", "fbnet_cifar", "--resolution", "32", "--limit", "6", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = LatencyTable.load(out)
    assert len(table) == 6
    assert table.metadata.device == "host" and table.metadata.threads == 1 and table.metadata.delegate == "xnnpack"
    assert table.metadata.runtime_version.startswith("ai-edge-litert")
    for row in table.rows.values():
        assert row.median_ms > 0 and row.count == 250 and row.block.precision == "fp32"
    expected = {b.key for b in space_blocks(get_space("fbnet_cifar"), 32)[:6]}
    assert set(table.rows) == expected
    twice = tmp_path / "twice.jsonl"
    result = measure(
        "--space", "fbnet_cifar", "--resolution", "32", "--limit", "2", "--block-passes", "2", "--out", str(twice)
    )
    assert result.returncode == 0, result.stderr
    assert [row.count for row in LatencyTable.load(twice).rows.values()] == [500, 500]  # both passes' runs


def test_killed_run_resumes_without_remeasuring_or_losing_rows(tmp_path):
    out = tmp_path / "host.jsonl"
    process = subprocess.Popen(
        [*MEASURE, "--space", "mbv3", "--resolution", "224", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up: as if the machine died
    process.wait()
    before = LatencyTable.load(out)  # whatever moment it died, the file is a valid table
    assert 4 <= len(before) < len(space_blocks(get_space("mbv3"), 224))
    result = measure("--space", "mbv3", "--resolution", "224", "--out", str(out), "--resume", "--limit", "3")
    assert result.returncode == 0, result.stderr
    after = LatencyTable.load(out)
    assert len(after) == len(before) + 3
    for key, row in before.rows.items():
        assert after.rows[key] == row  # kept exactly, not measured again
    assert f"{len(before)} already in" in result.stderr
    assert not (tmp_path / "host.jsonl.lock").exists()  # the killed run's lock was taken over, then released


def test_proxy_form_measures_the_blocks_a_supernet_trains(tmp_path):
    """--proxy --in-channels 1 --classes 10: the 28 px, 8x-downsampled, half-width networks of
    a Fashion-MNIST supernet, whose blocks the deployable form never has."""
    out = tmp_path / "proxy.jsonl"
    form = ("--space", "mbv3", "--resolution", "28", "--proxy", "--in-channels", "1", "--classes", "10")
    result = measure(*form, "--limit", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    space = get_space("mbv3", num_classes=10, in_channels=1)
    proxy = space_blocks(space, 28, proxy=True)
    assert set(LatencyTable.load(out).rows) == {b.key for b in proxy[:3]}
    assert proxy[0].in_shape == (28, 28, 1)
    assert proxy[0].key not in {b.key for b in space_blocks(space, 28)}  # a half-width stem: another block
    bad = measure(*form[:-2], "--classes", "0", "--out", str(tmp_path / "x.jsonl"))
    assert bad.returncode == 2 and "argument --classes: must be >= 1, got 0" in bad.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--target", "phone"), "--target: expected 'host' or 'adb:SERIAL'"),
        (("--target", "host", "--resolution", "0"), "argument --resolution: must be >= 1, got 0"),
        (("--target", "host", "--space", "resnet"), "invalid choice: 'resnet'"),
    ],
)
def test_bad_arguments(args, message):
    result = subprocess.run([sys.executable, "-m", "latency_models.measure", *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_existing_table_is_never_overwritten(tmp_path):
    out = tmp_path / "t.jsonl"
    assert measure("--space", "fbnet_cifar", "--limit", "1", "--out", str(out)).returncode == 0
    content = out.read_text()
    result = measure("--space", "fbnet_cifar", "--limit", "1", "--out", str(out))
    assert result.returncode == 2 and "pass --resume" in result.stderr
    result = measure("--space", "fbnet_cifar", "--limit", "1", "--out", str(out), "--resume", "--threads", "2")
    assert result.returncode == 2 and "threads=1" in result.stderr
    assert out.read_text() == content


def test_resume_refuses_a_corrupt_table(tmp_path):
    out = tmp_path / "t.jsonl"
    out.write_text(
        json.dumps({"kind": "latency_table", "schema_version": 1, "metadata": {"device": "host"}}) + "\n{oops\n"
    )
    result = measure("--space", "fbnet_cifar", "--out", str(out), "--resume")
    assert result.returncode == 2 and "line 2: not JSON (Expecting property name" in result.stderr


def test_phone_run_keeps_rows_through_a_failing_model_and_a_dying_device(tmp_path):
    """Against the fake adb (tests/fake_adb): the second block fails to run and is skipped, the
    device drops off after three more benchmark runs; the rows measured stay, and --resume completes the table."""
    fake = os.path.join(os.path.dirname(__file__), "fake_adb")
    root = tmp_path / "phone"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_ADB_")}
    env.update(FAKE_ADB_ROOT=str(root), PATH=f"{fake}{os.pathsep}{env.get('PATH', '')}")
    out = tmp_path / "pixel4.jsonl"
    args = [
        sys.executable,
        "-m",
        "latency_models.measure",
        "--target",
        "adb:FAKE0PIXEL4",
        "--cpu-mask",
        "80",
        "--space",
        "fbnet_cifar",
        "--resolution",
        "32",
        "--out",
        str(out),
    ]
    first = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "FAKE_ADB_FAIL_MODEL": "block0001", "FAKE_ADB_DIE_AFTER": "3"},
    )
    assert first.returncode == 1
    assert "skipped" in first.stderr and "offline" in first.stderr and "3 rows kept" in first.stderr
    kept = LatencyTable.load(out)
    assert len(kept) == 3 and kept.metadata.device == "Google Pixel 4" and kept.metadata.threads == 1
    (root / "offline").unlink()  # the fake's state: plug the phone back in
    second = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr
    done = LatencyTable.load(out)
    assert done.coverage(space_blocks(get_space("fbnet_cifar"), 32)).complete
    assert all(done.rows[key] == row for key, row in kept.rows.items())


class DriftingBackend:
    """Times every model at 1 ms, except the 3rd to 6th timings, taken while the machine ran 20%
    fast; the model named in `broken` cannot be timed at all."""

    def __init__(self, broken=None):
        self.calls, self.broken = 0, broken

    def time_model(self, path):
        self.calls += 1
        if self.broken is not None and path.read_bytes() == self.broken:
            raise BlockError("unsupported op")
        ms = 0.8 if 3 <= self.calls <= 6 else 1.0
        return Timing(ms, ms, 0.01, 100)


def test_blocks_timed_in_passes_keep_the_median_through_a_drift(tmp_path):
    blocks = space_blocks(get_space("fbnet_cifar"), 32)[:6]
    out, timed = tmp_path / "t.jsonl", []
    table = LatencyTable(TableMetadata("fake"))
    failed = measure_into(DriftingBackend(), blocks, table, out, lambda block, error: timed.append(block.key), passes=3)
    assert failed == [] and len(timed) == 18 and LatencyTable.load(out).rows == table.rows
    assert timed[:6] == [b.key for b in blocks] and timed[6:12] != timed[:6]  # later passes reshuffled
    for row in table.rows.values():
        assert row.ms == 1.0 and row.count == 300  # a drifted timing is one of three: the median ignores it
    drifted = [row for row in table.rows.values() if row.mean_ms < 1.0]
    assert len(drifted) == 4 and all(row.std_ms > 0.01 for row in drifted)
    # one pass, as before: the drifted blocks keep the drifted timing
    single = LatencyTable(TableMetadata("fake"))
    measure_into(DriftingBackend(), blocks, single, tmp_path / "s.jsonl")
    assert sorted(row.ms for row in single.rows.values()) == [0.8] * 4 + [1.0] * 2


def test_a_block_that_cannot_be_timed_is_reported_once_over_all_passes(tmp_path):
    blocks = space_blocks(get_space("fbnet_cifar"), 32)[:3]
    table = LatencyTable(TableMetadata("fake"))
    backend = DriftingBackend(broken=emit_block(blocks[1]))
    failed = measure_into(backend, blocks, table, tmp_path / "t.jsonl", passes=2)
    assert [block.key for block, _ in failed] == [blocks[1].key] and set(table.rows) == {blocks[0].key, blocks[2].key}
    assert backend.calls == 5  # not retried in the second pass
