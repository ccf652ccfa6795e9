"""ArchSpec: validation names the field and layer, JSON round-trips, hash, graph and counts."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces.arch_spec import (
    SCHEMA_VERSION,
    ArchSpec,
    Conv,
    Dense,
    DWSeparable,
    FusedMBConv,
    GlobalPool,
    MBConv,
    Norm,
    ResBlock,
    SpecError,
)
from search_spaces.graph import count_macs, count_params, spec_to_graph


def tiny(**changes) -> ArchSpec:
    fields = dict(
        resolution=32,
        stem=(Conv(3, 8, 3, 2, activation="relu"),),
        layers=(
            MBConv(8, 8, 3, 1, 1, 8, activation="relu"),
            MBConv(8, 16, 5, 2, 4, 32, se_ch=8, activation="hswish"),
        ),
        head=(Conv(16, 32, 1, activation="hswish"), GlobalPool(32)),
        classifier=Dense(32, 10),
        name="tiny",
    )
    fields.update(changes)
    return ArchSpec(**fields)


def test_shapes_follow_strides_with_same_padding():
    spec = tiny(resolution=33)
    assert [s.out_shape for s in spec.shapes] == [
        (17, 17, 8),
        (17, 17, 8),
        (9, 9, 16),
        (9, 9, 32),
        (1, 1, 32),
        (1, 1, 10),
    ]


def test_counts_by_hand():
    spec = tiny()
    # stem 16x16x8 out, 3x3x3 kernel; block0 dw 3x3 on 8 + project 8->8 at 16x16;
    # block1 expand 8->32 at 16x16, dw 5x5 on 32 at 8x8, SE 32->8->32, project 32->16 at 8x8;
    # head 1x1 16->32 at 8x8; classifier 32->10.
    macs = (
        16 * 16 * 27 * 8
        + 16 * 16 * (9 * 8 + 8 * 8)
        + 16 * 16 * 8 * 32
        + 8 * 8 * 25 * 32
        + (32 * 8 + 8 * 32)
        + 8 * 8 * 32 * 16
        + 8 * 8 * 16 * 32
        + 32 * 10
    )
    params = (
        27 * 8
        + 16
        + 9 * 8
        + 16
        + 64
        + 16
        + 8 * 32
        + 64
        + 25 * 32
        + 64
        + (32 * 8 + 8)
        + (8 * 32 + 32)
        + 32 * 16
        + 32
        + 16 * 32
        + 64
        + 32 * 10
        + 10
    )
    assert count_macs(spec) == macs
    assert count_params(spec) == params


def test_graph_nodes_carry_op_attributes_and_shapes():
    graph = spec_to_graph(tiny())
    assert list(graph.nodes)[:3] == ["input", "stem[0]", "layers[0]"]
    node = graph.nodes["layers[1]"]
    assert node["op"] == "mbconv"
    assert node["attrs"]["kernel"] == 5 and node["attrs"]["se_ch"] == 8 and node["attrs"]["residual"] is False
    assert graph.nodes["layers[0]"]["attrs"]["residual"] is True
    assert node["in_shape"] == (16, 16, 8) and node["out_shape"] == (8, 8, 16)
    assert graph.edges["layers[0]", "layers[1]"]["shape"] == (16, 16, 8)
    assert graph.number_of_edges() == graph.number_of_nodes() - 1


def test_json_round_trip_and_schema_version():
    spec = tiny()
    data = json.loads(spec.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["layers"][1]["op"] == "mbconv"
    back = ArchSpec.from_json(spec.to_json())
    assert back == spec and back.to_json() == spec.to_json()


def test_hash_ignores_name_but_not_structure():
    spec = tiny()
    assert spec.content_hash() == tiny(name="other").content_hash()
    assert spec.content_hash() != tiny(resolution=64).content_hash()
    assert len(spec.content_hash()) == 16


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Conv(3, 8, 4), "conv.kernel: must be odd"),
        (lambda: Conv(3, 8, 3, stride=3), "conv.stride: must be 1 or 2"),
        (lambda: Conv(3, 8, 3, activation="gelu"), "conv.activation: unknown value 'gelu'"),
        (lambda: MBConv(8, 8, 3, 1, 2, 16, activation="relu", groups=3), "mbconv.groups"),
        (lambda: MBConv(8, 8, 3, 1, 1, 16), "mbconv.mid_ch: must equal in_ch 8"),
        (lambda: MBConv(8, 8, 3, 1, 0.5, 4), "mbconv.expansion: must be >= 1"),
        (lambda: MBConv(8, 8, 3, 1, 3, 24, expand_conv=False), "mbconv.expand_conv"),
        (lambda: DWSeparable(0, 8), "dwsep.in_ch: must be >= 1"),
        (lambda: tiny(layers=(MBConv(16, 16, 3, 1, 1, 16),)), "layers[0] (mbconv).in_ch: 16 does not match the 8"),
        (lambda: tiny(head=(Conv(16, 32, 1),)), "classifier (dense): needs a 1x1 input"),
        (lambda: tiny(layers=()), "layers: a network needs at least one layer"),
        (lambda: ResBlock(8, 8, 1, 8, groups=2), "resblock.groups: must be 1 in a basic block"),
        (lambda: ResBlock(8, 16, 1, 12, bottleneck=True, groups=8), "resblock.groups: 8 does not divide mid_ch 12"),
        (lambda: ResBlock(8, 8, 1, 8, se_ch=2, se_site="input"), "resblock.se_site: unknown value 'input'"),
        (lambda: ResBlock(8, 8, 3, 8), "resblock.stride: must be 1 or 2"),
        (lambda: ResBlock(8, 8, 1, 8, preact=1), "resblock.preact: expected true or false"),
        (lambda: FusedMBConv(8, 16, 3, 1, 4, 32, residual=True), "fused_mbconv.residual: an identity shortcut needs"),
        (lambda: FusedMBConv(8, 8, 4, 1, 4, 32), "fused_mbconv.kernel: must be odd"),
        (lambda: FusedMBConv(8, 8, 3, 1, 0.5, 4), "fused_mbconv.expansion: must be >= 1"),
        (lambda: Norm(8, activation="gelu"), "norm.activation: unknown value 'gelu'"),
        (lambda: tiny(layers=(ResBlock(16, 16, 1, 16),)), "layers[0] (resblock).in_ch: 16 does not match the 8"),
    ],
)
def test_validation_names_field_and_layer(build, message):
    with pytest.raises(SpecError) as info:
        build()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["layers"][1].update(kernel=4), "layers[1].kernel: must be odd"),
        (lambda d: d["layers"][0].update(activation="mish"), "layers[0].activation: unknown value 'mish'"),
        (lambda d: d["layers"][1].update(op="transformer"), "layers[1].op: unknown layer type 'transformer'"),
        (lambda d: d["layers"][1].update(kernal=3), "layers[1] (mbconv): unknown field 'kernal'"),
        (lambda d: d["layers"][1].pop("stride"), "layers[1].stride: missing"),
        (lambda d: d["head"][0].update(in_ch="16"), "head[0].in_ch: expected an integer"),
        (lambda d: d.update(schema_version=99), "schema_version: this program reads version 1"),
        (lambda d: d.pop("classifier"), "classifier: missing"),
        (lambda d: d.update(resolution=0), "spec.resolution: must be >= 1"),
        (lambda d: d.update(layers={}), "layers: expected a list of layers"),
    ],
)
def test_invalid_json_errors_name_the_field(edit, message):
    data = tiny().to_dict()
    edit(data)
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "layer",
    [
        ResBlock(8, 16, 2, 16),
        ResBlock(8, 32, 1, 8, bottleneck=True, groups=2, se_ch=2, se_site="middle", preact=True),
        FusedMBConv(8, 16, 3, 2, 4, 32, se_ch=4, project_stride=True),
        FusedMBConv(8, 8, 3, 1, 4, 32, residual=False),
        Norm(8, "relu6"),
    ],
)
def test_new_layer_types_round_trip_through_json(layer):
    spec = ArchSpec(32, (Conv(3, 8, 3, 2),), (layer,), (GlobalPool(layer.out_ch),), Dense(layer.out_ch, 10))
    assert ArchSpec.from_json(spec.to_json()) == spec


def test_malformed_json_text():
    with pytest.raises(
        SpecError, match=r"spec: not JSON \(Expecting property name enclosed in double quotes, line 1 column 2\)"
    ):
        ArchSpec.from_json("{not json")


def test_hash_is_pinned():
    """Changing the canonical form changes every stored hash: make that a deliberate decision."""
    from search_spaces.zoo import get

    assert get("mobilenet_v2_1.0").content_hash() == "469f9d88dde94a73"


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3000),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_corrupted_field_gives_a_spec_error(data):
    """Whatever one field of a valid spec is replaced by, loading either works or raises
    SpecError (which the CLIs turn into one line), never another exception."""
    spec = tiny().to_dict()
    section = data.draw(st.sampled_from(["stem", "layers", "head", "classifier", "top"]))
    if section == "top":
        target = spec
    elif section == "classifier":
        target = spec["classifier"]
    else:
        target = data.draw(st.sampled_from(spec[section]))
    key = data.draw(st.sampled_from(sorted(target) + ["extra"]))
    target[key] = data.draw(JUNK)
    try:
        ArchSpec.from_dict(spec)
    except SpecError:
        pass


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(resolution=10**9), "spec.resolution: must be <= 4096, got 1000000000"),
        (lambda d: d["layers"][0].update(out_ch=10**9), "layers[0].out_ch: must be <= 65536"),
        (lambda d: d["layers"][0].update(out_ch=10**400), "layers[0].out_ch: must be <= 65536, got 1000000000"),
        (lambda d: d["layers"][1].update(kernel=33), "layers[1].kernel: must be <= 31"),
        (lambda d: d.update(layers=d["layers"][:1] * 2001), "layers: more than 2000 layers"),
    ],
)
def test_sizes_no_real_network_has_are_refused(edit, message):
    """A 10^9-pixel input or 10^9 channels would pass the other checks and make counting or
    emitting run for minutes: such specs are refused, naming the field."""
    data = tiny().to_dict()
    edit(data)
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{}", "not a UTF-8 text (JSON) file"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply to be a spec"),
        (b'{"resolution": ' + b"9" * 5000 + b"}", "not readable JSON"),
    ],
)
def test_unreadable_spec_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "arch.json"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        ArchSpec.load(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
