"""The least arena TensorFlow Lite Micro accepts for a model, found by bisection in a process of
its own; run by `tflm.arena_use` (`python tflm_probe.py HIGH < model.tflite` prints the size),
not by people. HIGH is where the search starts, head + tail and a little: the size most models
need, not a bound.

Each size is tried in a forked child because on some sizes too small TFLM crashes (a segfault,
after 'All temp buffers must be freed before calling ResetTempAllocations()') instead of refusing
the model: the crash must read as 'too small', not end the caller. The forks happen here, in a
fresh process that holds nothing but TFLM, since forking the caller (JAX's threads) is unsafe.
"""

from __future__ import annotations

import os
import sys

from tflite_micro.python.tflite_micro import runtime

MOST = 1 << 28  # tflm.LARGE_ARENA: the arena the head and tail were found in


def accepts(model: bytes, arena_size: int) -> bool:
    """Whether TFLM sets `model` up in an arena of `arena_size` bytes."""
    pid = os.fork()
    if pid == 0:
        silent = os.open(os.devnull, os.O_WRONLY)  # TFLM prints each failed allocation
        os.dup2(silent, 1)
        os.dup2(silent, 2)
        try:
            runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        except RuntimeError:
            os._exit(1)
        os._exit(0)  # no destructors: only whether it was set up matters
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest(model: bytes, high: int) -> int:
    """The least size TFLM accepts: in 1..`high` if it accepts `high`, else above it, `high`
    raised by a sixteenth at a time until it does. Setting a model up can need more room for a
    while than its plan in the end: an int8 Fashion-MNIST proxy (head 15,360 bytes, tail 101,312)
    needs 2,112 bytes over head + tail, an int8 mobilenet_v3_small_1.25 at 16 px (head 4,576) 11,632."""
    low = 1
    while not accepts(model, high):
        if high > MOST:
            raise SystemExit(f"TFLM accepts the model in no arena up to {MOST} bytes")
        low, high = high + 1, high + max(64, high // 16)
    while low < high:
        middle = (low + high) // 2
        if accepts(model, middle):
            high = middle
        else:
            low = middle + 1
    return low


if __name__ == "__main__":
    print(smallest(sys.stdin.buffer.read(), int(sys.argv[1])))
