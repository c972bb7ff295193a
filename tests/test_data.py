"""Datasets: the embedded default, torchvision's real loaders on real-format files, a
user's own images; deterministic splits; bad input as UserError."""

import numpy as np
import pytest
import torch
from torchvision import datasets

from formats import write_cifar10, write_image_folder, write_mnist, write_svhn
from nasbench.data import load_dataset
from nasbench.errors import UserError


def test_digits_is_the_embedded_default(digits):
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
    # 17 grey levels 0..16 scaled to [0, 1]
    assert len(torch.unique(digits.train.x)) == 17


def _rows(split):
    return {tuple(row) for row in split.x.flatten(1).mul(16).round().int().tolist()}


def test_splits_are_deterministic_and_test_does_not_depend_on_seed():
    a, b, c = load_dataset(seed=0), load_dataset(seed=0), load_dataset(seed=1)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.y, c.val.y)  # another seed, another validation split
    assert torch.equal(a.test.x, c.test.x)  # the held-out test set is fixed
    # validation is carved from training data, never from test
    assert len(a.train) + len(a.val) == len(c.train) + len(c.val)


def test_digits_match_scikit_learns_loader():
    from sklearn.datasets import load_digits

    from nasbench.data import _digits

    x, y = _digits()
    bunch = load_digits()
    assert torch.equal(x, torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0)
    assert torch.equal(y, torch.as_tensor(bunch.target))


def test_validation_fraction(digits):
    assert len(digits.val) == round((len(digits.train) + len(digits.val)) * 0.15)


def test_mnist_idx_files_through_torchvision(tmp_path):
    arrays = write_mnist(tmp_path)
    data = load_dataset("mnist", data_dir=tmp_path, val_fraction=0.25)
    assert data.input_shape == (1, 28, 28)
    assert len(data.train) + len(data.val) == 40 and len(data.test) == 20
    images, labels = arrays["t10k"]
    assert torch.equal(data.test.x, torch.as_tensor(images).unsqueeze(1).float() / 255)
    assert torch.equal(data.test.y, torch.as_tensor(labels).long())


def test_fashion_mnist_uses_its_own_folder(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST")
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert data.class_names[0] == "T-shirt/top"


def test_cifar10_pickle_batches_load_only_with_known_checksums(tmp_path, monkeypatch):
    sums = write_cifar10(tmp_path)
    # Unknown files are never unpickled: torchvision checks MD5 against its list first.
    with pytest.raises(UserError, match="cifar10 .*not found or corrupted"):
        load_dataset("cifar10", data_dir=tmp_path)
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]]
                                                          for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                   "md5": sums["batches.meta"]})
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.input_shape == (3, 32, 32)
    assert len(data.train) + len(data.val) == 50 and len(data.test) == 10
    assert data.class_names[0] == "airplane"
    assert 0 <= data.train.x.min() and data.train.x.max() <= 1


def test_svhn_mat_files(tmp_path, monkeypatch):
    sums = write_svhn(tmp_path)
    monkeypatch.setattr(datasets.SVHN, "split_list", {
        "train": ["", "train_32x32.mat", sums["train"]],
        "test": ["", "test_32x32.mat", sums["test"]],
        "extra": ["", "extra_32x32.mat", ""],
    })
    data = load_dataset("svhn", data_dir=tmp_path)
    assert data.input_shape == (3, 32, 32)
    assert data.test.y.min() >= 0 and data.test.y.max() <= 9  # label 10 means digit 0


def test_missing_torchvision_dataset_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--download"):
        load_dataset("mnist", data_dir=tmp_path)


def test_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    data = load_dataset(f"imagefolder:{root}", val_fraction=0.2)
    assert data.class_names == ["cat", "dog"]
    assert data.input_shape == (3, 12, 12)
    assert len(data.train) + len(data.val) + len(data.test) == 12


def test_image_folder_with_mixed_sizes_is_refused(tmp_path):
    from PIL import Image

    root = write_image_folder(tmp_path / "pets")
    Image.new("RGB", (20, 20)).save(root / "cat" / "big.png")
    with pytest.raises(UserError, match="differ in size"):
        load_dataset(f"imagefolder:{root}")


def test_npz_train_and_test(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "own.npz"
    np.savez(path, x_train=rng.integers(0, 256, (30, 10, 10, 3), dtype=np.uint8), y_train=np.arange(30) % 3,
             x_test=rng.integers(0, 256, (9, 10, 10, 3), dtype=np.uint8), y_test=np.arange(9) % 3)
    data = load_dataset(f"npz:{path}")
    assert data.input_shape == (3, 10, 10) and data.num_classes == 3 and len(data.test) == 9


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([object()] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(UserError, match="not a readable .npz"):
        load_dataset(f"npz:{path}")


def test_a_dataset_too_large_for_memory_is_refused_with_its_numbers():
    from nasbench.data import check_fits_in_memory

    with pytest.raises(UserError, match=r"imagefolder big: 1,000,000,000 images take 560,760.5 GiB as float32"):
        check_fits_in_memory(10**9, 3 * 224 * 224, "imagefolder big")  # ImageNet-sized, a billion times
    check_fits_in_memory(60_000, 28 * 28, "mnist")  # 188 MB: fits


def test_truncated_npz_is_a_clear_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((4, 8, 8), dtype=np.uint8), y=np.arange(4))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])  # the zip's central directory is gone
    with pytest.raises(UserError, match="not a readable .npz.*not a zip file"):
        load_dataset(f"npz:{truncated}")


@pytest.mark.parametrize("name", ["imagenet", "npz:", "imagefolder:"])
def test_unknown_dataset(name):
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset(name)
