"""Importers of other projects' latency tables: the imported rows price our specs as the source
projects do (OFA's Note10 estimate, HELP's sums of the HW-NAS-Bench table), cover the spaces
they were measured for, and the command line round-trips and fails in one line."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from latency_models.import_table import main
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.other_projects import ImportFormatError, import_hwnasbench, import_ofa, import_proxyless
from latency_models.tables.signature import Block, space_blocks, spec_blocks
from search_spaces import Dense, FBNetSpace, GlobalPool, MBConv, MobileNetV3Space, ProxylessSpace
from search_spaces.ofa_config import parse_net_config
from search_spaces.zoo import get as zoo_model

RESOLUTIONS = (160, 176, 192, 208, 224)


def ofa_files(data: Path) -> list[Path]:
    return [data / "raw" / "ofa_note10" / f"{r}_lookup_table.yaml" for r in RESOLUTIONS]


# --- the formats, on small files written here ---------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_ofa_expand_is_the_middle_width_and_se_follows_ofa(tmp_path):
    key = "expanded_conv-input:28x28x48-output:28x28x48-expand:192-kernel:5-stride:1-idskip:1-se:1-hs:0"
    table = import_ofa([write(tmp_path / "t.yaml", f"{key}:\n  count: 10\n  mean: 1.5\n  std: 0.25\n")])
    (row,) = table.rows.values()
    assert row.block == Block(MBConv(48, 48, 5, 1, 4, 192, se_ch=48, activation="relu"), (28, 28, 48))
    assert (row.mean_ms, row.median_ms, row.std_ms, row.count, row.ms) == (1.5, None, 0.25, 10, 1.5)


def test_proxyless_expand_is_the_ratio_and_var_becomes_std(tmp_path):
    key = "expanded_conv-input:56x56x24-output:28x28x40-expand:6-kernel:7-stride:2-idskip:0"
    table = import_proxyless([write(tmp_path / "t.yaml", f"{key}:\n  count: 3\n  mean: 2.0\n  var: 0.25\n")])
    (row,) = table.rows.values()
    assert row.block == Block(MBConv(24, 40, 7, 2, 6, 144, activation="relu6"), (56, 56, 24))
    assert (row.mean_ms, row.std_ms, row.count) == (2.0, 0.5, 3)


def test_a_block_in_several_files_keeps_the_highest_resolution_row(tmp_path):
    def table_at(resolution: int, logits_ms: float) -> Path:
        stem = f"Conv-input:{resolution}x{resolution}x3-output:{resolution // 2}x{resolution // 2}x24"
        logits = "Logits-input:1x1x1536-output:1000"
        text = f"{stem}: {{count: 1, mean: 1, std: 0}}\n{logits}: {{count: 9, mean: {logits_ms}, std: 0}}\n"
        return write(tmp_path / f"{resolution}.yaml", text)

    low, high = table_at(160, 0.5), table_at(224, 0.7)
    for order in ([low, high], [high, low]):
        table = import_ofa(order)
        assert len(table) == 3 and table.get(Block(Dense(1536, 1000), (1, 1, 1536))).mean_ms == 0.7


@pytest.mark.parametrize(
    "importer, text, fragment",
    [
        (import_ofa, "a: [1, 2\n", "not YAML"),
        (import_ofa, "- 1\n- 2\n", "not a lookup table"),
        (import_ofa, "Squeeze-input:7x7x3-output:7x7x3: {count: 1, mean: 1, std: 0}\n", "unknown entry"),
        (import_ofa, "Conv-input:224x224x3-output:112x112x24: {count: 1, mean: 1}\n", "missing statistic 'std'"),
        (import_ofa, "Conv-input:224x224x3-output:30x30x24: {count: 1, mean: 1, std: 0}\n", "no stride 1 or 2"),
        (
            import_proxyless,
            "expanded_conv-input:7x7x8-output:7x7x8-expand:3-kernel:3-stride:1-idskip:1-se:0-hs:0: {mean: 1}\n",
            "unexpected field 'hs'",
        ),
        (
            import_proxyless,
            "expanded_conv-input:7x7x8-output:7x7x8-expand:3-kernel:3-stride:1-idskip:0: {count: 1, mean: 1, var: 0}\n",
            "idskip:0 contradicts",
        ),
    ],
)
def test_malformed_yaml_is_an_import_error(tmp_path, importer, text, fragment):
    with pytest.raises(ImportFormatError, match=fragment):
        importer([write(tmp_path / "t.yaml", text)])


# --- the published tables ------------------------------------------------------------------------


def test_ofa_note10_prices_the_30ms_subnet_as_published(latency_data):
    table = import_ofa(ofa_files(latency_data))
    config = latency_data / "raw" / "ofa_specialized" / "note10_lat-30ms_top1-78.4_finetune-75.net.config"
    spec = parse_net_config(json.loads(config.read_text()), resolution=224)
    assert table.coverage(spec_blocks(spec)).complete
    assert table.spec_latency(spec) == pytest.approx(29.97, abs=0.01)  # 29.9653


def test_ofa_note10_covers_the_w12_mbv3_space_at_every_table_resolution(latency_data):
    table = import_ofa(ofa_files(latency_data))
    space = MobileNetV3Space()
    for resolution in RESOLUTIONS:
        coverage = table.coverage(space_blocks(space, resolution, where={"width": 1.2, "resolution": 224}))
        assert coverage.complete and len(coverage.needed) == 96, resolution
    # 96 entries per file, 450 distinct blocks: the head layers and 6x6/7x7 last-stage blocks recur.
    assert len(table) == 450
    meta = table.metadata
    assert (meta.device, meta.runtime, meta.soc, meta.threads, meta.precision) == ("note10", "tflite", "", None, "fp32")
    assert "224_lookup_table.yaml" in meta.source and "once-for-all" in meta.source


def test_proxyless_covers_the_proxyless_space_and_splits_logits(latency_data):
    table = import_proxyless([latency_data / "raw" / "proxylessnas" / "mobile_trim.yaml"])
    assert table.coverage(space_blocks(ProxylessSpace())).complete
    assert table.get(Block(GlobalPool(1280), (7, 7, 1280))).mean_ms == 0.0
    assert table.get(Block(Dense(1280, 1000), (1, 1, 1280))).mean_ms == pytest.approx(0.3096415)
    assert "global_pool row is 0 ms" in table.metadata.notes and table.metadata.device == "pixel1"
    # The searched ProxylessNAS-mobile widens the first stage to 32 channels; the table (the
    # search space's, 24 channels there) lacks exactly those three blocks.
    missing = table.coverage(spec_blocks(zoo_model("proxylessnas_mobile"))).missing
    assert [(b.in_shape, b.layer.out_ch) for b in missing] == [
        ((112, 112, 16), 32),
        ((56, 56, 32), 32),
        ((56, 56, 32), 40),
    ]


def test_hwnasbench_reproduces_helps_sums(latency_data):
    path = latency_data / "raw" / "hwnasbench" / "fbnet_cached_metrics.json"
    tables = {device: import_hwnasbench(path, device) for device in ("pixel3", "raspi4")}
    space = FBNetSpace("cifar")
    with open(latency_data / "help_fbnet_cifar100_mobile_latency.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 100
    for row in rows:
        ops = row["arch_str"].split()
        spec = space.materialize(space.from_values({f"layer{i}": op for i, op in enumerate(ops)}))
        for device, table in tables.items():
            assert abs(table.spec_latency(spec) - float(row[f"{device}_ms"])) < 1e-9, (row["arch_index"], device)


def test_hwnasbench_one_table_serves_both_configs(latency_data):
    path = latency_data / "raw" / "hwnasbench" / "fbnet_cached_metrics.json"
    for device in ("pixel3", "raspi4", "edgegpu", "eyeriss", "fpga"):
        table = import_hwnasbench(path, device)
        assert len(table) == 225 and table.metadata.device == device
        for config in ("imagenet", "cifar"):
            assert table.coverage(space_blocks(FBNetSpace(config))).complete, (device, config)
    assert import_hwnasbench(path, "edgegpu").metadata.soc == "NVIDIA Jetson TX2"
    with pytest.raises(ImportFormatError, match="unknown device 'pixel4'"):
        import_hwnasbench(path, "pixel4")


# --- the command line ----------------------------------------------------------------------------


def cli(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "latency_models.import_table", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_cli_round_trip(latency_data, tmp_path):
    out = tmp_path / "tables" / "note10.jsonl"
    result = cli("ofa", *ofa_files(latency_data), "--out", out, "--threads", "4")
    assert result.returncode == 0, result.stderr
    assert "450 rows, device note10" in result.stdout and "224 px 96/96" in result.stdout
    loaded, expected = LatencyTable.load(out), import_ofa(ofa_files(latency_data))
    assert loaded.rows == expected.rows and loaded.metadata.threads == 4
    assert loaded.metadata.source == expected.metadata.source
    assert [p.name for p in tmp_path.joinpath("tables").iterdir()] == ["note10.jsonl"]  # no temporary left


def test_cli_own_table_records_only_what_the_user_says(tmp_path, capsys):
    key = "Logits-input:1x1x1280-output:10"
    source = write(tmp_path / "mine.yaml", f"{key}: {{count: 20, mean: 0.1, std: 0.01}}\n")
    out = tmp_path / "mine.jsonl"
    assert (
        main(["ofa", str(source), "--out", str(out), "--device", "mypixel", "--soc", "X", "--runtime", "tflite"]) == 0
    )
    meta = LatencyTable.load(out).metadata
    assert (meta.device, meta.soc, meta.runtime, meta.protocol, meta.notes) == ("mypixel", "X", "tflite", "", "")
    assert meta.source == "Once-for-All-format lookup tables mine.yaml"
    assert "1 rows, device mypixel" in capsys.readouterr().out


def test_cli_hwnasbench_summary(latency_data, tmp_path):
    path = latency_data / "raw" / "hwnasbench" / "fbnet_cached_metrics.json"
    result = cli("hwnasbench", path, "--device", "raspi4", "--out", tmp_path / "t.jsonl")
    assert result.returncode == 0, result.stderr
    assert "fbnet (imagenet): 112/112" in result.stdout and "fbnet_cifar (cifar): 112/112" in result.stdout
    assert LatencyTable.load(tmp_path / "t.jsonl").rows == import_hwnasbench(path, "raspi4").rows


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("ofa", "/nonexistent/224_lookup_table.yaml", "--out", "{tmp}/t.jsonl"), "cannot read /nonexistent"),
        (("ofa", "{data}/raw/proxylessnas/mobile_trim.yaml", "--out", "{tmp}/t.jsonl"), "not a Once-for-All"),
        (("proxyless", "{data}/raw/ofa_note10/224_lookup_table.yaml", "--out", "{tmp}/t.jsonl"), "unknown entry"),
        (("hwnasbench", "{data}/raw/ofa_note10/224_lookup_table.yaml", "--out", "{tmp}/t.jsonl"), "not JSON"),
        (
            ("hwnasbench", "{data}/raw/hwnasbench/fbnet_cached_metrics.json", "--device", "pixel4", "--out", "{tmp}/t"),
            "unknown device 'pixel4'",
        ),
        (("ofa", "{data}/raw/ofa_note10/224_lookup_table.yaml"), "required: --out"),
        (("ofa", "{data}/raw/ofa_note10/224_lookup_table.yaml", "--out", "{tmp}/t", "--threads", "0"), "--threads"),
        (("tflite", "x"), "invalid choice: 'tflite'"),
    ],
)
def test_cli_errors_are_one_line_exit_2(latency_data, tmp_path, args, fragment):
    result = cli(*(a.format(data=latency_data, tmp=tmp_path) for a in args))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not list(tmp_path.iterdir())  # nothing written
