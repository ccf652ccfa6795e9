"""Importers: other projects' per-block latency lookup tables as LatencyTables.

Each importer turns one published format into rows whose blocks are exactly the IR layers (and
input shapes) our specs produce, so `table.spec_latency(spec)` works on specs from our spaces,
the zoo and `parse_net_config`:

- Once-for-All (`ofa`): `<resolution>_lookup_table.yaml`, keys such as
  `expanded_conv-input:56x56x32-output:28x28x48-expand:192-kernel:5-stride:2-idskip:0-se:1-hs:0`
  (`expand` is the middle width), stats count/mean/std. The published tables time the w1.2
  MobileNetV3 space on a Samsung Galaxy Note10 at 160..224 px.
- ProxylessNAS (`proxyless`): `mobile_trim.yaml`, the same key style without se/hs but with
  `expand` the expansion ratio, stats count/mean/var; Pixel 1.
- HW-NAS-Bench (`hwnasbench`): the FBNet entry of HW-NAS-Bench-v1_0.pickle dumped as JSON
  (`fbnet_cached_metrics.json`), one `<device>_latency` dict per device with keys such as
  `ConvBlock_H56_W56_Cin24_Cout32_exp6_kernel5_stride2_group1`; one figure per block.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from common.errors import InputError
from common.files import read_json, read_text
from latency_models.tables.latency_table import LatencyRow, LatencyTable, TableMetadata
from latency_models.tables.signature import Block
from search_spaces.arch_spec import Conv, Dense, GlobalPool, Layer, MBConv, SpecError
from search_spaces.fbnet import op_layer
from search_spaces.space import make_divisible

HWNASBENCH_DEVICES = ("pixel3", "raspi4", "edgegpu", "eyeriss", "fpga")

Shape = tuple[int, ...]
# A key's name and fields -> its layers, their input shapes, and whether the timing belongs to each.
LayersOf = Callable[[str, dict[str, str]], list[tuple[Layer, Shape, bool]]]


class ImportFormatError(InputError):
    """A file that cannot be read, or is not in the format its importer reads."""


# --- Once-for-All / ProxylessNAS YAML -----------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    text = read_text(path, ImportFormatError, "YAML")
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        raise ImportFormatError(f"{path}: not YAML") from None
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) for v in data.values()):
        raise ImportFormatError(f"{path}: not a lookup table (expected a mapping of block keys to statistics)")
    return data


def _parse_key(key: str) -> tuple[str, dict[str, str]]:
    """'expanded_conv-input:56x56x32-...-hs:0' -> ('expanded_conv', {'input': '56x56x32', ...})."""
    name, *parts = str(key).split("-")
    fields = {}
    for part in parts:
        field, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"malformed field {part!r}")
        fields[field] = value
    return name, fields


def _shape(text: str) -> Shape:
    return tuple(int(x) for x in text.split("x"))


def _stride(in_shape: Shape, out_shape: Shape) -> int:
    """The stride that maps one spatial size to the other under SAME padding (out = ceil(in/s))."""
    for stride in (1, 2):
        if -(-in_shape[0] // stride) == out_shape[0]:
            return stride
    raise ValueError(f"no stride 1 or 2 maps {in_shape[0]} px to {out_shape[0]} px")


def _expect(fields: dict[str, str], names: str) -> None:
    """Reject keys of the other dialect (se/hs fields, missing ones) instead of mis-reading them."""
    expected, got = set(names.split()), set(fields)
    if got != expected:
        extra, missing = sorted(got - expected), sorted(expected - got)
        raise ValueError(f"unexpected field {extra[0]!r}" if extra else f"missing field {missing[0]!r}")


def _mbconv(f: dict[str, str], in_shape: Shape, out_shape: Shape, expansion: float, mid: int, **kw: Any) -> MBConv:
    layer = MBConv(in_shape[2], out_shape[2], int(f["kernel"]), int(f["stride"]), expansion, mid, **kw)
    if _stride(in_shape, out_shape) != layer.stride:
        raise ValueError(f"stride {layer.stride} does not match the shapes")
    if f["idskip"] != str(int(layer.has_residual)):
        raise ValueError(f"idskip:{f['idskip']} contradicts the shapes and stride")
    return layer


def _entry_shapes(name: str, f: dict[str, str], block_fields: str) -> tuple[Shape, Shape]:
    """Check an entry has exactly its fields (blocks have `block_fields` too); its shapes."""
    _expect(f, f"input output {block_fields}" if name == "expanded_conv" else "input output")
    return _shape(f["input"]), _shape(f["output"])


def _ofa_layers(name: str, f: dict[str, str]) -> list[tuple[Layer, Shape, bool]]:
    """OFA's MobileNetV3 keys (mit-han-lab/once-for-all, ofa/nas/efficiency_predictor/latency_lookup_table.py)."""
    in_shape, out_shape = _entry_shapes(name, f, "expand kernel stride idskip se hs")
    cin, cout = in_shape[2], out_shape[-1]
    if name == "Conv":  # first_conv: 3x3, BN, h-swish
        layer: Layer = Conv(cin, cout, 3, _stride(in_shape, out_shape), activation="hswish")
    elif name == "expanded_conv":
        mid = int(f["expand"])  # the middle width, not the ratio
        se_ch = make_divisible(mid // 4) if f["se"] == "1" else 0  # OFA's SELayer, reduction 4
        layer = _mbconv(
            f, in_shape, out_shape, mid / cin, mid, se_ch=se_ch, activation="hswish" if f["hs"] == "1" else "relu"
        )
    elif name == "Conv_1":  # final_expand_layer
        layer = Conv(cin, cout, 1, activation="hswish")
    elif name == "AvgPool2D":
        layer = GlobalPool(cin)
    elif name == "Conv_2":  # feature_mix_layer: no BN, no bias
        layer = Conv(cin, cout, 1, activation="hswish", batch_norm=False)
    elif name == "Logits":
        layer = Dense(cin, cout)
    else:
        raise ValueError("unknown entry")
    return [(layer, in_shape, True)]


def _proxyless_layers(name: str, f: dict[str, str]) -> list[tuple[Layer, Shape, bool]]:
    """ProxylessNAS's MobileNetV2-style keys (mit-han-lab/proxylessnas, search/models/super_nets.py)."""
    in_shape, out_shape = _entry_shapes(name, f, "expand kernel stride idskip")
    cin, cout = in_shape[2], out_shape[-1]
    if name == "Conv":
        return [(Conv(cin, cout, 3, _stride(in_shape, out_shape), activation="relu6"), in_shape, True)]
    if name == "expanded_conv":
        ratio = float(f["expand"])  # the expansion ratio here, unlike OFA's tables
        return [(_mbconv(f, in_shape, out_shape, ratio, round(cin * ratio), activation="relu6"), in_shape, True)]
    if name == "Conv_1":  # feature_mix_layer
        return [(Conv(cin, cout, 1, activation="relu6"), in_shape, True)]
    if name == "Logits":
        # One timing for global pooling + classifier: it goes to the dense row, the pool gets 0 ms.
        return [(GlobalPool(cin), in_shape, False), (Dense(cin, cout), (1, 1, cin), True)]
    raise ValueError("unknown entry")


def _yaml_rows(path: Path, layers_of: LayersOf, spread: str, fmt: str) -> list[LatencyRow]:
    rows = []
    for key, stats in _load_yaml(path).items():
        try:
            name, fields = _parse_key(key)
            parts = layers_of(name, fields)
            mean, count, spread_value = (float(stats[s]) for s in ("mean", "count", spread))
            if not (mean >= 0 and spread_value >= 0 and count >= 1):
                raise ValueError(f"bad statistics {stats}")
        except (KeyError, ValueError, TypeError, SpecError) as exc:
            detail = f"missing statistic {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise ImportFormatError(f"{path}: not a {fmt} lookup table? entry {key!r}: {detail}") from None
        std = math.sqrt(spread_value) if spread == "var" else spread_value
        for layer, in_shape, measured in parts:
            block = Block(layer, in_shape)
            rows.append(LatencyRow(block, mean, None, std, int(count)) if measured else LatencyRow(block, 0.0))
    return rows


def _by_resolution(metadata: TableMetadata, files: list[list[LatencyRow]]) -> LatencyTable:
    """One table from several files' rows. OFA times the shared head layers (and last-stage
    blocks two resolutions share) again in every file, and estimates a network from its own
    resolution's file. One table can do that for one resolution only: a block timed in several
    files keeps the row of the highest-resolution file (a file's resolution: its largest input),
    so 224 px networks sum exactly as in OFA and every row is a source row."""
    table = LatencyTable(metadata)
    for rows in sorted(files, key=lambda rows: -max(row.block.in_shape[0] for row in rows)):
        for row in rows:
            if row.key not in table:
                table.add(row)
    return table


# What the published tables' sources say; a user's own table in these formats gets only its device name.
_OFA_NOTE10 = TableMetadata(
    device="note10",
    runtime="tflite",
    protocol="per block: mean and std of `count` timed runs, as recorded in the lookup table",
    source="Once-for-All (mit-han-lab/once-for-all) Note10 latency lookup tables (published at "
    "github.com/han-cai/files, ofa/note10/)",
    notes="Samsung Galaxy Note10; its source does not say which SoC variant (Snapdragon 855 or Exynos 9825).",
)
_PROXYLESS_PIXEL1 = TableMetadata(
    device="pixel1",
    runtime="",  # the table does not say
    protocol="per block: mean and variance (stored as std) of `count` timed runs, as recorded in the lookup table",
    source="ProxylessNAS (mit-han-lab/proxylessnas) Pixel 1 latency lookup table (published at "
    "github.com/han-cai/files, proxylessnas/)",
    notes="Google Pixel 1, per the ProxylessNAS paper.",
)
_LOGITS_NOTE = (
    "The source times global pooling and the classifier together (its Logits entry): the dense row holds "
    "that time and the global_pool row is 0 ms, so network sums are unchanged."
)


def _import_yaml(
    paths: Sequence[str | Path],
    layers_of: LayersOf,
    spread: str,
    published: TableMetadata,
    fmt: str,
    device: str | None,
    note: str = "",
) -> LatencyTable:
    paths = [Path(p) for p in paths]
    if not paths:
        raise ImportFormatError("no input files")
    files = [_yaml_rows(path, layers_of, spread, fmt) for path in paths]
    names = ", ".join(p.name for p in paths)
    if device is None:
        metadata = dataclasses.replace(published, source=f"{names}: {published.source}")
    else:
        metadata = TableMetadata(device=device, runtime="", source=f"{fmt}-format lookup tables {names}")
    notes = [metadata.notes, note]
    if len(files) > 1:
        notes.append("A block timed in several files keeps the row of the highest-resolution file.")
    return _by_resolution(dataclasses.replace(metadata, notes=" ".join(n for n in notes if n)), files)


def import_ofa(paths: Sequence[str | Path], device: str | None = None) -> LatencyTable:
    """Once-for-All lookup tables (one file per resolution) as one table. `device`: None for
    the published Note10 tables (their metadata is filled in), else the device a user's own
    tables in this format were measured on."""
    return _import_yaml(paths, _ofa_layers, "std", _OFA_NOTE10, "Once-for-All", device)


def import_proxyless(paths: Sequence[str | Path], device: str | None = None) -> LatencyTable:
    """ProxylessNAS lookup tables (`mobile_trim.yaml`); `device` as for `import_ofa`."""
    return _import_yaml(paths, _proxyless_layers, "var", _PROXYLESS_PIXEL1, "ProxylessNAS", device, _LOGITS_NOTE)


# --- HW-NAS-Bench FBNet JSON ----------------------------------------------------------------------

_HW_FIELDS = {
    "ConvBlock": "H W Cin Cout exp kernel stride group",
    "Skip": "H W Cin Cout stride",
    "ConvNorm": "H W Cin Cout kernel stride group",
    "AvgP": "H W Cin Cout kernel stride",
    "FC": "Cin Cout",
}
_HW_TOKEN = re.compile(r"([A-Za-z]+)(\d+)")

# What HW-NAS-Bench's files and code say about each device; nothing else is filled in.
_HW_DEVICE_FACTS = {
    "edgegpu": {
        "soc": "NVIDIA Jetson TX2",
        "notes": "HW-NAS-Bench's edge-GPU benchmark script (dev/proj_edgegpu, written for its NAS-Bench-201 "
        "space) runs TensorRT via torch2trt, batch 1, mean of 50 runs after a 3 s warm-up.",
    },
}


def _hw_layer(key: str) -> tuple[Layer, Shape]:
    """One HW-NAS-Bench key as the layer `search_spaces.fbnet` builds for it, and its input shape."""
    name, _, rest = key.partition("_")
    if name not in _HW_FIELDS:
        raise ValueError("unknown entry (not an HW-NAS-Bench FBNet table?)")
    tokens = [_HW_TOKEN.fullmatch(token) for token in rest.split("_")]
    if not all(tokens):
        raise ValueError("malformed key")
    f = {m[1]: int(m[2]) for m in tokens}
    _expect(f, _HW_FIELDS[name])
    if name == "FC":
        return Dense(f["Cin"], f["Cout"]), (1, 1, f["Cin"])
    in_shape = (f["H"], f["W"], f["Cin"])
    if name == "ConvBlock":
        op = f"k{f['kernel']}_e{f['exp']}" + (f"_g{f['group']}" if f["group"] != 1 else "")
        return op_layer(op, f["Cin"], f["Cout"], f["stride"]), in_shape
    if name == "Skip":
        return op_layer("skip", f["Cin"], f["Cout"], f["stride"]), in_shape
    if name == "ConvNorm":  # the stem and the head conv: conv + BN + ReLU
        return Conv(f["Cin"], f["Cout"], f["kernel"], f["stride"], f["group"], activation="relu"), in_shape
    if (f["kernel"], f["kernel"], f["Cin"]) != (f["H"], f["W"], f["Cout"]):
        raise ValueError("only a global average pool (kernel = feature size) is supported")
    return GlobalPool(f["Cin"]), in_shape


def import_hwnasbench(path: str | Path, device: str = "pixel3") -> LatencyTable:
    """One device's FBNet latency table from HW-NAS-Bench. The keys of both input configurations
    (ImageNet 224 px, CIFAR 32 px) differ in their feature sizes, so one table holds both and
    serves `fbnet` and `fbnet_cifar` alike."""
    path = Path(path)
    data = read_json(path, ImportFormatError, "an HW-NAS-Bench table")
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        raise ImportFormatError(f"{path}: not an HW-NAS-Bench FBNet table (no 'devices' list)")
    devices = [d for d in data["devices"] if isinstance(data.get(f"{d}_latency"), dict)]
    if device not in devices:
        raise ImportFormatError(f"unknown device {device!r} (the file has: {', '.join(devices)})")
    rows = []
    for key, value in data[f"{device}_latency"].items():
        try:
            layer, in_shape = _hw_layer(key)
            if not float(value) >= 0:
                raise ValueError(f"latency must be a non-negative number, got {value!r}")
            rows.append(LatencyRow(Block(layer, in_shape), float(value)))
        except (ValueError, TypeError, SpecError) as exc:
            raise ImportFormatError(f"{path}: entry {key!r}: {exc}") from None
    facts = _HW_DEVICE_FACTS.get(device, {})
    metadata = TableMetadata(
        device=device,
        runtime="",  # not recorded with the figures
        soc=facts.get("soc", ""),
        protocol="one published figure per block (HW-NAS-Bench does not record the statistic with it)",
        source=f"HW-NAS-Bench v1.0 (GATECH-EIC/HW-NAS-Bench) FBNet table, {device}_latency of {path.name}",
        notes=" ".join(
            filter(None, (facts.get("notes"), "Both input configurations (224 and 32 px). Energy is not imported."))
        ),
    )
    return LatencyTable(metadata, rows)
