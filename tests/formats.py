"""Tiny dataset files written in the real on-disk formats that torchvision reads."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict:
    """IDX files (LeCun's format: big-endian magic 2051/2049, then dims) under root/<folder>/raw."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar10(root: Path, per_batch: int = 10, seed: int = 0) -> dict[str, str]:
    """CIFAR-10 python batches (pickled dicts, as the official archive holds them).

    Returns the MD5 of each written file: torchvision only unpickles files whose
    checksum it knows, so tests register these in place of the official ones.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, size=per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
        sums[name] = md5(folder / name)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    sums["batches.meta"] = md5(folder / "batches.meta")
    return sums


def write_svhn(root: Path, n: int = 12, seed: int = 0) -> dict[str, str]:
    """SVHN cropped-digit .mat files (X: 32x32x3xN, y: Nx1 with 10 meaning digit 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split in ("train", "test"):
        path = root / f"{split}_32x32.mat"
        savemat(
            path,
            {
                "X": rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8),
                "y": rng.integers(1, 11, size=(n, 1)).astype(np.uint8),
            },
        )
        sums[split] = md5(path)
    return sums


def write_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 6, size: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def digit_images(size: int = 8, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits as uint8 grey images of ``size`` x ``size``
    (17 grey levels spread over 0..255, resized with PIL's bilinear filter), and labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images[:n] / 16 * 255).round().astype(np.uint8)
    if size != 8:
        images = np.stack(
            [np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)) for image in images]
        )
    return images, bunch.target[:n].astype(np.int64)


def write_digits_npz(path: Path, size: int = 8, n: int | None = None) -> Path:
    """An .npz of digit images as a user writes one: ``numpy.savez(path, x=images, y=labels)``."""
    images, labels = digit_images(size, n)
    np.savez(path, x=images, y=labels)
    return path


def write_greyscale_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Greyscale PNGs (8-bit, PIL mode L) in the ImageFolder layout ``root/<label>/<i>.png``."""
    from PIL import Image

    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / str(label) / f"{index}.png")
    return root
