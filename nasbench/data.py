"""Datasets as in-memory tensors, with deterministic train/validation/test splits.

Every dataset becomes float tensors in [0, 1], NCHW, plus integer labels. The image
datasets here are small enough to sit in memory (on the GPU when training there), so
the training loop slices tensors instead of running a DataLoader with per-sample
transforms; a dataset that would take more than half of the free memory is refused,
with its numbers, before it is loaded. Normalisation is *not* applied here: models
carry it (``Normalize`` as their first layer), so attacks see and perturb [0, 1] images.

Names accepted by :func:`load_dataset`:

- ``digits``: scikit-learn's bundled UCI handwritten digits (1,797 8x8 grey images, 17
  grey levels). The embedded default: needs no files and no network.
- ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``: torchvision's own
  dataset classes over ``data_dir`` (``download=True`` fetches them where there is
  network). CIFAR's batches are Python pickles; torchvision verifies each file's MD5
  against the official checksum before unpickling it, so only the genuine files load.
- ``imagefolder:PATH``: a user's images in torchvision's ImageFolder layout
  (``PATH/<class>/<image>``, classes in the folders' alphabetical order); all images must
  share one size. Greyscale files stay one channel when every image is greyscale
  (torchvision's own loader would make each of them RGB).
- ``npz:PATH``: a NumPy archive (``numpy.savez``; loaded with ``allow_pickle=False``)
  holding ``x`` and ``y``, or ``x_train``/``y_train`` and ``x_test``/``y_test``; images
  as integers in 0..255 (any integer type) or finite floats in [0, 1], laid out NHW, NHWC
  or NCHW; labels as 1-d non-negative integers, class ``k`` being label ``k``.

A checkpoint records its dataset with :func:`absolute_dataset_name` (and, for
torchvision datasets, the absolute ``data_dir``), so later commands load it again from
any folder.

Splits: where a dataset has an official test set it is used as is; otherwise (digits,
imagefolder, npz without a test part) a fixed 20% is held out with a seed that does
not change, so every run sees the same test set. Validation is carved from the
training data with the run's ``seed``; search looks only at validation, never at test.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasbench.errors import DoubtfulInput, UserError

TORCHVISION_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")
BUILTIN_DATASETS = ("digits", *TORCHVISION_DATASETS)
TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 20_000_101  # fixed: the held-out test set never depends on the run's seed


@dataclass
class Split:
    """Images ``x`` (float32, NCHW, in [0, 1]) and labels ``y`` (int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    data_dir: str | None = None  # absolute folder of a torchvision dataset; None for the others

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def summary(self) -> str:
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test, "
            f"{c}x{h}x{w}, {self.num_classes} classes"
        )


def load_dataset(
    name: str = "digits",
    data_dir: str | Path = "data",
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.15,
) -> Dataset:
    """Load ``name`` into memory and split it; see the module docstring for the names."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    kind, colon, path = name.partition(":")
    if colon and kind not in ("imagefolder", "npz"):
        raise UserError(
            f"dataset '{kind}' takes no path after ':' (got '{name}'); use --data-dir for "
            "where torchvision datasets live"
        )
    if kind == "digits":
        (x, y), test, class_names = _digits(), None, [str(d) for d in range(10)]
    elif kind in TORCHVISION_DATASETS:
        (x, y), test, class_names = _torchvision(kind, Path(data_dir), download)
    elif kind == "imagefolder" and path:
        x, y, class_names = _image_folder(Path(path).expanduser())
        test = None
    elif kind == "npz" and path:
        (x, y), test = _npz(Path(path).expanduser())
        class_names = None
    else:
        raise UserError(_unknown_dataset(name))

    if test is None:  # no official test set: hold out a fixed part
        train_idx, test_idx = _split_indices(len(y), TEST_FRACTION, TEST_SPLIT_SEED)
        test = (x[test_idx], y[test_idx])
        x, y = x[train_idx], y[train_idx]
    train_idx, val_idx = _split_indices(len(y), val_fraction, seed)
    num_classes = int(max(y.max(), test[1].max())) + 1
    if kind == "npz":  # the other kinds number their classes themselves
        _warn_about_unused_classes(name, torch.cat([y, test[1]]), num_classes)
    train = Split(x[train_idx], y[train_idx])
    mean = tuple(train.x.mean(dim=(0, 2, 3)).tolist())
    std = tuple(max(s, 1e-3) for s in train.x.std(dim=(0, 2, 3)).tolist())
    return Dataset(
        name=name,
        train=train,
        val=Split(x[val_idx], y[val_idx]),
        test=Split(*test),
        num_classes=num_classes,
        class_names=class_names or [str(c) for c in range(num_classes)],
        mean=mean,
        std=std,
        data_dir=str(Path(data_dir).expanduser().resolve()) if kind in TORCHVISION_DATASETS else None,
    )


def absolute_dataset_name(name: str) -> str:
    """``name`` with the path of ``npz:``/``imagefolder:`` made absolute: the same data
    seen from any folder (a checkpoint records this, and it is how two names compare)."""
    kind, colon, path = name.partition(":")
    if colon and kind in ("imagefolder", "npz") and path:
        return f"{kind}:{Path(path).expanduser().resolve()}"
    return name


def _unknown_dataset(name: str) -> str:
    """The message for a name that is no dataset; a plain path gets the prefix it needs."""
    choices = ", ".join((*BUILTIN_DATASETS, "imagefolder:PATH", "npz:PATH"))
    message = f"unknown dataset '{name}' (choose from {choices})"
    path = Path(name).expanduser()
    if name and path.is_dir():
        return f"{message}; for a folder of images write imagefolder:{name}"
    if name and (path.is_file() or path.suffix.lower() == ".npz"):
        return f"{message}; for a NumPy archive write npz:{name}"
    return message


def _warn_about_unused_classes(name: str, labels: torch.Tensor, num_classes: int) -> None:
    """Class ``k`` is label ``k``: labels 1..10 make 11 classes, one of them never seen."""
    present = torch.unique(labels).tolist()
    if len(present) == num_classes:
        return
    if present == list(range(present[0], present[-1] + 1)):
        shown = f"{present[0]}..{present[-1]}"
    else:
        shown = ", ".join(map(str, present[:8])) + (", ..." if len(present) > 8 else "")
    empty = num_classes - len(present)
    warnings.warn(
        f"{name}: the labels are {shown}, so the model gets {num_classes} classes (0..{num_classes - 1}), "
        f"{empty} of them without a single example; relabel to 0..{len(present) - 1} unless that is "
        "meant",
        DoubtfulInput,
        stacklevel=3,
    )


def _split_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation cut in two: (the rest, ``fraction`` of ``n``)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(round(n * fraction)))
    return order[cut:], order[:cut]


def check_fits_in_memory(count: int, image_numel: int, what: str) -> None:
    """Data is held in memory as float32 tensors: refuse, with the numbers, a dataset that
    would take more than half of the memory free now, instead of running out of it."""
    needed = count * image_numel * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not knowable here: go ahead
        return
    if needed > free / 2:
        raise UserError(
            f"{what}: {count:,} images take {needed / 2**30:,.1f} GiB as float32 tensors, more than "
            f"half of the {free / 2**30:.1f} GiB of memory free; use fewer or smaller images"
        )


def _as_images(array: np.ndarray | torch.Tensor, layout: str, what: str = "dataset") -> torch.Tensor:
    """uint8 or float arrays in ``layout`` ("NHW", "NHWC" or "NCHW") -> float NCHW in [0, 1]."""
    check_fits_in_memory(len(array), int(np.prod(array.shape[1:])), what)
    x = torch.as_tensor(np.asarray(array))
    if layout == "NHW":
        x = x.unsqueeze(1)
    elif layout == "NHWC":
        x = x.permute(0, 3, 1, 2)
    x = x.contiguous()
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits, read straight from its CSV (what ``load_digits`` reads).

    Importing ``sklearn.datasets`` costs 1-3 s here, paid by the driver and by every Ray
    worker of a search; locating the package does not import it.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    locations = spec.submodule_search_locations if spec else None
    csv = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if csv is not None and csv.is_file():
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:  # a differently packaged scikit-learn: its loader knows where the file is
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, target = bunch.images, bunch.target
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0  # 17 grey levels 0..16
    return x, torch.as_tensor(target, dtype=torch.int64)


def _torchvision(kind: str, root: Path, download: bool):
    from torchvision import datasets

    def load(train: bool):
        try:
            if kind == "mnist":
                return datasets.MNIST(root, train=train, download=download)
            if kind == "fashion-mnist":
                return datasets.FashionMNIST(root, train=train, download=download)
            if kind == "cifar10":
                return datasets.CIFAR10(root, train=train, download=download)
            if kind == "cifar100":
                return datasets.CIFAR100(root, train=train, download=download)
            return datasets.SVHN(root, split="train" if train else "test", download=download)
        except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
            hint = "" if download else " (pass --download to fetch it, or point --data-dir at it)"
            raise UserError(f"{kind} in {root}: {error}{hint}") from None
        except OSError as error:
            raise UserError(f"{kind} in {root}: cannot read: {error}") from None

    train, test = load(True), load(False)
    if kind in ("mnist", "fashion-mnist"):

        def split(ds):
            return _as_images(ds.data, "NHW", kind), ds.targets.long()
    elif kind in ("cifar10", "cifar100"):

        def split(ds):
            return _as_images(ds.data, "NHWC", kind), torch.as_tensor(ds.targets, dtype=torch.int64)
    else:

        def split(ds):
            return _as_images(ds.data, "NCHW", kind), torch.as_tensor(ds.labels, dtype=torch.int64)

    class_names = list(getattr(train, "classes", []) or [])
    return split(train), split(test), [str(c) for c in class_names] or None


# PIL modes of 8-bit greyscale files (1-bit, 8-bit, with alpha); 16-bit grey (modes I*) is read
# on its own scale, every other mode as RGB.
GREYSCALE_MODES = ("1", "L", "LA")


def _open_image(path: str):
    """ImageFolder's loader, except that a greyscale file stays greyscale: 8-bit grey as
    mode L, 16-bit grey as floats in [0, 1] (mode F); torchvision's default makes every
    image RGB, which would triple the first layer of a network for grey data."""
    from PIL import Image

    with open(path, "rb") as file:
        image = Image.open(file)
        image.load()
    if image.mode.startswith("I"):  # 16-bit grey: its own scale, which mode L would clip
        return Image.fromarray(np.asarray(image, dtype=np.float32) / 65535.0)
    return image.convert("L" if image.mode in GREYSCALE_MODES else "RGB")


def _image_folder(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from torchvision import datasets
    from torchvision.transforms import v2

    if not path.is_dir():
        raise UserError(f"imagefolder: {path} is not a directory (expected {path}/<class>/<image>)")
    to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    try:
        folder = datasets.ImageFolder(str(path), transform=to_tensor, loader=_open_image)
    except (FileNotFoundError, RuntimeError) as error:
        raise UserError(f"imagefolder {path}: {error} (expected {path}/<class>/<image>)") from None
    images: list[torch.Tensor] = []
    labels: list[int] = []
    for index in range(len(folder)):
        try:
            image, label = folder[index]
        except OSError as error:
            raise UserError(f"imagefolder {path}: cannot read {folder.samples[index][0]}: {error}") from None
        if not images:
            check_fits_in_memory(len(folder), image.numel(), f"imagefolder {path}")
        if images and image.shape[1:] != images[0].shape[1:]:
            raise UserError(
                f"imagefolder {path}: images differ in size ({tuple(images[0].shape[1:])} vs "
                f"{tuple(image.shape[1:])} in {folder.samples[index][0]}); resize them to one size"
            )
        images.append(image)
        labels.append(label)
    if not images:
        raise UserError(f"imagefolder {path}: no images found")
    if any(image.shape[0] == 3 for image in images):  # colour and grey mixed: all in colour
        images = [image.expand(3, -1, -1) for image in images]
    return torch.stack(images), torch.as_tensor(labels, dtype=torch.int64), list(folder.classes)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive, read without unpickling anything."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"npz: no such file {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:  # includes object arrays, which would need pickle
        raise UserError(f"npz {path}: not a readable .npz of plain arrays ({error})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load reads a bare .npy array too
        raise UserError(
            f"npz {path}: one bare array, not an .npz archive of images and labels; write one with "
            "numpy.savez(FILE, x=images, y=labels)"
        )
    try:
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"npz {path}: not a readable .npz of plain arrays ({error})") from None


def _checked_pixels(x: np.ndarray, what: str) -> np.ndarray:
    """Integer images in 0..255 (as uint8) or finite float images in [0, 1]; anything else is refused."""
    if x.size == 0:
        raise UserError(f"{what} holds no images")
    if np.issubdtype(x.dtype, np.integer):
        return _checked_integer_pixels(x, what)
    if np.issubdtype(x.dtype, np.floating):
        return _checked_float_pixels(x, what)
    raise UserError(f"{what}: images of type {x.dtype} are not accepted; give integers in 0..255 or floats in [0, 1]")


def _checked_integer_pixels(x: np.ndarray, what: str) -> np.ndarray:
    low, high = int(x.min()), int(x.max())
    if low < 0 or high > 255:
        raise UserError(
            f"{what}: integer images must lie in 0..255, these go from {low} to {high}; "
            "scale them to 0..255, or to floats in [0, 1]"
        )
    return x.astype(np.uint8, copy=False)


def _checked_float_pixels(x: np.ndarray, what: str) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        images = np.unique(np.nonzero(bad)[0])
        raise UserError(
            f"{what}: {int(bad.sum())} pixel(s) are NaN or infinite, in {len(images)} image(s) "
            f"(the first at index {images[0]}); repair or drop those images"
        )
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise UserError(
            f"{what}: float images must lie in [0, 1], these go from {low:g} to {high:g}; "
            "integer images in 0..255 are accepted too"
        )
    return x


def _npz(path: Path):
    arrays = _read_npz(path)

    def images(key: str) -> torch.Tensor:
        x = arrays[key]
        if x.ndim not in (3, 4):
            raise UserError(f"npz {path}: '{key}' must have 3 or 4 dimensions (NHW, NHWC or NCHW), has shape {x.shape}")
        x = _checked_pixels(x, f"npz {path}: '{key}'")
        if x.ndim == 3:
            return _as_images(x, "NHW", f"npz {path}")
        layout = "NCHW" if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3) else "NHWC"
        return _as_images(x, layout, f"npz {path}")

    def labels(key: str) -> torch.Tensor:
        y = arrays[key]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise UserError(f"npz {path}: '{key}' must be a 1-d array of non-negative integer labels")
        return torch.as_tensor(y, dtype=torch.int64)

    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        train, test = (images("x_train"), labels("y_train")), (images("x_test"), labels("y_test"))
    elif {"x", "y"} <= arrays.keys():
        train, test = (images("x"), labels("y")), None
    else:
        raise UserError(
            f"npz {path}: expected arrays 'x' and 'y' (or x_train/y_train/x_test/y_test), found {sorted(arrays)}"
        )
    for x, y in [train] + ([test] if test else []):
        if len(x) != len(y):
            raise UserError(f"npz {path}: {len(x)} images but {len(y)} labels")
    if test is not None and train[0].shape[1:] != test[0].shape[1:]:
        raise UserError(
            f"npz {path}: train images are {tuple(train[0].shape[1:])} but test images {tuple(test[0].shape[1:])}"
        )
    return train, test
