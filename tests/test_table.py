"""Latency tables: signatures, file format, merging, coverage, sums."""

import json

import numpy as np
import pytest

from latency_models.tables.latency_table import LatencyRow, LatencyTable, TableError, TableMetadata
from latency_models.tables.signature import Block, block_key, spec_blocks
from search_spaces import Conv, MBConv, get_space
from search_spaces.zoo import get


def meta(**changes):
    fields = dict(device="phone", soc="SoC X", threads=1, precision="fp32", date="2026-11-28", source="test")
    fields.update(changes)
    return TableMetadata(**fields)


def table_for(spec, ms=1.0, **metadata):
    return LatencyTable(meta(**metadata), [LatencyRow(b, ms, ms, 0.0, 10) for b in spec_blocks(spec)])


def test_key_spells_out_the_computation():
    layer = MBConv(24, 32, 5, 2, 3, 72, activation="relu")
    key = block_key(layer, (56, 56, 24), "fp32")
    assert key == (
        "mbconv 56x56x24 out_ch=32 kernel=5 stride=2 expansion=3 mid_ch=72 se_ch=0 activation=relu "
        "groups=1 expand_conv=true fp32"
    )
    assert "se_gate" not in key  # no SE, so its gate cannot matter
    assert block_key(layer, (56, 56, 24), "int8") != key
    assert block_key(layer, (28, 28, 24), "fp32") != key


def test_same_block_from_different_sources_shares_a_key():
    """mbv3 w1.0's stem is MobileNetV3-Large's stem: one row serves both."""
    space = get_space("mbv3")
    values = {d.name: d.options[0] for d in space.dimensions}
    values.update(resolution=224, width=1.0)
    ours = spec_blocks(space.materialize(space.from_values(values)))[0]
    zoo_stem = spec_blocks(get("mobilenet_v3_large_1.0"))[0]
    assert ours.key == zoo_stem.key


def test_save_load_round_trip(tmp_path):
    spec = get("mnasnet_a1")
    table = table_for(spec, 2.0)
    path = tmp_path / "t.jsonl"
    table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded.metadata == table.metadata and loaded.rows == table.rows
    header = json.loads(path.read_text().splitlines()[0])
    assert header["schema_version"] == 1 and header["kind"] == "platform-nas/latency-table"
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed, not left behind
    earlier = path.read_text().replace('"platform-nas/latency-table"', '"latency_table"', 1)
    assert LatencyTable.from_text(earlier).rows == table.rows  # a table of an earlier version still reads


def test_spec_latency_is_the_sum_and_names_a_missing_block():
    spec = get("mnasnet_a1")
    table = table_for(spec, 0.5)
    assert table.spec_latency(spec) == pytest.approx(0.5 * len(spec.shapes))
    other = get("mobilenet_v2_1.0")
    with pytest.raises(KeyError, match="no row for block 'conv 224x224x3"):
        table.spec_latency(get("mobilenet_v1_1.0"))
    coverage = table.coverage(spec_blocks(other))
    assert 0 < coverage.share < 1 and not coverage.complete
    assert all(block.key not in table for block in coverage.missing)


def test_merge_rules():
    a = table_for(get("mnasnet_a1"), 1.0)
    b = table_for(get("mobilenet_v2_1.0"), 2.0)
    with pytest.raises(TableError, match="both tables measure"):
        a.merge(b)  # the stems are the same block with different times
    merged = a.merge(b, prefer="other")
    assert len(merged) == len(set(a.rows) | set(b.rows))
    shared = spec_blocks(get("mnasnet_a1"))[-1].key  # both end in the same 1280 -> 1000 classifier
    assert merged.rows[shared].mean_ms == 2.0 and a.merge(b, prefer="self").rows[shared].mean_ms == 1.0
    with pytest.raises(TableError, match="different threads"):
        a.merge(table_for(get("mobilenet_v2_1.0"), threads=4))
    with pytest.raises(TableError, match="different device"):
        a.merge(table_for(get("mobilenet_v2_1.0"), device="other phone"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("not json\n", r"line 1: not JSON \(Expecting value, line 1 column 1\)"),
        ('{"kind": "something"}\n', "not a latency table"),
        ('{"kind": "latency_table", "schema_version": 7, "metadata": {"device": "x"}}\n', "schema_version 7"),
        ('{"kind": "latency_table", "schema_version": 1, "metadata": {}}\n', "metadata.device: missing"),
        (
            '{"kind": "latency_table", "schema_version": 1, "metadata": {"device": "x"}}\n{"key": \n',
            r"line 2: not JSON \(Expecting value, line 1 column 9\)",
        ),
    ],
)
def test_bad_files_give_clear_errors(text, message):
    with pytest.raises(TableError, match=message):
        LatencyTable.from_text(text)


def test_row_key_must_match_block():
    row = LatencyRow(Block(Conv(3, 8, 3, 2), (32, 32, 3)), 1.0).to_dict()
    row["key"] = "conv something else"
    header = json.dumps({"kind": "latency_table", "schema_version": 1, "metadata": {"device": "x"}})
    with pytest.raises(TableError, match="does not match its block"):
        LatencyTable.from_text(header + "\n" + json.dumps(row) + "\n")


def test_covering_choices_reach_every_block_a_sample_uses():
    """The few networks `covering_choices` builds contain every block random networks use."""
    for name in ("mbv3", "proxyless", "fbnet"):
        space = get_space(name)
        covered = {b.key for c in space.covering_choices() for b in spec_blocks(space.materialize(c, resolution=224))}
        rng = np.random.default_rng(0)
        for _ in range(300):
            spec = space.materialize(space.sample(rng), resolution=224)
            assert {b.key for b in spec_blocks(spec)} <= covered


HEADER = json.dumps({"kind": "latency_table", "schema_version": 1, "metadata": {"device": "x"}})


def _row(**changes):
    row = LatencyRow(Block(Conv(3, 8, 3, 2), (32, 32, 3)), 1.0, 1.0, 0.1, 10).to_dict()
    row.update(changes)
    return json.dumps(row)


@pytest.mark.parametrize(
    "line, message",
    [
        (_row(mean_ms=float("nan")), "line 2: row 'conv 32x32x3 .*': mean_ms must be a finite non-negative number"),
        (_row(mean_ms=float("inf")), "mean_ms must be a finite non-negative number, got inf"),
        (_row(mean_ms=-1.0), "mean_ms must be a finite non-negative number, got -1.0"),
        (_row(median_ms=float("nan")), "median_ms must be a finite non-negative number"),
        (_row(std_ms="wide"), "std_ms must be a finite non-negative number"),
        (_row(count=-3), "count must be a non-negative integer"),
        ("[1, 2]", "line 2: row: expected a JSON object, got list"),
        ("[" * 100_000 + "]" * 100_000, "line 2: JSON nested too deeply"),
        ('{"mean_ms": ' + "9" * 5000 + "}", r"line 2: not readable JSON \(Exceeds the limit"),
    ],
)
def test_rows_with_values_no_timing_has_are_refused_naming_the_line(line, message):
    """NaN, Infinity (JSON lets both through), negative or non-numeric timings, rows that are not
    objects, nesting too deep or numbers too long: one TableError naming the file and line."""
    with pytest.raises(TableError, match=message):
        LatencyTable.from_text(HEADER + "\n" + line + "\n", origin="t.jsonl")


def test_a_table_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\xff\xfe" + HEADER.encode())
    with pytest.raises(TableError, match=r"not a UTF-8 text \(JSON lines\) file"):
        LatencyTable.load(path)


def test_a_row_whose_block_no_network_has_is_refused():
    """An input of 10^400 pixels parsed (JSON has no integer bound) and then overflowed the fit."""
    row = json.loads(_row())
    row["block"]["in_shape"] = [10**400, 32, 3]
    row.pop("key")
    with pytest.raises(TableError, match="line 2: row: bad block .*in_shape: .* is no tensor a network has"):
        LatencyTable.from_text(HEADER + "\n" + json.dumps(row) + "\n", origin="t.jsonl")
