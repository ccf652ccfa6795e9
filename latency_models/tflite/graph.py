"""A small TFLite graph builder: tensors and builtin ops in NHWC, serialised to a flatbuffer as
float32 or as full int8 (per-channel symmetric weights, per-tensor asymmetric activations from
calibrated ranges, int32 biases), the scheme TFLite's post-training quantization uses.

The flatbuffer object API comes with ai_edge_litert (`schema_py_generated`), so nothing here
needs TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - older installs ship the schema with tflite_runtime
    from tflite_runtime import schema_py_generated as schema  # type: ignore[no-redef]

OPS = schema.BuiltinOperator
FUSED = {
    "none": schema.ActivationFunctionType.NONE,
    "relu": schema.ActivationFunctionType.RELU,
    "relu6": schema.ActivationFunctionType.RELU6,
}

# Tensor roles decide how int8 serialisation treats a tensor. A constant is a per-channel
# operand of an elementwise op (a batch norm's scale or shift): TFLite's int8 MUL and ADD take
# one scale per operand, so it is quantised per tensor, over its own range.
ACTIVATION, WEIGHT, BIAS, SCALAR, CONSTANT, INDEX = "activation", "weight", "bias", "scalar", "constant", "index"


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    role: str = ACTIVATION
    data: np.ndarray | None = None
    channel_axis: int = 0  # per-channel quantisation axis of a weight
    bias_of: tuple[int, int] | None = None  # (input tensor, weight tensor) of the op a bias belongs to
    same_scale_as: int | None = None  # an activation that must share this tensor's quantisation


@dataclass
class Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options_type: int = schema.BuiltinOptions.NONE
    options: object = None


@dataclass
class QuantParams:
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    # --- building ----------------------------------------------------------------------------

    def _tensor(self, name: str, shape, role: str = ACTIVATION, data=None, **kw) -> int:
        self.tensors.append(Tensor(len(self.tensors), name, tuple(int(s) for s in shape), role, data, **kw))
        return len(self.tensors) - 1

    def shape(self, t: int) -> tuple[int, ...]:
        return self.tensors[t].shape

    def input(self, shape, name: str = "input") -> int:
        t = self._tensor(name, shape)
        self.inputs.append(t)
        return t

    def output(self, t: int) -> None:
        self.outputs.append(t)

    def _op(self, code, inputs, out_shape, name, options_type=schema.BuiltinOptions.NONE, options=None, **kw) -> int:
        out = self._tensor(name, out_shape, **kw)
        self.ops.append(Op(code, list(inputs), [out], options_type, options))
        return out

    def _activate(self, t: int, activation: str, name: str) -> int:
        """Activations TFLite cannot fuse become ops of their own."""
        if activation == "hswish":
            return self._op(OPS.HARD_SWISH, [t], self.shape(t), f"{name}/hswish")
        if activation == "swish":
            gate = self._op(OPS.LOGISTIC, [t], self.shape(t), f"{name}/sigmoid")
            return self.mul(t, gate, f"{name}/swish")
        return t

    def _fused(self, activation: str) -> int:
        return FUSED.get(activation, FUSED["none"])

    def conv2d(self, x, kernel_hwio, bias, stride: int, activation: str, name: str) -> int:
        """A (grouped, when the kernel's in-channels are a fraction of x's) convolution."""
        n, h, w, _ = self.shape(x)
        weight = self._tensor(
            f"{name}/kernel",
            kernel_hwio.transpose(3, 0, 1, 2).shape,
            WEIGHT,
            np.ascontiguousarray(kernel_hwio.transpose(3, 0, 1, 2), dtype=np.float32),
            channel_axis=0,
        )
        b = self._tensor(f"{name}/bias", bias.shape, BIAS, bias.astype(np.float32), bias_of=(x, weight))
        opts = schema.Conv2DOptionsT()
        opts.padding, opts.strideH, opts.strideW = schema.Padding.SAME, stride, stride
        opts.dilationHFactor = opts.dilationWFactor = 1
        opts.fusedActivationFunction = self._fused(activation)
        out_shape = (n, -(-h // stride), -(-w // stride), kernel_hwio.shape[3])
        y = self._op(OPS.CONV_2D, [x, weight, b], out_shape, name, schema.BuiltinOptions.Conv2DOptions, opts)
        return self._activate(y, activation, name)

    def depthwise(self, x, kernel_hwc, bias, stride: int, activation: str, name: str) -> int:
        n, h, w, c = self.shape(x)
        data = np.ascontiguousarray(kernel_hwc[np.newaxis], dtype=np.float32)  # [1, k, k, C]
        weight = self._tensor(f"{name}/kernel", data.shape, WEIGHT, data, channel_axis=3)
        b = self._tensor(f"{name}/bias", bias.shape, BIAS, bias.astype(np.float32), bias_of=(x, weight))
        opts = schema.DepthwiseConv2DOptionsT()
        opts.padding, opts.strideH, opts.strideW, opts.depthMultiplier = schema.Padding.SAME, stride, stride, 1
        opts.dilationHFactor = opts.dilationWFactor = 1
        opts.fusedActivationFunction = self._fused(activation)
        out_shape = (n, -(-h // stride), -(-w // stride), c)
        y = self._op(
            OPS.DEPTHWISE_CONV_2D, [x, weight, b], out_shape, name, schema.BuiltinOptions.DepthwiseConv2DOptions, opts
        )
        return self._activate(y, activation, name)

    def fully_connected(self, x, kernel_io, bias, activation: str, name: str) -> int:
        weight = self._tensor(
            f"{name}/kernel",
            kernel_io.T.shape,
            WEIGHT,
            np.ascontiguousarray(kernel_io.T, dtype=np.float32),
            channel_axis=0,
        )
        b = self._tensor(f"{name}/bias", bias.shape, BIAS, bias.astype(np.float32), bias_of=(x, weight))
        opts = schema.FullyConnectedOptionsT()
        opts.fusedActivationFunction = self._fused(activation)
        y = self._op(
            OPS.FULLY_CONNECTED,
            [x, weight, b],
            (self.shape(x)[0], kernel_io.shape[1]),
            name,
            schema.BuiltinOptions.FullyConnectedOptions,
            opts,
        )
        return self._activate(y, activation, name)

    def add(self, a: int, b: int, name: str, activation: str = "none") -> int:
        """a + b (b may broadcast against a), then `activation`: ReLU and ReLU6 fused into the
        ADD (NONE is the schema's default, so an add without one serialises as it always did)."""
        opts = schema.AddOptionsT()
        opts.fusedActivationFunction = self._fused(activation)
        y = self._op(OPS.ADD, [a, b], self.shape(a), name, schema.BuiltinOptions.AddOptions, opts)
        return self._activate(y, activation, name)

    def mul(self, a: int, b: int, name: str) -> int:
        opts = schema.MulOptionsT()
        shape = np.broadcast_shapes(self.shape(a), self.shape(b))
        return self._op(OPS.MUL, [a, b], shape, name, schema.BuiltinOptions.MulOptions, opts)

    def scale(self, x: int, factor: float, name: str) -> int:
        """x * a scalar constant."""
        c = self._tensor(f"{name}/factor", (1,), SCALAR, np.array([factor], dtype=np.float32))
        return self.mul(x, c, name)

    def channel_affine(self, x: int, scale: np.ndarray, shift: np.ndarray, activation: str, name: str) -> int:
        """x * scale + shift per channel (a batch norm in inference form), then `activation`:
        a MUL and an ADD by constant vectors, the activation fused into the ADD where it can be."""
        factor = self._tensor(f"{name}/scale", scale.shape, CONSTANT, scale.astype(np.float32))
        offset = self._tensor(f"{name}/shift", shift.shape, CONSTANT, shift.astype(np.float32))
        return self.add(self.mul(x, factor, f"{name}/mul"), offset, f"{name}/add", activation)

    def relu6(self, x: int, name: str) -> int:
        return self._op(OPS.RELU6, [x], self.shape(x), name)

    def logistic(self, x: int, name: str) -> int:
        return self._op(OPS.LOGISTIC, [x], self.shape(x), name)

    def mean_hw(self, x: int, name: str) -> int:
        """Global average over H and W, keeping them as 1x1."""
        n, _, _, c = self.shape(x)
        axes = self._tensor(f"{name}/axes", (2,), INDEX, np.array([1, 2], dtype=np.int32))
        opts = schema.ReducerOptionsT()
        opts.keepDims = True
        return self._op(OPS.MEAN, [x, axes], (n, 1, 1, c), name, schema.BuiltinOptions.ReducerOptions, opts)

    def pool(self, x: int, kind: str, kernel: int, stride: int, name: str) -> int:
        n, h, w, c = self.shape(x)
        opts = schema.Pool2DOptionsT()
        opts.padding, opts.strideH, opts.strideW = schema.Padding.SAME, stride, stride
        opts.filterHeight = opts.filterWidth = kernel
        opts.fusedActivationFunction = FUSED["none"]
        code = OPS.MAX_POOL_2D if kind == "max" else OPS.AVERAGE_POOL_2D
        return self._op(
            code,
            [x],
            (n, -(-h // stride), -(-w // stride), c),
            name,
            schema.BuiltinOptions.Pool2DOptions,
            opts,
            same_scale_as=x,
        )

    def reshape(self, x: int, shape: tuple[int, ...], name: str) -> int:
        target = self._tensor(f"{name}/shape", (len(shape),), INDEX, np.array(shape, dtype=np.int32))
        opts = schema.ReshapeOptionsT()
        opts.newShape = list(shape)
        return self._op(
            OPS.RESHAPE, [x, target], shape, name, schema.BuiltinOptions.ReshapeOptions, opts, same_scale_as=x
        )

    # --- serialising -------------------------------------------------------------------------

    def to_flatbuffer(
        self, ranges: dict[int, tuple[float, float]] | None = None, integer_io: bool = False, data: bool = True
    ) -> bytes:
        """Float32 model, or full int8 when `ranges` (activation tensor -> calibrated min, max)
        is given. The int8 model keeps a float interface (QUANTIZE after the input, DEQUANTIZE
        before the output), as TFLite's converter does by default, unless `integer_io`: then
        its input and output are the int8 tensors themselves, as a microcontroller feeds them.
        `data=False` leaves every constant's buffer empty: the file's layout without its
        weights, which footprint.flash prices (see there)."""
        quantized = ranges is not None
        if integer_io and not quantized:
            raise ValueError("integer input and output need an int8 model (calibrated ranges)")
        params = self._quant_params(ranges) if quantized else {}
        vectors = _VectorCache()
        buffers = [schema.BufferT()]
        tensors = []
        for t in self.tensors:
            tt = schema.TensorT()
            tt.name, tt.shape = t.name, list(t.shape)
            tt.type, values = self._tensor_type_and_data(t, params.get(t.index), quantized, data)
            q = params.get(t.index)
            if q is not None:
                tt.quantization = _SharedVectorQuantization(q, vectors)
            if values is not None:
                buf = schema.BufferT()
                raw = np.ascontiguousarray(values).tobytes() if data else b""
                buf.data = np.frombuffer(raw, dtype=np.uint8)
                buffers.append(buf)
                tt.buffer = len(buffers) - 1
            else:
                tt.buffer = 0
            tensors.append(tt)
        ops = list(self.ops)
        inputs, outputs = list(self.inputs), list(self.outputs)
        if quantized and not integer_io:
            # Float interface tensors around the int8 graph.
            for position, t in enumerate(self.inputs):
                float_in = self._float_twin(tensors, t, "float_input")
                ops.insert(0, Op(OPS.QUANTIZE, [float_in], [t]))
                inputs[position] = float_in
            for position, t in enumerate(self.outputs):
                float_out = self._float_twin(tensors, t, "float_output")
                ops.append(Op(OPS.DEQUANTIZE, [t], [float_out]))
                outputs[position] = float_out
        codes = sorted({op.code for op in ops})
        opcodes = []
        for code in codes:
            oc = schema.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            opcodes.append(oc)
        operators = []
        for op in ops:
            ot = schema.OperatorT()
            ot.opcodeIndex, ot.inputs, ot.outputs = codes.index(op.code), op.inputs, op.outputs
            ot.builtinOptionsType, ot.builtinOptions = op.options_type, op.options
            operators.append(ot)
        subgraph = schema.SubGraphT()
        subgraph.tensors, subgraph.operators, subgraph.inputs, subgraph.outputs = tensors, operators, inputs, outputs
        subgraph.name = "main"
        model = schema.ModelT()
        model.version, model.description = 3, "platform-nas"
        model.operatorCodes, model.subgraphs, model.buffers = opcodes, [subgraph], buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    @staticmethod
    def _float_twin(tensors: list, t: int, name: str) -> int:
        tt = schema.TensorT()
        tt.name, tt.shape, tt.type, tt.buffer = name, list(tensors[t].shape), schema.TensorType.FLOAT32, 0
        tensors.append(tt)
        return len(tensors) - 1

    def _tensor_type_and_data(self, t: Tensor, q: QuantParams | None, quantized: bool, data: bool = True):
        """The tensor's type and contents (without `data`: an empty array where it has some)."""
        if not data and t.data is not None:
            kind = schema.TensorType.INT32 if t.role == INDEX or (quantized and t.role == BIAS) else None
            kind = kind if kind is not None else schema.TensorType.INT8 if quantized else schema.TensorType.FLOAT32
            return kind, np.zeros(0, np.uint8)
        if t.role == INDEX:
            return schema.TensorType.INT32, t.data
        if not quantized:
            return schema.TensorType.FLOAT32, t.data
        if t.role == BIAS:
            scale = np.broadcast_to(q.scale, t.data.shape)
            return schema.TensorType.INT32, np.round(t.data / scale).astype(np.int32)
        if t.data is None:
            return schema.TensorType.INT8, None
        along_axis = [-1 if axis == q.axis else 1 for axis in range(t.data.ndim)]
        values = np.round(t.data / q.scale.reshape(along_axis)) + q.zero_point.reshape(along_axis)
        return schema.TensorType.INT8, np.clip(values, -128, 127).astype(np.int8)

    def _quant_params(self, ranges: dict[int, tuple[float, float]]) -> dict[int, QuantParams]:
        params: dict[int, QuantParams] = {}
        producers = {out: op for op in self.ops for out in op.outputs}
        for t in self.tensors:  # activations first: biases and shared scales depend on them
            if t.role != ACTIVATION:
                continue
            op = producers.get(t.index)
            if op is not None and op.code == OPS.LOGISTIC:
                params[t.index] = QuantParams(np.array([1 / 256]), np.array([-128]))  # what TFLite requires
            elif t.same_scale_as is not None:
                params[t.index] = params[t.same_scale_as]
            else:
                if t.index not in ranges:
                    raise ValueError(f"no calibrated range for tensor {t.name!r}")
                params[t.index] = _asymmetric(*ranges[t.index])
        for t in self.tensors:
            if t.role == WEIGHT:
                axes = tuple(a for a in range(t.data.ndim) if a != t.channel_axis)
                peak = np.maximum(np.abs(t.data).max(axis=axes), 1e-12)
                params[t.index] = QuantParams(peak / 127, np.zeros_like(peak, dtype=np.int64), t.channel_axis)
            elif t.role == SCALAR:
                peak = max(float(np.abs(t.data).max()), 1e-12)
                params[t.index] = QuantParams(np.array([peak / 127]), np.array([0]))
            elif t.role == CONSTANT:
                params[t.index] = _asymmetric(float(t.data.min()), float(t.data.max()))
        for t in self.tensors:
            if t.role == BIAS:
                x, w = t.bias_of
                scale = params[x].scale * params[w].scale
                params[t.index] = QuantParams(scale, np.zeros_like(scale, dtype=np.int64), 0)
        return params


class _VectorCache:
    """Each distinct numeric vector written once per flatbuffer and referenced wherever it recurs.

    Per-channel int8 gives every weight and bias an int64 zero point per output channel, all 0.
    Written per tensor (as TFLite's converter writes them) they are 8 of the 12 bytes a channel's
    quantisation costs; written once per channel count they cost next to nothing. A flatbuffer
    table may point at any vector built before it, so sharing changes no value a reader sees."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, bytes], int] = {}

    def offset(self, builder: flatbuffers.Builder, values: np.ndarray) -> int:
        key = (values.dtype.str, values.tobytes())
        if key not in self._offsets:
            self._offsets[key] = builder.CreateNumpyVector(values)
        return self._offsets[key]


class _SharedVectorQuantization(schema.QuantizationParametersT):
    """Scales (float32) and zero points (int64, as the schema declares them) packed through a
    _VectorCache."""

    def __init__(self, q: QuantParams, vectors: _VectorCache) -> None:
        super().__init__()
        self.scale = np.atleast_1d(q.scale).astype(np.float32)
        self.zeroPoint = np.atleast_1d(q.zero_point).astype(np.int64)
        self.quantizedDimension = q.axis
        self._vectors = vectors

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - the object API's name
        scale = self._vectors.offset(builder, self.scale)
        zero_point = self._vectors.offset(builder, self.zeroPoint)
        schema.QuantizationParametersStart(builder)
        schema.QuantizationParametersAddScale(builder, scale)
        schema.QuantizationParametersAddZeroPoint(builder, zero_point)
        schema.QuantizationParametersAddQuantizedDimension(builder, self.quantizedDimension)
        return schema.QuantizationParametersEnd(builder)


def _asymmetric(low: float, high: float) -> QuantParams:
    """int8 affine parameters for a calibrated range, widened to contain 0 (so zero padding and
    ReLU are exact) and never degenerate. A tensor that was 0 throughout calibration (an SE's
    hidden layer whose ReLUs all died, which small random SEs meet) gets a unit scale: one at the
    floor would overflow the int32 bias of the op reading it and put the requantisation of the
    op writing it beyond what XNNPACK accepts."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max((high - low) / 255.0, 1e-8) if high > low else 1.0
    zero_point = int(np.clip(np.round(-128 - low / scale), -128, 127))
    return QuantParams(np.array([scale]), np.array([zero_point]))
