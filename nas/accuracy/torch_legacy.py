"""Reads a PyTorch state dict saved in the legacy (pre-zip) format, without torch and without
running anything from the file.

The format (torch/serialization.py, `_legacy_save`): five pickles in a row (a magic number, the
protocol version 1001, system information, the state dict, the list of storage keys), then every
storage in that list's order as a little-endian int64 element count followed by its elements.
The state dict refers to storages through persistent ids and builds its tensors with
`torch._utils._rebuild_tensor_v2`. A pickle calls whatever globals it names, so the unpickler
here admits exactly the three globals a float state dict needs, each answered by a function of
this module, and refuses every other one before anything is called (Python's pickle
documentation, "Restricting Globals"). BUILD, the one opcode that sets attributes on what the
others made, is admitted only on an OrderedDict (a state dict carries its `_metadata` that way)
and its state is dropped. Only float32 storages are read, and a tensor must lie contiguously
inside its storage, so nothing larger than the file is ever allocated.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import read_bounded

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_BYTES = 256 * 2**20  # far above any accuracy predictor; a bound on what is read into memory


class TorchFileError(InputError):
    """A file that is not a legacy float32 state dict, or asks for anything else to be run."""


@dataclass(frozen=True)
class _Storage:
    key: str
    size: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _FloatStorage:
    """Stands for `torch.FloatStorage` in persistent ids: a marker, never called."""


def _rebuild_tensor(storage, offset, shape, stride, requires_grad=False, hooks=None, *extra) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor that does not point at a storage")
    try:
        return _Tensor(storage, int(offset), tuple(int(n) for n in shape), tuple(int(n) for n in stride))
    except (TypeError, ValueError):
        raise TorchFileError("a tensor with a malformed offset, size or stride") from None


ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch", "FloatStorage"): _FloatStorage,
}


class _Unpickler(pickle._Unpickler):  # the Python implementation: its opcode table can be changed
    def load_build(self) -> None:
        self.stack.pop()  # the state: a state dict's _metadata, not needed
        if type(self.stack[-1]) is not OrderedDict:
            raise TorchFileError(f"refuses to set attributes on {type(self.stack[-1]).__name__}")

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise TorchFileError(f"refuses the global {module}.{name} (only a float32 state dict is read)")
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] is _FloatStorage):
            raise TorchFileError(f"a storage that is not float32: {str(pid)[:80]}")
        key, size = pid[2], pid[4]
        if not isinstance(key, str) or not isinstance(size, int) or size < 0:
            raise TorchFileError("a storage with a malformed key or size")
        return _Storage(key, size)


def _unpickle(stream: io.BytesIO):
    try:
        return _Unpickler(stream).load()
    except TorchFileError:
        raise
    except Exception as exc:  # pickle raises many kinds on damaged data; none of them runs code here
        raise TorchFileError(f"not a readable pickle ({type(exc).__name__}: {exc})"[:200]) from None


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The file's tensors by name, as float32 numpy arrays."""
    try:
        data = read_bounded(path, MAX_BYTES, TorchFileError)
        if data.startswith(b"PK\x03\x04"):
            raise TorchFileError("a zip-format PyTorch file; only the legacy format is read")
        return _parse(io.BytesIO(data))
    except TorchFileError as exc:
        raise TorchFileError(f"{path}: {exc}") from None


def _parse(stream: io.BytesIO) -> dict[str, np.ndarray]:
    if _unpickle(stream) != MAGIC_NUMBER:
        raise TorchFileError("not a legacy PyTorch file (no magic number; zip-format files are not read)")
    if _unpickle(stream) != PROTOCOL_VERSION:
        raise TorchFileError(f"not protocol version {PROTOCOL_VERSION}")
    info = _unpickle(stream)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise TorchFileError("not saved on a little-endian machine")
    state = _unpickle(stream)
    keys = _unpickle(stream)
    if not isinstance(state, dict) or not all(isinstance(t, _Tensor) for t in state.values()):
        raise TorchFileError("not a state dict of tensors")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TorchFileError("malformed storage list")
    storages = {}
    for key in dict.fromkeys(keys):
        count = np.frombuffer(stream.read(8), dtype="<i8")
        if len(count) != 1 or count[0] < 0:
            raise TorchFileError(f"storage {key}: truncated")
        raw = stream.read(int(count[0]) * 4)
        if len(raw) != int(count[0]) * 4:
            raise TorchFileError(f"storage {key}: truncated")
        storages[key] = np.frombuffer(raw, dtype="<f4")
    return {str(name): _materialize(str(name), tensor, storages) for name, tensor in state.items()}


def _materialize(name: str, tensor: _Tensor, storages: dict[str, np.ndarray]) -> np.ndarray:
    values = storages.get(tensor.storage.key)
    if values is None:
        raise TorchFileError(f"{name}: its storage {tensor.storage.key} is not in the file")
    shape, stride = tensor.shape, tensor.stride
    contiguous = tuple(int(np.prod(shape[k + 1 :])) for k in range(len(shape)))
    if min((*shape, tensor.offset), default=0) < 0 or (stride != contiguous and 1 not in shape):
        raise TorchFileError(f"{name}: shape {shape} with stride {stride} is not a contiguous tensor")
    count = int(np.prod(shape))
    if tensor.offset + count > len(values):
        raise TorchFileError(f"{name}: reaches past its storage ({tensor.offset + count} > {len(values)} elements)")
    return values[tensor.offset : tensor.offset + count].reshape(shape).astype(np.float32)
