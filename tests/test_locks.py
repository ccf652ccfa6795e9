"""Writer locks (`common.locks`): a second writer, in this process or another, is refused with
one line naming the holder; a lock left by a dead process or a garbled lock file is taken over;
the commands that write over time (latency_models.measure, nas.search) exit 2 on a locked
output and write nothing."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from common.cli import run
from common.errors import InputError
from common.locks import LockedError, hold, lock_path
from latency_models import calibrate
from latency_models.profiles.registry import host_predictor_path, load_predictor, save_host_predictor
from latency_models.tables.signature import space_blocks
from nas.search import __main__ as search
from search_spaces import get_space


def write_lock(thing, pid, command="python -m something"):
    record = {"pid": pid, "host": socket.gethostname(), "command": command, "what": "x", "started": time.time()}
    lock_path(thing).write_text(json.dumps(record))


@pytest.fixture
def live_pid():
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()  # reaped: the pid runs nothing now
    return process.pid


def test_a_second_holder_in_this_process_is_refused(tmp_path):
    thing = tmp_path / "table.jsonl"
    with hold(thing, "latency table"):
        assert lock_path(thing).exists() and json.loads(lock_path(thing).read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError) as refused:
            hold(thing, "latency table")
        message = str(refused.value)
        assert isinstance(refused.value, InputError) and "\n" not in message
        assert f"{thing} is being written by pid {os.getpid()}" in message and "wait for it or stop it" in message
    assert not lock_path(thing).exists()
    with hold(thing, "latency table"):  # free again once released
        pass


def test_a_holder_in_another_process_is_refused_and_taken_over_once_killed(tmp_path):
    thing = tmp_path / "out"
    code = f"from common.locks import hold; lock = hold({str(thing)!r}, 'x'); print('held', flush=True); input()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {holder.pid} "):
            hold(thing, "x")
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up: the lock stays behind
        holder.wait()
    assert json.loads(lock_path(thing).read_text())["pid"] == holder.pid
    with hold(thing, "x"):
        assert json.loads(lock_path(thing).read_text())["pid"] == os.getpid()
    assert not lock_path(thing).exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path, dead_pid):
    thing = tmp_path / "profile.json"
    write_lock(thing, dead_pid)
    with hold(thing, "profile"):
        assert json.loads(lock_path(thing).read_text())["pid"] == os.getpid()
    assert not lock_path(thing).exists()


@pytest.mark.parametrize("content", ["", "{oops", "[1, 2]", '{"pid": "seven"}', '{"pid": -1}'])
def test_a_garbled_lock_is_taken_over(tmp_path, content):
    thing = tmp_path / "run"
    lock_path(thing).write_text(content)
    with hold(thing, "run"):
        assert json.loads(lock_path(thing).read_text())["pid"] == os.getpid()
    assert not lock_path(thing).exists()


def test_search_into_a_locked_device_folder_exits_2_and_writes_nothing(tmp_path, live_pid, capsys):
    write_lock(tmp_path / "pixel4", live_pid, "python -m nas.search --target=pixel4")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exit_:
        run(search.main, search.PROG, ["--target=pixel4", "--out", str(tmp_path), "--population", "8"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"pixel4 is being written by pid {live_pid} (python -m nas.search --target=pixel4, since" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert json.loads(lock_path(tmp_path / "pixel4").read_text())["pid"] == live_pid  # left alone


def test_measure_on_a_locked_table_exits_2(tmp_path, live_pid):
    out = tmp_path / "t.jsonl"
    write_lock(out, live_pid, "python -m latency_models.measure --target host")
    result = subprocess.run(
        [sys.executable, "-m", "latency_models.measure", "--target", "host", "--space", "fbnet_cifar"]
        + ["--limit", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"is being written by pid {live_pid}" in result.stderr
    assert not out.exists()


def test_train_into_a_locked_run_folder_exits_2(tmp_path, live_pid):
    out = tmp_path / "run"
    write_lock(out, live_pid, "python -m nas.train --out run")
    result = subprocess.run(
        [sys.executable, "-m", "nas.train", "--data", "fashion-mnist", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"run is being written by pid {live_pid} (python -m nas.train --out run, since" in result.stderr
    assert not out.exists()


def test_calibrate_into_a_locked_profile_exits_2(tmp_path, live_pid, monkeypatch, capsys):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    out = tmp_path / "phone.json"
    write_lock(out, live_pid)
    rows = "arch,ms\n" + "".join(f"{name},{ms}\n" for name, ms in [("mobilenet_v2_1.0", 30), ("mnasnet_a1", 35)])
    (tmp_path / "phone.csv").write_text(rows)
    argv = ["--base", "note10", "--measurements", str(tmp_path / "phone.csv"), "--name", "phone", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        run(calibrate.main, calibrate.PROG, argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"is being written by pid {live_pid}" in err
    assert not out.exists()


def test_the_host_predictor_has_one_writer(tmp_path, live_pid, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    path = host_predictor_path("fp32")
    path.parent.mkdir(parents=True)
    write_lock(path, live_pid, "python -m latency_models.evaluate --target host")
    with pytest.raises(LockedError, match=f"is being written by pid {live_pid}"):
        save_host_predictor(load_predictor("pixel1"), "fp32")
    assert not path.exists()


def _wait_for(path, process, seconds=120):
    """Until `path` exists (the first writer holds its lock), or fail if the process ended first."""
    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline
        time.sleep(0.05)


def test_two_real_measures_on_one_table_lose_no_row(tmp_path):
    """Two `measure` processes on one table at once: the second is refused while the first
    measures, and the table ends with every block, as one uninterrupted measure writes it."""
    out = tmp_path / "t.jsonl"
    args = [sys.executable, "-m", "latency_models.measure", "--target", "host", "--space", "fbnet_cifar"]
    args += ["--resolution", "32", "--out", str(out)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lock_path(out), first)
    second = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert second.returncode == 2 and f"is being written by pid {first.pid}" in second.stderr
    keys = {json.loads(row)["key"] for row in out.read_text().splitlines()[1:]}
    assert keys == {block.key for block in space_blocks(get_space("fbnet_cifar"), 32)}  # every block, once


def test_two_real_searches_on_one_out_leave_one_consistent_folder(tmp_path):
    out = tmp_path / "s"
    common = [sys.executable, "-m", "nas.search", "--target=pixel4", "--out", str(out), "--generations", "30"]
    first = subprocess.Popen([*common, "--seed", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lock_path(out / "pixel4"), first)
    second = subprocess.run([*common, "--seed", "1"], capture_output=True, text=True, timeout=300)
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert second.returncode == 2 and f"is being written by pid {first.pid}" in second.stderr
    arch = json.loads((out / "pixel4" / "arch.json").read_text())
    state = json.loads((out / "pixel4" / "search-state.json").read_text())
    assert arch["seed"] == 0 and state["settings"]["seed"] == 0  # one search's files, not a mix
