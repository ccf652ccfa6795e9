"""A network's costs beside its latency, from its ArchSpec, for each way it can be deployed:
the bytes of the .tflite this project emits for it (flash), the activation arena TensorFlow
Lite Micro plans for it (peak SRAM), MCUNet's per-block peak as a second figure, params and
MACs. Nothing is calibrated, quantised or run: the spec is lowered to the emitter's graph with
zero weights and that graph is priced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latency_models.footprint.planner import arena_head, planned_buffers
from latency_models.tflite.graph import ACTIVATION, BIAS, INDEX, OPS, Graph
from latency_models.tflite.lower import lower_spec
from latency_models.tflite.weights import weight_shapes
from search_spaces.arch_spec import ArchSpec, MBConv, ResBlock
from search_spaces.graph import layer_cost

PRECISIONS = ("fp32", "int8")
# How a network can be deployed: (precision, integer input and output). int8 with a float
# interface is what nas.export writes by default and what phones are timed with; a
# microcontroller is fed int8 pixels.
DEPLOYMENTS = (("fp32", False), ("int8", False), ("int8", True))
CONV_OPS = (OPS.CONV_2D, OPS.DEPTHWISE_CONV_2D, OPS.FULLY_CONNECTED)


def deployment_name(precision: str, integer_io: bool = False) -> str:
    return f"{precision} integer io" if integer_io else precision


def check_deployment(precision: str, integer_io: bool = False) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision: the costs model {', '.join(PRECISIONS)}, not {precision!r}")
    if integer_io and precision != "int8":
        raise ValueError("integer input and output: only an int8 model has them")


@dataclass(frozen=True)
class Footprint:
    """One network's costs in one deployment. The arena is TFLM's head to the byte; the flash is
    the file to a few hundred bytes (an int8 file writes each distinct activation zero point once,
    and which recur depends on the calibration). benchmarks/memory_fidelity.py checks both."""

    precision: str
    integer_io: bool
    flash_bytes: int  # the .tflite file
    arena_bytes: int  # TFLM's planned activations (the arena's head)
    mcunet_peak_bytes: int  # MCUNet's count_peak_activation_size, in bytes at this precision
    params: int
    macs: int

    @property
    def deployment(self) -> str:
        return deployment_name(self.precision, self.integer_io)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Footprint:
        """A footprint as to_dict wrote it; ValueError or TypeError naming what is wrong."""
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            raise ValueError(f"footprint: expected the fields {', '.join(cls.__dataclass_fields__)}")
        if not isinstance(data["integer_io"], bool):
            raise TypeError("footprint: integer_io must be true or false")
        check_deployment(data["precision"], data["integer_io"])
        counts = {k: v for k, v in data.items() if k not in ("precision", "integer_io")}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"footprint: {name} must be a count of bytes or operations, got {value!r}")
        return cls(data["precision"], data["integer_io"], **counts)


def placeholder_weights(spec: ArchSpec) -> dict[str, dict[str, np.ndarray]]:
    """Weights of the right shapes, each array one constant of its own: enough to lower a spec
    whose bytes are priced. Distinct values keep every int8 scale vector distinct, as trained
    weights do (the serialiser writes a repeated vector once)."""
    weights, value = {}, 0.0
    for s in spec.shapes:
        arrays = {}
        for name, shape in weight_shapes(s.layer).items():
            value += 1e-3
            arrays[name] = np.full(shape, value, np.float32)
        weights[s.path] = arrays
    return weights


def lowered(spec: ArchSpec) -> Graph:
    return lower_spec(spec, placeholder_weights(spec))


def footprint(
    spec: ArchSpec, precision: str = "fp32", integer_io: bool = False, graph: Graph | None = None
) -> Footprint:
    """The costs of `spec` deployed at `precision` (with int8 input and output if `integer_io`);
    `graph` is its lowered graph when the caller has it already."""
    check_deployment(precision, integer_io)
    graph = graph if graph is not None else lowered(spec)
    cost = [layer_cost(s.layer, s.in_shape, s.out_shape) for s in spec.shapes]
    return Footprint(
        precision=precision,
        integer_io=integer_io,
        flash_bytes=flash_bytes(graph, precision, integer_io),
        arena_bytes=arena_head(planned_buffers(graph, precision, integer_io)),
        mcunet_peak_bytes=mcunet_peak(spec, graph, 4 if precision == "fp32" else 1),
        params=sum(c.params for c in cost),
        macs=sum(c.macs for c in cost),
    )


def footprints(spec: ArchSpec, deployments: tuple[tuple[str, bool], ...] = DEPLOYMENTS) -> list[Footprint]:
    """The costs of `spec` in each of `deployments` (every one by default), lowered once."""
    graph = lowered(spec)
    return [footprint(spec, precision, integer_io, graph) for precision, integer_io in deployments]


def flash_bytes(graph: Graph, precision: str, integer_io: bool = False) -> int:
    """The .tflite file's bytes: its layout serialised without the constants' contents (the
    emitter's own serialiser, so every table, name, shape and quantisation vector is counted as
    written), plus each constant's bytes, padded to 4 as the flatbuffer builder pads them."""
    # Calibrated ranges differ from tensor to tensor, so each activation's scale is written on
    # its own; zero points recur (-128 after every ReLU), which (0, high) ranges reproduce.
    activations = [t.index for t in graph.tensors if t.role == ACTIVATION]
    ranges = {t: (0.0, 1.0 + k * 1e-3) for k, t in enumerate(activations)} if precision == "int8" else None
    layout = graph.to_flatbuffer(ranges, integer_io=integer_io, data=False)
    contents = 0
    for t in graph.tensors:
        if t.data is not None:
            width = 4 if precision == "fp32" or t.role in (BIAS, INDEX) else 1
            contents += -(-t.data.size * width // 4) * 4
    return len(layout) + contents


def mcunet_peak(spec: ArchSpec, graph: Graph, width: int) -> int:
    """MCUNet's peak activation (mit-han-lab/mcunet, count_peak_activation_size), in bytes: each
    convolution or fully connected layer needs its input and output at once; in an inverted
    residual block with a shortcut the depthwise conv also keeps the block's input. Pooling,
    squeeze-excite and adds are not counted, as there. Other residual layers keep their input
    across every conv that is neither their first nor their last."""
    by_layer: dict[str, list[int]] = {}
    for op in graph.ops:
        name = graph.tensors[op.outputs[0]].name
        if op.code in CONV_OPS and "/se/" not in name:
            by_layer.setdefault(name.split("/")[0], []).append(
                int(np.prod(graph.shape(op.inputs[0]))) + int(np.prod(graph.shape(op.outputs[0])))
            )
    peak = 0
    for s in spec.shapes:
        convs = by_layer.get(s.path, [])
        if isinstance(s.layer, ResBlock) or getattr(s.layer, "has_residual", False):
            kept = int(np.prod(s.in_shape))
            if isinstance(s.layer, MBConv):
                middle = [len(convs) - 2] if len(convs) >= 2 else []  # the depthwise conv
            else:
                middle = range(1, len(convs) - 1)
            convs = [c + kept if i in middle else c for i, c in enumerate(convs)]
        peak = max([peak, *convs])
    return peak * width
