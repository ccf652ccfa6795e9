"""The ImageNet estimator: Once-for-All's predictor read without torch reproduces the tutorial's
five reference numbers; a file asking for any other global is refused before anything runs; the
mapping onto fine-tuned top-1 and the bundled file are what `nas.import_estimator` rebuilds."""

import hashlib
import io
import json
import pickle
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from nas.accuracy.estimator import BUNDLED, AccuracyPredictor, EstimatorError
from nas.accuracy.ofa_predictor import DATA, SCORED_RESOLUTIONS, convert, read_specialised, space
from nas.accuracy.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, TorchFileError, read_state_dict
from tests.test_train import REPO

PTH = DATA / "ofa_mbv3_w1.2_acc_predictor.pth"
# Once-for-All's tutorial network for the Note10 under 25 ms: (kernel, expansion) per block, by stage
TUTORIAL_NET = [[(5, 3), (3, 3)], [(5, 4), (3, 4)], [(7, 6), (7, 3), (3, 4)], [(5, 4), (5, 4), (7, 4), (3, 3)]]
TUTORIAL_NET += [[(3, 6), (3, 6), (5, 6)]]
# its predicted top-1 at 160, 176, 192 (the tutorial's saved output: 81.71%), 208 and 224 px
REFERENCE = {160: 0.7920, 176: 0.8058, 192: 0.8171, 208: 0.8228, 224: 0.8259}


def tutorial_choices(resolution: int):
    values = {"resolution": resolution, "width": 1.2}
    for s, blocks in enumerate(TUTORIAL_NET):
        values[f"stage{s}.depth"] = len(blocks)
        for b, (kernel, expansion) in enumerate(blocks):
            values[f"stage{s}.block{b}.kernel"] = kernel
            values[f"stage{s}.block{b}.expansion"] = expansion
    return space().from_values(values)


def test_the_imported_predictor_reproduces_the_tutorials_five_numbers():
    for estimator in (convert(PTH), AccuracyPredictor.load(BUNDLED["imagenet"])):
        scores = estimator.scorer(space())(np.array([tutorial_choices(r) for r in REFERENCE]))
        assert scores == pytest.approx(list(REFERENCE.values()), abs=0.5e-4)  # to 0.01 point, rounded as printed
    bundled = AccuracyPredictor.load(BUNDLED["imagenet"])
    assert bundled.info["source_sha256"] == hashlib.sha256(PTH.read_bytes()).hexdigest()
    assert bundled.scope.resolutions == SCORED_RESOLUTIONS and bundled.scope.pinned == {"width": 1.2}
    assert (bundled.scope.form, bundled.scope.in_channels, bundled.scope.classes) == ("deployed", 3, 1000)


def legacy_file(state_pickle: bytes, storages: bytes = b"", keys: list[str] | None = None) -> bytes:
    """A file in PyTorch's legacy layout around a given state-dict pickle."""
    head = [MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}]
    return b"".join(pickle.dumps(x, protocol=2) for x in head) + state_pickle + pickle.dumps(keys or [], 2) + storages


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_a_file_naming_any_other_global_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(legacy_file(pickle.dumps({"0.weight": Payload(marker)}, protocol=2, fix_imports=False)))
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))  # the payload does run when unpickled plainly
    assert (tmp_path / "control").exists()
    with pytest.raises(TorchFileError, match="refuses the global subprocess.call"):
        read_state_dict(crafted)
    assert not marker.exists()
    out = tmp_path / "estimator.json"
    done = subprocess.run(
        [sys.executable, "-m", "nas.import_estimator", "--predictor", str(crafted), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "refuses the global subprocess.call" in done.stderr
    assert not marker.exists() and not out.exists()


def test_damaged_files_are_refused_with_a_reason(tmp_path):
    data = PTH.read_bytes()
    cases = {
        "truncated": (data[: len(data) - 1000], "truncated"),
        "zip format": (b"PK\x03\x04 zip archive", "zip-format PyTorch file"),
        "not a pickle": (b"\x00\x01 not a pickle", "not a readable pickle"),
        "empty": (b"", "not a readable pickle"),
        "another global": (data.replace(b"torch\nFloatStorage", b"torch\nFloatStorag2"), "refuses the global"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(TorchFileError, match=message):
            read_state_dict(path)
    stream = io.BytesIO()
    pickle.dump(MAGIC_NUMBER, stream, protocol=2)
    pickle.dump(999, stream, protocol=2)
    (tmp_path / "version").write_bytes(stream.getvalue())
    with pytest.raises(TorchFileError, match="not protocol version 1001"):
        read_state_dict(tmp_path / "version")


def tensor_pickle(monkeypatch, shape, stride, metadata=None) -> bytes:
    """A state dict of one tensor on storage "0", pickled as torch pickles it: stand-ins for the
    three torch globals are put where pickle looks them up, since torch is not installed here."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only pickled")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    storage = object()

    class Tensor:
        def __reduce__(self):
            return (_rebuild_tensor_v2, (storage, 0, shape, stride, False, OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", 1) if obj is storage else None

    state = OrderedDict(w=Tensor())
    if metadata is not None:
        state._metadata = metadata  # torch's state dicts carry this attribute (pickled with BUILD)
    stream = io.BytesIO()
    Pickler(stream, protocol=2).dump(state)
    return stream.getvalue()


def test_a_tensor_larger_than_its_storage_is_refused_before_it_is_built(tmp_path, monkeypatch):
    storage = np.array([1], "<i8").tobytes() + np.array([2.5], "<f4").tobytes()
    path = tmp_path / "t.pth"
    path.write_bytes(legacy_file(tensor_pickle(monkeypatch, (1,), (1,), {"": {"version": 1}}), storage, ["0"]))
    assert read_state_dict(path)["w"].tolist() == [2.5]  # well formed, its _metadata dropped
    path.write_bytes(legacy_file(tensor_pickle(monkeypatch, (16000, 16000), (0, 0)), storage, ["0"]))
    with pytest.raises(TorchFileError, match="not a contiguous tensor"):  # 1 GB from one stored float
        read_state_dict(path)
    path.write_bytes(legacy_file(tensor_pickle(monkeypatch, (4,), (1,)), storage, ["0"]))
    with pytest.raises(TorchFileError, match="reaches past its storage"):
        read_state_dict(path)
    # BUILD (setting attributes) on anything but a state dict: here an attribute on the FloatStorage stand-in
    path.write_bytes(legacy_file(b"\x80\x02ctorch\nFloatStorage\n}X\x01\x00\x00\x00mK\x01sb."))
    with pytest.raises(TorchFileError, match="refuses to set attributes on type"):
        read_state_dict(path)


def test_the_specialised_networks_are_the_spaces_networks_and_the_mapping_is_measured():
    nets = read_specialised(DATA / "ofa_specialized")
    # the width-1.2, 75-epoch networks at a resolution the predictor scores (224 px; not 220-260)
    assert sorted(net.name.split("_top1")[0] for net in nets) == [
        "flops-389M",
        "flops-482M",
        "note10_lat-30ms",
        "pixel1_lat-79ms",
    ]
    assert all(net.values["width"] == 1.2 and net.image_size == 224 for net in nets)
    mapping = AccuracyPredictor.load(BUNDLED["imagenet"]).scope.mapping
    assert sorted(mapping.fitted_on) == sorted(net.name for net in nets)
    assert 0 < mapping.loo_rmse_points <= mapping.loo_max_points < 0.5
    # the published gap: width-1.2 networks lie 3.2-3.6 points below their raw prediction
    assert mapping.slope == 1.0 and -0.036 <= mapping.intercept <= -0.032
    assert mapping.covers(0.82) and not mapping.covers(0.80)


def test_a_damaged_specialised_folder_is_one_error(tmp_path):
    (tmp_path / "x_top1-70.0_finetune-75").mkdir()
    with pytest.raises(EstimatorError, match="not Once-for-All's specialised networks"):
        read_specialised(tmp_path)
    with pytest.raises(EstimatorError, match="not Once-for-All's specialised networks"):
        read_specialised(tmp_path / "missing")


def test_the_import_command_rebuilds_the_bundled_estimator(tmp_path):
    out = tmp_path / "imagenet.json"
    done = subprocess.run(
        [sys.executable, "-m", "nas.import_estimator", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "leave-one-out RMSE" in done.stderr and "note10_lat-30ms" in done.stdout
    assert json.loads(out.read_text()) == json.loads(BUNDLED["imagenet"].read_text())
