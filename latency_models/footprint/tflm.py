"""TensorFlow Lite for Microcontrollers run here, through PyPI's `tflite-micro` (its own
interpreter, reference kernels, the arena planner a board runs): the ground truth for the arena
`costs.footprint` predicts, and a second runtime for an exported int8 model.

TFLM prints what it allocated rather than returning it, from C++, to the process's standard
output and error: both are caught at the file descriptors while it runs.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

ALLOCATIONS = re.compile(r"Arena allocation (head|tail) (\d+) bytes")
SEARCHED_BELOW = 256  # bytes under head + tail where the smallest arena is sought
LARGE_ARENA = 1 << 28  # room for any network here while the needed arena is found (untouched pages cost nothing)


@dataclass(frozen=True)
class ArenaUse:
    """What TFLM allocated for a model: the head (the planned activations and scratch buffers)
    and the tail (what persists: op data such as per-channel quantisation, node and tensor
    structs); `smallest` is the least arena_size it accepts (head + tail, give or take the
    buffer's alignment, or a little more where allocating needs more room for a while than the
    plan), found by bisection from just below head + tail."""

    head: int
    tail: int
    smallest: int


class TFLMError(RuntimeError):
    """TFLM refused the model (an op it lacks, an arena too small)."""


def _quiet(call):
    """Run `call()` with file descriptors 1 and 2 caught; returns (its result, what it printed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 1)
        os.dup2(caught.fileno(), 2)
        try:
            result = call()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        caught.seek(0)
        return result, caught.read().decode("utf-8", "replace")


def _interpreter(model: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime  # deferred: only these checks need TFLM

    try:
        interpreter, _ = _quiet(lambda: runtime.Interpreter.from_bytes(model, arena_size=arena_size))
    except RuntimeError as exc:
        raise TFLMError(f"TFLM cannot run the model with a {arena_size}-byte arena: {exc}") from None
    return interpreter


def accepts(model: bytes, arena_size: int) -> bool:
    """Whether TFLM allocates `model` in an arena of `arena_size` bytes."""
    try:
        _interpreter(model, arena_size)
    except TFLMError:
        return False
    return True


def arena_use(model: bytes) -> ArenaUse:
    """The head and tail TFLM allocates for `model`, and the smallest arena it accepts."""
    interpreter = _interpreter(model, LARGE_ARENA)
    _, printed = _quiet(interpreter.print_allocations)
    found = dict((name, int(value)) for name, value in ALLOCATIONS.findall(printed))
    if set(found) != {"head", "tail"}:
        raise TFLMError(f"TFLM printed no arena allocation: {printed[:200]!r}")
    # The least size that works: the needed bytes, give or take the buffer's alignment, or more
    # where allocating needs more room for a while than the plan in the end (a head of 15 KB
    # under a 100 KB tail: 1 to 3 KB more). Sought from just below head + tail up: a far smaller
    # arena fails part-way through the allocation, where some kernels crash the process instead
    # of reporting it (an int8 mbv3 proxy at 28 px, head 18,432 and tail 83,056 bytes, crashes
    # with 85,000 and 50,000).
    needed = found["head"] + found["tail"]
    low, over = max(1, needed - SEARCHED_BELOW), 64
    while not accepts(model, needed + over):
        low, over = needed + over + 1, over * 4
        if needed + over > LARGE_ARENA:
            raise TFLMError(f"TFLM accepts the model in no arena up to {LARGE_ARENA} bytes")
    high = needed + over
    while low < high:
        middle = (low + high) // 2
        if accepts(model, middle):
            high = middle
        else:
            low = middle + 1
    return ArenaUse(found["head"], found["tail"], low)


def run(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """`model` run by TFLM on each of `inputs` (already in the model's input type), one at a
    time; their outputs stacked."""
    interpreter = _interpreter(model, LARGE_ARENA)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[np.newaxis], 0)
        _quiet(interpreter.invoke)
        outputs.append(np.array(interpreter.get_output(0))[0])
    return np.stack(outputs)
