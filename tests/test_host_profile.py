"""The host on first use: `predict --target host` on a fresh NAS_HOME measures the blocks it
lacks into this machine's table, then prices; a second call measures nothing; a run killed
mid-way keeps its rows and the rerun measures only the rest."""

import json
import socket
import subprocess

import pytest

from common.locks import LockedError, lock_path
from latency_models import predict
from latency_models.measurement import first_use
from latency_models.measurement.backends import Timing
from latency_models.measurement.host import HostBackend
from latency_models.profiles.registry import host_predictor_path, host_table_path
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.signature import spec_blocks
from nas.search import __main__ as search_command
from nas.search.preparation import BASELINE, HOST_SAMPLES, host_specs
from nas.search.settings import SearchSettings
from search_spaces.zoo import get as zoo_model

SMALL = "mobilenet_v3_small_0.35"


class FakeBackend:
    """Times every model at 1 ms; after `die_after` models it is killed (KeyboardInterrupt)."""

    def __init__(self, die_after: int | None = None):
        self.timed, self.die_after = 0, die_after

    def metadata(self, precision):
        return HostBackend().metadata(precision)

    def time_model(self, model_path):
        if self.die_after is not None and self.timed == self.die_after:
            raise KeyboardInterrupt
        self.timed += 1
        return Timing(1.0, 1.0, 0.0, 1)


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    return tmp_path


def test_first_use_measures_the_network_and_a_starter_sample(fresh_home):
    first = first_use.plan([zoo_model("mobilenet_v2_1.0")])
    keys = {block.key for block in first.missing}
    assert {block.key for block in spec_blocks(zoo_model("mobilenet_v2_1.0"))} <= keys
    assert first_use.MIN_ROWS <= len(first.missing) <= 100  # about a minute and a half here, not 192 blocks
    assert f"measuring {len(first.missing)} blocks of this machine's host table (~" in first.message()
    assert str(host_table_path()) in first.message()


def test_killed_first_use_keeps_its_rows_and_the_rerun_measures_only_the_rest(fresh_home):
    specs = [zoo_model(SMALL)]
    first = first_use.plan(specs)
    with pytest.raises(KeyboardInterrupt):
        first.measure(FakeBackend(die_after=5))
    kept = LatencyTable.load(host_table_path())
    assert set(kept.rows) == {block.key for block in first.missing[:5]}
    assert not host_predictor_path().exists()
    second = first_use.plan(specs)
    assert [b.key for b in second.missing] == [b.key for b in first.missing[5:]]  # only the rest, in order
    backend = FakeBackend()
    predictor = first_use.host_predictor(specs, backend=backend)
    assert backend.timed == len(first.missing) - 5
    assert len(LatencyTable.load(host_table_path())) == len(first.missing)
    assert predictor.metadata["fit"]["rows"] == len(first.missing) and host_predictor_path().exists()
    assert first_use.plan(specs).missing == []  # covered now: nothing to measure


@pytest.mark.slow
def test_predict_host_on_a_fresh_nas_home_prints_a_latency(fresh_home, capsys):
    """Timed for real on this machine: the network's blocks and the starter sample's (about 35 s)."""
    todo = {block.key for block in first_use.plan([zoo_model(SMALL)]).missing}
    assert {block.key for block in spec_blocks(zoo_model(SMALL))} < todo
    assert predict.main(["--target", "host", "--zoo", SMALL]) == 0
    out, err = capsys.readouterr()
    ms = float(out.split(" ms")[0])
    assert 0 < ms < 1000 and f"({SMALL} on host, fp32)" in out
    assert f"measuring {len(todo)} blocks of this machine's host table (~" in err
    table = LatencyTable.load(host_table_path())
    assert set(table.rows) == todo and all(row.median_ms > 0 for row in table.rows.values())
    text, predictor = host_table_path().read_text(), host_predictor_path().read_text()
    assert predict.main(["--target", "host", "--zoo", SMALL]) == 0  # the second call measures nothing
    again, err = capsys.readouterr()
    assert again == out and "measuring" not in err
    assert host_table_path().read_text() == text and host_predictor_path().read_text() == predictor


def test_a_host_search_measures_its_networks_blocks_first(fresh_home, monkeypatch, capsys, tmp_path):
    """`nas.search --target host` on a fresh NAS_HOME: the budget's network and a few searched
    networks are measured first (with the same message), then the search runs; a second search
    measures nothing. (The fake backend keeps it short: timing for real is tested above.)"""
    monkeypatch.setattr(first_use, "HostBackend", FakeBackend)
    settings = SearchSettings(target="host", population=8, generations=2)
    specs = host_specs(settings)
    assert len(specs) == 1 + HOST_SAMPLES and specs[0].name == BASELINE
    wanted = {block.key for spec in specs for block in spec_blocks(spec)}
    assert len(wanted) >= first_use.MIN_ROWS  # enough rows of its own: no starter sample
    quick = ["--target", "host", "--population", "8", "--generations", "2"]
    assert search_command.main([*quick, "--out", str(tmp_path / "one")]) == 0
    err = capsys.readouterr().err
    assert f"measuring {len(wanted)} blocks of this machine's host table" in err
    assert set(LatencyTable.load(host_table_path()).rows) == wanted
    arch = json.loads((tmp_path / "one" / "host" / "arch.json").read_text())
    assert arch["predicted_latency_ms"] <= arch["budget_ms"]
    assert search_command.main([*quick, "--out", str(tmp_path / "two")]) == 0
    assert "measuring" not in capsys.readouterr().err


def test_first_use_keeps_rows_another_process_measured_and_is_refused_while_one_measures(fresh_home):
    specs = [zoo_model(SMALL)]
    first, other = first_use.plan(specs), first_use.plan(specs)
    other.missing = other.missing[:3]
    other.measure(FakeBackend())  # another process, after `first` read the table
    backend = FakeBackend()
    first.measure(backend)
    assert backend.timed == len(first.table) - 3  # the other's rows kept, not measured again
    assert len(LatencyTable.load(host_table_path())) == len(first.table)
    assert not lock_path(host_table_path()).exists()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        lock_path(host_table_path()).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        later = first_use.plan([zoo_model("mobilenet_v2_1.0")])
        with pytest.raises(LockedError, match=f"is being written by pid {sleeper.pid} "):
            later.measure(FakeBackend())
    finally:
        sleeper.kill()
        sleeper.wait()
