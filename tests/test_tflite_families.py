"""The residual, fused-MBConv and norm layers emit what the IR says: each variant float within
1e-4 of the numpy reference and int8 within test_tflite_emit's int8 tolerance, checked both on a
small network and on the block's own output tensor; their blocks emit and run alone.

int8 here calibrates on the images it is checked on. These one-block networks see the raw
standard-normal input (through identity shortcuts, straight to the output), so a test image
beyond the calibration images' range is clipped, by up to 16% of the range on unlucky seeds:
that measures how many calibration images were drawn, not the emitted arithmetic, which with the
range covered stays within 3% over every variant and seed tried."""

import numpy as np
import pytest

from latency_models.tables.signature import Block
from latency_models.tflite.emit import emit_block, emit_spec, random_images
from latency_models.tflite.graph import OPS, Graph, schema
from latency_models.tflite.lower import lower_layer
from latency_models.tflite.quantize import quantize
from latency_models.tflite.reference import forward, layer_forward
from latency_models.tflite.runtime import make_interpreter, op_counts, run
from latency_models.tflite.weights import check_weights, random_layer_weights, random_weights, weight_shapes
from search_spaces.arch_spec import ArchSpec, Conv, Dense, FusedMBConv, GlobalPool, Norm, ResBlock, layer_output_shape
from search_spaces.zoo import get
from tests.test_tflite_emit import float_error

RESOLUTION = 16
CHANNELS = 16

LAYERS = {
    "basic_identity": ResBlock(16, 16, 1, 16),
    "basic_projection_stride": ResBlock(16, 32, 2, 32),
    "basic_projection_width": ResBlock(16, 24, 1, 24, kernel=5),
    "bottleneck_identity": ResBlock(16, 16, 1, 8, bottleneck=True),
    "bottleneck_projection": ResBlock(16, 32, 2, 8, bottleneck=True),
    "grouped_bottleneck": ResBlock(16, 32, 2, 16, bottleneck=True, groups=4),
    "se_output": ResBlock(16, 16, 1, 16, se_ch=4, se_site="output"),
    "se_middle_bottleneck": ResBlock(
        16, 32, 2, 16, bottleneck=True, groups=2, se_ch=4, se_site="middle", se_gate="hsigmoid"
    ),
    "se_middle_basic": ResBlock(16, 16, 1, 8, se_ch=4, se_site="middle"),
    "post_relu6": ResBlock(16, 16, 1, 16, activation="relu6"),
    "post_hswish": ResBlock(16, 24, 2, 16, bottleneck=True, activation="hswish"),
    "preact_identity": ResBlock(16, 16, 1, 16, preact=True),
    "preact_projection": ResBlock(16, 32, 2, 32, preact=True),
    "preact_bottleneck_se": ResBlock(16, 32, 2, 8, bottleneck=True, preact=True, se_ch=4, se_site="middle"),
    "preact_swish_identity": ResBlock(16, 16, 1, 8, bottleneck=True, preact=True, activation="swish"),
    "fused_residual": FusedMBConv(16, 16, 3, 1, 4.0, 64),
    "fused_stride": FusedMBConv(16, 24, 3, 2, 4.0, 64),
    "fused_se_residual": FusedMBConv(16, 16, 5, 1, 2.0, 32, se_ch=4, se_gate="hsigmoid", activation="hswish"),
    "fused_se_stride": FusedMBConv(16, 24, 3, 2, 4.0, 64, se_ch=8),
    "fused_project_stride": FusedMBConv(16, 24, 3, 2, 8.0, 128, project_stride=True),
    "fused_no_shortcut": FusedMBConv(16, 16, 3, 1, 4.0, 64, residual=False),
    "norm_relu": Norm(16),
    "norm_relu6": Norm(16, activation="relu6"),
    "norm_hswish": Norm(16, activation="hswish"),
}


def network(layer) -> ArchSpec:
    """The layer fed the input image directly (so a shortcut sees signed values), then a small
    classifier. The head's ReLU conv keeps the pooled features clear of zero: pooling signed
    random features straight away leaves a mean that int8 noise swamps."""
    return ArchSpec(
        resolution=RESOLUTION,
        in_channels=CHANNELS,
        stem=(),
        layers=(layer,),
        head=(Conv(layer.out_ch, 32, 1), GlobalPool(32)),
        classifier=Dense(32, 10),
    )


def block_graph(layer, weights) -> Graph:
    g = Graph()
    x = g.input((1, RESOLUTION, RESOLUTION, CHANNELS))
    g.output(lower_layer(g, layer, x, weights, "block"))
    return g


def agreement(output, reference) -> tuple[float, float]:
    """test_tflite_emit's int8 measures: the worst error as a fraction of the output's range,
    and the correlation with the reference."""
    error = np.abs(output - reference).max() / np.abs(reference).max()
    return error, np.corrcoef(output.ravel(), reference.ravel())[0, 1]


def block_outputs(layer, precision, seed=0):
    """The block's own output tensor from TFLite and from the reference, over four images."""
    weights = random_layer_weights(layer, np.random.default_rng(seed))
    graph = block_graph(layer, weights)
    images = random_images((RESOLUTION, RESOLUTION, CHANNELS), 4, seed + 2)
    model = graph.to_flatbuffer() if precision == "fp32" else quantize(graph, images)
    return run(model, images), layer_forward(layer, images.astype(np.float64), weights)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float_network_matches_the_reference(name):
    assert float_error(network(LAYERS[name])) < 1e-4


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float_block_output_matches_the_reference(name):
    """The whole output tensor, not just its pooled summary: a misplaced pad or shortcut shows."""
    output, reference = block_outputs(LAYERS[name], "fp32")
    assert output.shape == reference.shape
    assert np.abs(output - reference).max() / max(1.0, np.abs(reference).max()) < 1e-4


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_int8_network_agrees_within_quantisation_tolerance(name):
    """test_tflite_emit's tolerance: worst error below 5% of the output's range, correlation above 0.999."""
    spec = network(LAYERS[name])
    weights = random_weights(spec)
    images = random_images((RESOLUTION, RESOLUTION, CHANNELS), 4, 2)
    model = emit_spec(spec, weights, precision="int8", calibration=images)
    error, correlation = agreement(run(model, images), forward(spec, weights, images))
    assert error < 0.05 and correlation > 0.999


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_int8_block_output_agrees_within_quantisation_tolerance(name):
    error, correlation = agreement(*block_outputs(LAYERS[name], "int8"))
    assert error < 0.05 and correlation > 0.999


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_every_new_block_emits_and_runs(precision):
    for layer in LAYERS.values():
        block = Block(layer, (RESOLUTION, RESOLUTION, CHANNELS), precision)
        interpreter = make_interpreter(emit_block(block))
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert tuple(inp["shape"]) == (1, *block.in_shape)
        assert tuple(out["shape"]) == (1, *layer_output_shape(layer, block.in_shape))
        interpreter.invoke()


class _Recording(dict):
    """Weights that remember which names were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_lowering_reads_exactly_the_weights_declared(name):
    layer = LAYERS[name]
    spec = network(layer)
    check_weights(spec, random_weights(spec))
    weights = _Recording(random_layer_weights(layer, np.random.default_rng(0)))
    block_graph(layer, weights)
    assert weights.read == set(weight_shapes(layer))


def test_scales_are_positive_and_near_one():
    weights = random_layer_weights(ResBlock(16, 16, 1, 16, preact=True), np.random.default_rng(0))
    assert 0.5 < weights["preact_scale"].min() and weights["preact_scale"].max() < 1.5
    weights = random_layer_weights(Norm(64), np.random.default_rng(0))
    assert 0.5 < weights["scale"].min() and weights["scale"].max() < 1.5
    assert np.abs(weights["shift"]).max() < 0.5


@pytest.mark.parametrize(
    "layer, expected",
    [
        # ReLU after the add is fused into the ADD; inner ReLUs into their convs.
        (ResBlock(16, 32, 2, 8, bottleneck=True), {"CONV_2D": 4, "ADD": 1}),
        # Pre-activation: MUL and ADD (ReLU fused) on the input, nothing after the residual ADD.
        (ResBlock(16, 16, 1, 16, preact=True), {"MUL": 1, "ADD": 2, "CONV_2D": 2}),
        (Norm(16), {"MUL": 1, "ADD": 1}),
        (Norm(16, activation="hswish"), {"MUL": 1, "ADD": 1, "HARD_SWISH": 1}),
        (FusedMBConv(16, 16, 3, 1, 4.0, 64, se_ch=4), {"CONV_2D": 4, "MEAN": 1, "LOGISTIC": 1, "MUL": 1, "ADD": 1}),
    ],
)
def test_activations_fuse_into_the_ops_before_them(layer, expected):
    model = block_graph(layer, random_layer_weights(layer, np.random.default_rng(0))).to_flatbuffer()
    ops, _ = op_counts(model)
    assert dict(ops) == expected


@pytest.mark.parametrize(
    "layer, fused",
    [
        (ResBlock(16, 16, 1, 16), ["RELU"]),
        (ResBlock(16, 16, 1, 16, activation="relu6"), ["RELU6"]),
        (ResBlock(16, 16, 1, 16, activation="hswish"), ["NONE"]),  # a HARD_SWISH op follows
        (ResBlock(16, 16, 1, 16, preact=True, activation="relu6"), ["RELU6", "NONE"]),  # the shift's, the residual's
        (Norm(16, activation="relu6"), ["RELU6"]),
        (FusedMBConv(16, 16, 3, 1, 4.0, 64), ["NONE"]),
    ],
)
def test_adds_carry_the_activation_that_follows_them(layer, fused):
    """Outputs of random blocks rarely pass 6, so the float tests alone cannot tell a fused ReLU6 from a ReLU."""
    model = block_graph(layer, random_layer_weights(layer, np.random.default_rng(0))).to_flatbuffer()
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    names = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
    adds = [op for op in tree.subgraphs[0].operators if tree.operatorCodes[op.opcodeIndex].builtinCode == OPS.ADD]
    assert [names[op.builtinOptions.fusedActivationFunction] for op in adds] == fused


def test_int8_survives_a_squeeze_excite_whose_relus_all_die():
    """A hidden layer that is 0 on every calibration image (small random SEs meet it) used to get
    a scale of 1e-8, which XNNPACK refused and the next conv's int32 bias overflowed."""
    layer = FusedMBConv(16, 16, 3, 1, 4.0, 64, se_ch=4)
    weights = random_layer_weights(layer, np.random.default_rng(0))
    weights["se_reduce_bias"] = np.full(4, -100.0, dtype=np.float32)
    images = random_images((RESOLUTION, RESOLUTION, CHANNELS), 4, 2)
    model = quantize(block_graph(layer, weights), images)
    error, correlation = agreement(run(model, images), layer_forward(layer, images.astype(np.float64), weights))
    assert error < 0.05 and correlation > 0.999


def test_a_conv_with_one_group_per_channel_is_emitted_as_a_depthwise_conv():
    """pytorchcv's MobileNet(B) writes its depthwise convs as grouped convs; TFLite runs them as
    DEPTHWISE_CONV_2D, and so must the emitted model (its latency is what a table measures)."""
    spec = get("mobilenetb_wd4", resolution=32, num_classes=10)
    weights = random_weights(spec, 0)
    images = random_images((32, 32, 3), 2, 1)
    model = emit_spec(spec, weights)
    assert np.abs(run(model, images) - forward(spec, weights, images)).max() < 1e-4
    ops, _ = op_counts(model)
    assert ops["DEPTHWISE_CONV_2D"] == 13 and ops["CONV_2D"] == 14  # the stem and 13 pointwise convs


@pytest.mark.parametrize("project_stride, expand_hw", [(False, RESOLUTION // 2), (True, RESOLUTION)])
def test_the_fused_blocks_stride_sits_where_the_layer_says(project_stride, expand_hw):
    """pytorchcv's EfficientNet-EdgeTPU strides in the 1x1 projection: its kxk conv then runs at
    the input's resolution (4x the MACs of striding in the kxk conv)."""
    layer = FusedMBConv(16, 24, 3, 2, 4.0, 64, project_stride=project_stride)
    g = block_graph(layer, random_layer_weights(layer, np.random.default_rng(0)))
    convs = [op for op in g.ops if op.code == OPS.CONV_2D]
    assert [g.shape(op.outputs[0])[1] for op in convs] == [expand_hw, RESOLUTION // 2]
