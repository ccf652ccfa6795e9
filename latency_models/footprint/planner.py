"""TensorFlow Lite Micro's activation arena for a lowered graph, computed the way its runtime
computes it, and MCUNet's simpler per-block peak for comparison.

TFLM (tensorflow/lite/micro, micro_allocation_info.cc and memory_planner/greedy_memory_planner.cc)
gives every tensor that is neither a constant nor a variable one buffer, its size rounded up to
16 bytes, alive from the op that writes it (the graph's inputs from time 0) to the last op that
reads it (the graph's outputs to the end); kernels may ask for scratch buffers alive during
their own op. The greedy planner places the buffers largest first, each at the lowest offset
where it overlaps no placed buffer alive at the same time; the arena's head is the highest end.
Among equal sizes the buffer added later is placed first: that is what the `tflite-micro` wheel
does (measured; the planner's source sorts with a stable bubble sort, so the wheel's build
differs there), and it changes the head of about one network in ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latency_models.tflite.graph import ACTIVATION, OPS, Graph

ALIGNMENT = 16  # MicroArenaBufferAlignment()
INT_BYTES = 4  # sizeof(int) and sizeof(int32_t) on the targets TFLM builds for


@dataclass(frozen=True)
class Buffer:
    """One planned buffer: bytes (aligned) and the first and last time it is alive (op i runs at
    time i + 1; the graph's inputs exist at time 0)."""

    size: int
    first: int
    last: int


def align(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


def planned_buffers(graph: Graph, precision: str, integer_io: bool = False) -> list[Buffer]:
    """The buffers TFLM plans for `graph` serialised at `precision`, in the order it adds them:
    tensors by index, then scratch buffers in the order their ops ask for them. An int8 graph
    with a float interface gets the QUANTIZE and DEQUANTIZE ops and float tensors that
    Graph.to_flatbuffer adds around it."""
    width = 4 if precision == "fp32" else 1
    size = {t.index: int(np.prod(t.shape)) * width for t in graph.tensors if t.role == ACTIVATION}
    ops = [(op.code, list(op.inputs), list(op.outputs)) for op in graph.ops]
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    if precision == "int8" and not integer_io:
        next_index = len(graph.tensors)
        for position, t in enumerate(graph.inputs):
            size[next_index] = int(np.prod(graph.shape(t))) * 4
            ops.insert(0, (OPS.QUANTIZE, [next_index], [t]))
            inputs[position], next_index = next_index, next_index + 1
        for position, t in enumerate(graph.outputs):
            size[next_index] = int(np.prod(graph.shape(t))) * 4
            ops.append((OPS.DEQUANTIZE, [t], [next_index]))
            outputs[position], next_index = next_index, next_index + 1
    first: dict[int, int] = {t: 0 for t in inputs}
    last: dict[int, int] = {t: 0 for t in inputs}
    scratch: list[Buffer] = []
    for time, (code, op_inputs, op_outputs) in enumerate(ops, 1):
        for t in op_outputs:
            first.setdefault(t, time)
        for t in op_inputs + op_outputs:
            if t in size:
                last[t] = time
        scratch += [Buffer(align(b), time, time) for b in _scratch_bytes(graph, code, op_inputs, op_outputs, width)]
    for t in outputs:
        first.setdefault(t, len(ops))
        last[t] = len(ops)
    return [Buffer(align(size[t]), first[t], last[t]) for t in sorted(size)] + scratch


def _scratch_bytes(graph: Graph, code: int, inputs: list[int], outputs: list[int], width: int) -> list[int]:
    """What a kernel asks for in its Prepare (reference kernels): MEAN keeps an int32 sum per
    output element when it is integer, and an index per input dimension and per axis."""
    if code != OPS.MEAN:
        return []
    accumulator = [INT_BYTES * int(np.prod(graph.shape(outputs[0])))] if width == 1 else []
    return accumulator + [INT_BYTES * len(graph.shape(inputs[0])), INT_BYTES * int(np.prod(graph.shape(inputs[1])))]


def arena_head(buffers: Sequence[Buffer]) -> int:
    """The greedy planner's arena: the highest end of any buffer it places."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))
    placed: list[tuple[int, Buffer]] = []  # (offset, buffer), ordered by offset
    head = 0
    for i in order:
        wanted = buffers[i]
        offset = 0
        for at, other in placed:
            if other.first > wanted.last or wanted.first > other.last:
                continue  # never alive together
            if at - offset >= wanted.size:
                break  # the gap before this one is big enough
            offset = max(offset, at + other.size)
        position = next((k for k, (at, _) in enumerate(placed) if at > offset), len(placed))
        placed.insert(position, (offset, wanted))
        head = max(head, offset + wanted.size)
    return head


def live_peak(buffers: Sequence[Buffer]) -> int:
    """The most bytes alive at one time: the least any planner could do, and the greedy
    planner's head when it leaves no gap."""
    if not buffers:
        return 0
    change = np.zeros(max(b.last for b in buffers) + 2, dtype=np.int64)
    for b in buffers:
        change[b.first] += b.size
        change[b.last + 1] -= b.size
    return int(np.cumsum(change).max())
