"""Command-line options that several commands share: the dataset options and their help.

``DATASET_NAMES`` and ``DATASET_FORMATS`` say what ``--dataset`` takes; they appear in
the help of every command that loads data (and in the README).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["DATASET_FORMATS", "DATASET_NAMES", "add_data_arguments"]

DATASET_NAMES = "digits, mnist, fashion-mnist, cifar10, cifar100, svhn, npz:FILE.npz or imagefolder:DIR"
DATASET_FORMATS = """\
digits (scikit-learn's 8x8 digits, bundled), mnist, fashion-mnist, cifar10,
cifar100, svhn (torchvision's files in --data-dir), or your own images:
  npz:FILE.npz     arrays x and y (or x_train, y_train, x_test, y_test), as
                   numpy.savez(FILE.npz, x=images, y=labels) writes them;
                   images N x H x W, N x H x W x C or N x C x H x W, integers
                   in 0..255 (any integer type) or floats in [0, 1], no NaN;
                   labels 0..K-1 (class k is label k)
  imagefolder:DIR  DIR/<class>/<image> (PNG, JPEG, ...), every image one
                   size; classes are the folder names in alphabetical order;
                   greyscale images stay 1 channel unless some are in colour
A plain path is not a dataset name: write npz: or imagefolder: before it."""


def add_data_arguments(parser: argparse.ArgumentParser, default: str = "digits") -> None:
    """The dataset options of the commands that load data; ``default`` is what the help
    says ``--dataset`` falls back to."""
    group = parser.add_argument_group("data", description=DATASET_FORMATS)
    group.add_argument("--dataset", help=f"{DATASET_NAMES} (default: {default})")
    group.add_argument("--data-dir", type=Path, help="where torchvision datasets live (default: data)")
    group.add_argument(
        "--download", action="store_true", default=None, help="download a torchvision dataset that is not in --data-dir"
    )
    group.add_argument("--seed", type=int, help="seed of the validation split and of training (default 0)")
    group.add_argument("--val-fraction", type=float, help="part of the training data used for validation")
