"""Data loading: every supported source, malformed files as one-line errors, batches as a pure
function of the step."""

import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.training import data as data_module
from nas.training.data import Batches, DataError, Normalizer, augment, load_dataset, read_idx

REPO = Path(__file__).resolve().parents[1]


def idx_bytes(array: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    )


def write_idx_set(folder: Path, n_train=20, n_test=8, size=6, gz=True, classes=3):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (
            ("images-idx3", rng.integers(0, 256, (n, size, size))),
            ("labels-idx1", rng.integers(0, classes, n)),
        ):
            path = folder / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
            raw = idx_bytes(np.asarray(array))
            path.write_bytes(gzip.compress(raw) if gz else raw)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    data = load_dataset(str(write_idx_set(tmp_path / "set", gz=gz)))
    assert data.train_x.shape == (20, 6, 6, 1) and data.test_x.shape == (8, 6, 6, 1)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int32
    assert data.num_classes == 3 and data.resolution == 6 and data.channels == 1


def test_idx_images_file_finds_its_labels_and_holds_out_a_test_split(tmp_path):
    write_idx_set(tmp_path, gz=False)
    data = load_dataset(str(tmp_path / "train-images-idx3-ubyte"))
    assert len(data.train_y) + len(data.test_y) == 20 and len(data.test_y) == 2


def test_npz_both_layouts(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (30, 8, 8, 3)).astype(np.uint8), rng.integers(0, 5, 30)
    np.savez(tmp_path / "a.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    np.savez(tmp_path / "b.npz", images=x.astype(np.float32) / 255, labels=y)
    a, b = load_dataset(str(tmp_path / "a.npz")), load_dataset(str(tmp_path / "b.npz"))
    assert a.train_x.shape == (20, 8, 8, 3) and len(a.test_y) == 10 and a.num_classes == 5
    assert b.channels == 3 and len(b.train_y) == 27 and np.array_equal(np.sort(np.r_[b.train_y, b.test_y]), np.sort(y))


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    # as the real files are: protocol 2, a dict with bytes keys, labels a list of ints
    entry = {b"batch_label": b"batch 1", b"labels": labels, b"data": data, b"filenames": [b""] * len(labels)}
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)


def test_cifar_python_batches(tmp_path):
    rng = np.random.default_rng(2)
    images = {}
    for name, n in (("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 5)):
        images[name] = rng.integers(0, 256, (n, 3072)).astype(np.uint8), [int(v) for v in rng.integers(0, 10, n)]
        write_cifar_batch(tmp_path / name, *images[name])
    with open(tmp_path / "batches.meta", "wb") as handle:
        meta = {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_cases_per_batch": 6, b"num_vis": 3072}
        pickle.dump(meta, handle, protocol=2)
    data = load_dataset(str(tmp_path))
    assert data.train_x.shape == (10, 32, 32, 3) and data.test_x.shape == (5, 32, 32, 3)
    assert data.classes[3] == "c3"
    x, y = images["test_batch"]
    assert np.array_equal(data.test_x, x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)) and list(data.test_y) == y
    train_y = np.r_[images["data_batch_1"][1], images["data_batch_2"][1]]
    assert np.array_equal(data.train_y, train_y) and data.train_x.dtype == np.uint8


class Payload:
    """Pickles as a call of subprocess.call(["touch", marker]): what a crafted batch would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return subprocess.call, (["touch", str(self.marker)],)


def test_a_crafted_cifar_batch_runs_nothing(tmp_path):
    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps({b"data": Payload(control)}, protocol=2, fix_imports=False))
    assert control.exists()  # plain pickle does run it
    folder = tmp_path / "cifar"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload(marker)}, protocol=2, fix_imports=False))
    with pytest.raises(DataError) as info:
        load_dataset(str(folder))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{folder / 'data_batch_1'}: refuses the global subprocess.call")
    assert not marker.exists()
    # the same payload in batches.meta, beside a genuine batch, is refused as well
    (folder / "data_batch_1").unlink()
    write_cifar_batch(folder / "data_batch_1", np.zeros((2, 3072), np.uint8), [0, 1])
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": Payload(marker)}, protocol=2))
    with pytest.raises(DataError, match="batches.meta: refuses the global"):
        load_dataset(str(folder))
    assert not marker.exists()


def test_a_cifar_object_array_is_refused(tmp_path):
    marker = tmp_path / "marker"
    data = np.empty((1, 3072), dtype=object)
    data[0, 0] = Payload(marker)
    write_cifar_batch(tmp_path / "data_batch_1", data, [0])
    with pytest.raises(DataError, match="data_batch_1: a dtype that is not a number type: O"):
        load_dataset(str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("split", [True, False])
def test_image_folder(tmp_path, split):
    from PIL import Image

    rng = np.random.default_rng(3)
    for part in ("train", "test") if split else ("",):
        for label in ("cat", "dog"):
            folder = tmp_path / part / label
            folder.mkdir(parents=True)
            for i in range(5):
                Image.fromarray(rng.integers(0, 256, (7, 7), dtype=np.uint8)).save(folder / f"{i}.png")
    data = load_dataset(str(tmp_path))
    assert data.classes == ("cat", "dog") and data.channels == 1 and data.resolution == 7
    assert len(data.train_y) == (10 if split else 9)


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda raw: b"\x00\x00\x09\x03" + raw[4:], "bad magic number"),
        (lambda raw: raw[:-5], "file holds"),
        (lambda raw: raw[:6], "truncated idx header"),
        (lambda raw: b"garbage", "bad magic number"),
    ],
)
def test_malformed_idx_files(tmp_path, corrupt, message):
    folder = write_idx_set(tmp_path, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        load_dataset(str(folder))
    assert "\n" not in str(info.value)


def test_mismatched_counts_and_bad_gzip(tmp_path):
    folder = write_idx_set(tmp_path, gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataError, match="20 images but train-labels-idx1-ubyte has 7 labels"):
        load_dataset(str(folder))
    bad = tmp_path / "x-images-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(bad)


def test_malformed_npz_and_cifar(tmp_path):
    np.savez(tmp_path / "a.npz", features=np.zeros((3, 4)))
    with pytest.raises(DataError, match="expected arrays x_train and y_train"):
        load_dataset(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x_train=np.zeros((3, 4, 5)), y_train=np.zeros(3, int))
    with pytest.raises(DataError, match=r"\[N, H, H\]"):
        load_dataset(str(tmp_path / "b.npz"))
    (tmp_path / "c.npz").write_bytes(b"nonsense")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(str(tmp_path / "c.npz"))
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    (cifar / "data_batch_1").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_dataset(str(cifar))


def test_cli_reports_a_bad_data_set_in_one_line(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-m", "nas.train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"python -m nas.train: error: data set {str(tmp_path / 'missing')!r} not found " + (
        "(use fashion-mnist, or a path to idx files, .npz, CIFAR-10 batches or an image folder)\n"
    )


def test_malformed_data_through_the_cli_is_one_line(tmp_path, capsys, monkeypatch):
    from common.cli import run
    from nas.train import PROG, main

    monkeypatch.setenv("XLA_FLAGS", "")
    folder = write_idx_set(tmp_path / "bad", gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(SystemExit) as info:
        run(main, PROG, ["--data", str(folder), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "bad magic number" in err


def test_batches_are_a_pure_function_of_the_step(tmp_path):
    data = load_dataset(str(write_idx_set(tmp_path, n_train=40)))
    normalizer = Normalizer.fit(data.train_x)
    a = Batches(data, 8, seed=3, augmentation="flip-shift", normalizer=normalizer)
    b = Batches(data, 8, seed=3, augmentation="flip-shift", normalizer=normalizer)
    assert a.steps_per_epoch == 5
    for step in (7, 0, 12, 7):  # any order, any instance
        xa, ya = a.batch(step)
        xb, yb = b.batch(step)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    epoch = np.concatenate([a.batch(s)[1] for s in range(5)])
    assert sorted(epoch) == sorted(data.train_y)  # every image once per epoch
    assert not np.array_equal(a.batch(0)[1], a.batch(5)[1])  # a fresh order next epoch
    assert abs(float(normalizer(data.train_x).mean())) < 1e-4


def test_augment_shifts_and_flips():
    images = np.arange(8 * 5 * 5, dtype=np.uint8).reshape(8, 5, 5, 1)
    assert np.array_equal(augment(images, np.random.default_rng(0), "none"), images)
    flipped = augment(images, np.random.default_rng(0), "flip")
    mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images, strict=True)]
    assert all(m or np.array_equal(f, i) for m, f, i in zip(mirrored, flipped, images, strict=True))
    assert 0 < sum(mirrored) < 8
    shifted = augment(images, np.random.default_rng(1), "flip-shift")
    assert shifted.shape == images.shape
    # every output pixel is an input pixel of the same image, or zero fill
    for i in range(8):
        assert set(np.unique(shifted[i])) <= set(np.unique(images[i])) | {0}


def test_real_fashion_mnist_when_installed():
    if not data_module.FASHION_MNIST_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 28, 28, 1) and data.test_x.shape == (10000, 28, 28, 1)
    assert data.classes[9] == "ankle boot" and set(np.unique(data.train_y)) == set(range(10))
