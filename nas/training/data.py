"""Image classification data for the supernet: loading, and the deterministic batch stream.

Sources (`load_dataset(source)`):
  fashion-mnist       Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist/ (default)
  DIR or FILE (idx)   MNIST-style idx files: a folder holding train-images-idx3-ubyte[.gz] and
                      train-labels-idx1-ubyte[.gz] (t10k-* for the test split), or one images
                      file whose labels file is the same name with labels-idx1
  FILE.npz            arrays x_train, y_train[, x_test, y_test] (Keras' layout) or images, labels
  DIR (CIFAR-10)      the python batches: data_batch_1..5 and test_batch (cifar-10-batches-py)
  DIR (image folder)  DIR/CLASS/*.png|jpg, or DIR/train/CLASS/... and DIR/test/CLASS/...
Images are kept as uint8 NHWC. Without a test split, a fixed 1/10 of the training images
(chosen by seed 0) is held out as the test split. Anything missing or malformed raises
DataError, one line, which the command lines print without a traceback.

Batches are a pure function of (seed, step): the epoch's order comes from (seed, epoch) and the
augmentation from (seed, step), so a resumed run sees exactly the images an uninterrupted one
would, with nothing to save but the step.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import InputError
from nas.training.cifar import CifarFileError, read_batch

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HINT = "install it with: apt-get install dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
AUGMENTATIONS = ("none", "flip", "shift", "flip-shift")


class DataError(InputError):
    """A data set that is missing or malformed (one line, exit code 2 in the CLIs)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray  # uint8 [N, H, W, C]
    train_y: np.ndarray  # int32 [N]
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]

    @property
    def resolution(self) -> int:
        return self.train_x.shape[1]

    @property
    def channels(self) -> int:
        return self.train_x.shape[3]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "train": int(len(self.train_y)),
            "test": int(len(self.test_y)),
            "resolution": self.resolution,
            "channels": self.channels,
            "classes": list(self.classes),
        }

    def subset(self, images: int | None, seed: int) -> Dataset:
        """The first `images` of a seeded shuffle of the training split (quick runs); the whole
        set when `images` is None or covers it."""
        if images is None or images >= len(self.train_y):
            return self
        keep = np.sort(np.random.default_rng([seed, 3]).permutation(len(self.train_y))[:images])
        return Dataset(
            f"{self.name}[:{images}]", self.train_x[keep], self.train_y[keep], self.test_x, self.test_y, self.classes
        )


# --- loading -----------------------------------------------------------------------------


def load_dataset(source: str) -> Dataset:
    if source == "fashion-mnist":
        if not FASHION_MNIST_DIR.is_dir():
            raise DataError(f"Fashion-MNIST not found at {FASHION_MNIST_DIR}/ ({FASHION_MNIST_HINT})")
        data = _load_idx_dir(FASHION_MNIST_DIR, "fashion-mnist", hint=f" ({FASHION_MNIST_HINT})")
        if data.num_classes == 10:
            data = Dataset(data.name, data.train_x, data.train_y, data.test_x, data.test_y, FASHION_MNIST_CLASSES)
        return data
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"data set {source!r} not found (use fashion-mnist, or a path to idx files, .npz, CIFAR-10 "
            "batches or an image folder)"
        )
    if path.is_file():
        if path.suffix == ".npz":
            return _load_npz(path)
        if "idx" in path.name:
            return _load_idx_file(path)
        raise DataError(f"{path}: not a data set file (expected .npz or an idx images file)")
    if (path / "data_batch_1").exists():
        return _load_cifar(path)
    if _find(path, "train-images-idx3-ubyte"):
        return _load_idx_dir(path, path.name)
    return _load_image_folder(path)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_bytes(path: Path, hint: str = "") -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DataError(f"{path}: cannot read ({reason}){hint}") from None


def read_idx(path: Path, hint: str = "") -> np.ndarray:
    """An idx array (the MNIST file format): magic 0 0 dtype ndim, big-endian sizes, data."""
    raw = _read_bytes(path, hint)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte idx file (bad magic number){hint}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated idx header{hint}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(
            f"{path}: idx header says {'x'.join(map(str, shape))} = {size} bytes, file holds {len(raw) - header}{hint}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _idx_pair(images: Path, labels: Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images, hint), read_idx(labels, hint)
    if x.ndim not in (3, 4) or y.ndim != 1:
        raise DataError(f"{images}: expected images [N, H, W] and labels [N], got {x.shape} and {y.shape}{hint}")
    if len(x) != len(y):
        raise DataError(f"{images}: {len(x)} images but {labels.name} has {len(y)} labels{hint}")
    return (x[..., None] if x.ndim == 3 else x), y.astype(np.int32)


def _load_idx_dir(folder: Path, name: str, hint: str = "") -> Dataset:
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = _find(folder, f"{prefix}-images-idx3-ubyte"), _find(folder, f"{prefix}-labels-idx1-ubyte")
        if split == "train" and (images is None or labels is None):
            raise DataError(f"{folder}: no train-images-idx3-ubyte[.gz] with train-labels-idx1-ubyte[.gz]{hint}")
        if images is not None and labels is not None:
            parts[split] = _idx_pair(images, labels, hint)
    return _assemble(name, parts, None)


def _load_idx_file(images: Path) -> Dataset:
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if labels == images or not labels.is_file():
        raise DataError(f"{images}: no labels file beside it (expected {labels.name})")
    return _assemble(images.name.split("-")[0], {"train": _idx_pair(images, labels, "")}, None)


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    parts = {}
    for split, keys in (("train", ("x_train", "y_train")), ("test", ("x_test", "y_test"))):
        if all(k in arrays for k in keys):
            parts[split] = (arrays[keys[0]], arrays[keys[1]])
    if "train" not in parts and "images" in arrays and "labels" in arrays:
        parts["train"] = (arrays["images"], arrays["labels"])
    if "train" not in parts:
        raise DataError(f"{path}: expected arrays x_train and y_train (or images and labels), found {sorted(arrays)}")
    for split, (x, y) in list(parts.items()):
        parts[split] = (_as_images(x, f"{path} ({split})"), _as_labels(y, len(x), f"{path} ({split})"))
    return _assemble(path.stem, parts, None)


def _as_images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] not in (1, 3):
        raise DataError(f"{where}: images must be [N, H, H] or [N, H, H, 1 or 3], got {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
            raise DataError(f"{where}: float images must lie in [0, 1]")
        x = np.round(x * 255)
    elif not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 255)):
        raise DataError(f"{where}: images must be uint8 (0..255) or floats in [0, 1], got {x.dtype}")
    return x.astype(np.uint8)


def _as_labels(y: np.ndarray, count: int, where: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if len(y) != count:
        raise DataError(f"{where}: {count} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"{where}: labels must be non-negative integers, got {y.dtype}")
    return y.astype(np.int32)


def _load_cifar(folder: Path) -> Dataset:
    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / name
        try:
            entry = read_batch(path)  # a pickle, read without running anything it names
            data, labels = np.asarray(entry[b"data"], np.uint8), entry[b"labels"]
        except CifarFileError as exc:
            raise DataError(f"{path}: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__})") from None
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path}: expected data of shape [N, 3072], got {data.shape}")
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), _as_labels(np.asarray(labels), len(data), str(path))

    names = sorted(p.name for p in folder.glob("data_batch_*"))
    train = [batch(n) for n in names]
    parts = {"train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]))}
    if (folder / "test_batch").exists():
        parts["test"] = batch("test_batch")
    classes = None
    meta = folder / "batches.meta"
    if meta.exists():
        try:
            classes = tuple(n.decode() for n in read_batch(meta)[b"label_names"])
        except CifarFileError as exc:  # a damaged or crafted file is reported, not passed over
            raise DataError(f"{meta}: {exc}") from None
        except Exception:  # noqa: BLE001 - the class names are a nicety; numbers do
            classes = None
    return _assemble("cifar10", parts, classes)


def _load_image_folder(root: Path) -> Dataset:
    split_dirs = {"train": root / "train", "test": root / "test"} if (root / "train").is_dir() else {"train": root}
    classes = sorted(d.name for d in split_dirs["train"].iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{root}: not a data set (no idx files, CIFAR-10 batches or class folders found)")
    parts, mode, size = {}, None, None
    for split, folder in split_dirs.items():
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in sorted((folder / name).glob("*")) if (folder / name).is_dir() else []:
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(file) as image:
                        if mode is None:
                            mode = "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"
                            size = image.size
                        image = image.convert(mode)
                        if image.size != size:
                            raise DataError(
                                f"{file}: {image.size[0]}x{image.size[1]}, other images are {size[0]}x{size[1]}"
                            )
                        images.append(np.asarray(image, np.uint8))
                except (OSError, UnidentifiedImageError) as exc:
                    raise DataError(f"{file}: not a readable image ({type(exc).__name__})") from None
                labels.append(label)
        if images:
            parts[split] = (_as_images(np.stack(images), str(folder)), np.asarray(labels, np.int32))
    if "train" not in parts:
        raise DataError(f"{root}: class folders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    if size is not None and size[0] != size[1]:
        raise DataError(f"{root}: images must be square, got {size[0]}x{size[1]}")
    return _assemble(root.name, parts, tuple(classes))


def _assemble(name: str, parts: dict, classes: tuple[str, ...] | None) -> Dataset:
    train_x, train_y = parts["train"]
    if len(train_y) < 2:
        raise DataError(f"{name}: needs at least 2 training images, got {len(train_y)}")
    if "test" in parts:
        test_x, test_y = parts["test"]
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(f"{name}: test images are {test_x.shape[1:]}, training images {train_x.shape[1:]}")
    else:
        order = np.random.default_rng(0).permutation(len(train_y))
        held = max(1, len(order) // 10)
        test_x, test_y = train_x[order[:held]], train_y[order[:held]]
        train_x, train_y = train_x[order[held:]], train_y[order[held:]]
    if train_x.shape[1] != train_x.shape[2]:
        raise DataError(f"{name}: images must be square, got {train_x.shape[1]}x{train_x.shape[2]}")
    count = int(max(train_y.max(), test_y.max())) + 1
    if classes is None:
        classes = tuple(str(i) for i in range(count))
    elif count > len(classes):
        raise DataError(f"{name}: label {count - 1} but only {len(classes)} classes")
    if len(classes) < 2:
        raise DataError(f"{name}: needs at least 2 classes, got {len(classes)}")
    return Dataset(name, train_x, train_y.astype(np.int32), test_x, test_y.astype(np.int32), tuple(classes))


# --- batches -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalizer:
    """Per-channel mean and std of the training images (0..1 scale), stored in the run config
    so evaluation normalises exactly as training did."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalizer:
        x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        return cls(tuple(float(v) for v in x.mean(0)), tuple(float(max(v, 1e-3)) for v in x.std(0)))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32) / np.float32(255.0)
        return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)


def augment(images: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """`flip`: mirror half of the images left-right; `shift`: translate each by up to 2 pixels
    (zero fill: CIFAR's padded random crop); `flip-shift`: both. Mirroring suits clothing and
    objects, not digits or text."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}")
    n, h, w, _ = images.shape
    rows = np.broadcast_to(np.arange(h), (n, h))
    cols = np.broadcast_to(np.arange(w), (n, w))
    pad = 0
    if "shift" in kind:
        pad = 2
        dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
        rows, cols = dy[:, None] + rows, dx[:, None] + cols
    if "flip" in kind:
        flip = rng.random(n) < 0.5
        cols = np.where(flip[:, None], cols[:, ::-1], cols)
    if kind == "none":
        return images
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else images
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


class Batches:
    """Training batches as a pure function of the step: `batch(step)` -> (images, labels).
    Each epoch is a fresh permutation (seed, epoch); the last incomplete batch is dropped."""

    def __init__(self, data: Dataset, batch_size: int, seed: int, augmentation: str, normalizer: Normalizer):
        if batch_size > len(data.train_y):
            raise DataError(f"batch size {batch_size} exceeds the {len(data.train_y)} training images")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.augmentation, self.normalizer = augmentation, normalizer
        self.steps_per_epoch = len(data.train_y) // batch_size
        self._epoch, self._order = -1, None

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data.train_y))
        return self._order

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, index = divmod(step, self.steps_per_epoch)
        chosen = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, step, 1])
        images = augment(self.data.train_x[chosen], rng, self.augmentation)
        return self.normalizer(images), self.data.train_y[chosen]
