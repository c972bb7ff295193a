"""Datasets: the embedded default, torchvision's real loaders on real-format files, a
user's own images; deterministic splits; bad input as UserError."""

import json

import numpy as np
import pytest
import torch
from formats import (
    digit_images,
    write_cifar10,
    write_digits_npz,
    write_greyscale_folder,
    write_image_folder,
    write_mnist,
    write_svhn,
)
from torchvision import datasets

from nasbench.cli import main
from nasbench.data import load_dataset
from nasbench.errors import UserError


def test_digits_is_the_embedded_default(digits):
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    for split in (digits.train, digits.val, digits.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
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
    monkeypatch.setattr(
        datasets.CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(
        datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": sums["batches.meta"]}
    )
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.input_shape == (3, 32, 32)
    assert len(data.train) + len(data.val) == 50 and len(data.test) == 10
    assert data.class_names[0] == "airplane"
    assert data.train.x.min() >= 0 and data.train.x.max() <= 1


def test_svhn_mat_files(tmp_path, monkeypatch):
    sums = write_svhn(tmp_path)
    monkeypatch.setattr(
        datasets.SVHN,
        "split_list",
        {
            "train": ["", "train_32x32.mat", sums["train"]],
            "test": ["", "test_32x32.mat", sums["test"]],
            "extra": ["", "extra_32x32.mat", ""],
        },
    )
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
    np.savez(
        path,
        x_train=rng.integers(0, 256, (30, 10, 10, 3), dtype=np.uint8),
        y_train=np.arange(30) % 3,
        x_test=rng.integers(0, 256, (9, 10, 10, 3), dtype=np.uint8),
        y_test=np.arange(9) % 3,
    )
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


# ---------------------------------------------------------------- a user's own files, through the CLI


def _train(dataset: str, out, *extra: str) -> int:
    """``nasbench train`` as a user runs it: LeNet-5, one epoch, a checkpoint at ``out``."""
    return main(["train", "--model", "lenet5", "--dataset", dataset, "--epochs", "1", "--out", str(out), *extra])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_a_bare_npy_array_is_one_line_exit_2(tmp_path, capsys):
    images, _ = digit_images(n=40)
    np.save(tmp_path / "plain.npy", images)
    assert _train(f"npz:{tmp_path / 'plain.npy'}", tmp_path / "ck") == 2
    err = _one_error_line(capsys)
    assert "one bare array, not an .npz archive" in err and "numpy.savez(FILE, x=images, y=labels)" in err
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_pixels_are_refused_before_training(bad, tmp_path, capsys):
    images, labels = digit_images(n=40)
    x = images.astype(np.float32) / 255
    x[3, 2, 5] = x[7, 0, 0] = bad
    np.savez(tmp_path / "holes.npz", x=x, y=labels)
    assert _train(f"npz:{tmp_path / 'holes.npz'}", tmp_path / "ck") == 2
    err = _one_error_line(capsys)
    assert "'x': 2 pixel(s) are NaN or infinite, in 2 image(s) (the first at index 3)" in err
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.int32, np.int8])
def test_integer_images_in_0_to_255_are_read_as_8_bit_grey_levels(dtype, tmp_path, capsys):
    images, labels = digit_images(n=60)
    if dtype == np.int8:  # a signed type that cannot hold 255: the digits' levels up to 127
        images = images // 2
    np.savez(tmp_path / "as_uint8.npz", x=images.astype(np.uint8), y=labels)
    np.savez(tmp_path / "typed.npz", x=images.astype(dtype), y=labels)
    typed, reference = load_dataset(f"npz:{tmp_path / 'typed.npz'}"), load_dataset(f"npz:{tmp_path / 'as_uint8.npz'}")
    assert torch.equal(typed.test.x, reference.test.x) and torch.equal(typed.train.x, reference.train.x)
    assert typed.test.x.max() == float(images.max()) / 255
    assert _train(f"npz:{tmp_path / 'typed.npz'}", tmp_path / "ck") == 0
    assert (tmp_path / "ck" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "x, message",
    [
        (
            np.arange(4 * 64, dtype=np.uint16).reshape(4, 8, 8) * 16,
            "'x': integer images must lie in 0..255, these go from 0 to 4080; "
            "scale them to 0..255, or to floats in [0, 1]",
        ),
        (np.full((4, 8, 8), -1, dtype=np.int16), "integer images must lie in 0..255, these go from -1 to -1"),
        (
            np.linspace(0, 255, 256, dtype=np.float32).reshape(4, 8, 8),
            "float images must lie in [0, 1], these go from 0 to 255; integer images in 0..255 are accepted too",
        ),
        (
            np.ones((4, 8, 8), dtype=bool),
            "images of type bool are not accepted; give integers in 0..255 or floats in [0, 1]",
        ),
    ],
)
def test_pixels_outside_what_is_accepted_say_what_is(x, message, tmp_path, capsys):
    np.savez(tmp_path / "odd.npz", x=x, y=np.arange(4))
    assert _train(f"npz:{tmp_path / 'odd.npz'}", tmp_path / "ck") == 2
    assert message in _one_error_line(capsys)


def test_labels_that_are_not_0_to_k_minus_1_are_warned_about_with_what_they_are(tmp_path, capsys):
    images, labels = digit_images(n=80)
    np.savez(tmp_path / "from_one.npz", x=images, y=labels + 1)
    dataset = f"npz:{tmp_path / 'from_one.npz'}"
    assert _train(dataset, tmp_path / "ck") == 0
    err = capsys.readouterr().err
    assert (
        f"nasbench: warning: {dataset}: the labels are 1..10, so the model gets 11 classes (0..10), 1 of them "
        "without a single example; relabel to 0..9 unless that is meant\n"
    ) in err
    assert err.count("the labels are") == 1
    assert json.loads((tmp_path / "ck" / "meta.json").read_text())["num_classes"] == 11
    # gaps are named too; labels 0..K-1 say nothing
    np.savez(tmp_path / "gaps.npz", x=images, y=labels * 2)
    assert main(["describe", "--model", "lenet5", "--dataset", f"npz:{tmp_path / 'gaps.npz'}"]) == 0
    assert (
        "the labels are 0, 2, 4, 6, 8, 10, 12, 14, ..., so the model gets 19 classes (0..18), 9 of them"
        in capsys.readouterr().err
    )
    assert _train(f"npz:{write_digits_npz(tmp_path / 'fine.npz', n=80)}", tmp_path / "ck2") == 0
    assert "the labels are" not in capsys.readouterr().err


def test_greyscale_pngs_stay_one_channel(tmp_path, capsys):
    from PIL import Image

    images, labels = digit_images(size=16, n=60)
    root = write_greyscale_folder(tmp_path / "grey", images, labels)
    assert Image.open(next(root.glob("*/*.png"))).mode == "L"
    assert _train(f"imagefolder:{root}", tmp_path / "ck") == 0
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert meta["input_shape"] == [1, 16, 16]
    data = load_dataset(f"imagefolder:{root}")
    # every pixel as the file holds it (the folder order differs from the array's: compare sorted sets)
    stored = sorted(tuple(row) for row in (images.reshape(60, -1)).tolist())
    loaded = torch.cat([data.train.x, data.val.x, data.test.x]).mul(255).round().int().flatten(1).tolist()
    assert sorted(tuple(row) for row in loaded) == stored
    # one colour image among them: everything in colour, the grey ones as three equal channels
    Image.fromarray(np.stack([images[0]] * 3, axis=-1)).convert("RGB").resize((16, 16)).save(root / "0" / "rgb.png")
    mixed = load_dataset(f"imagefolder:{root}")
    assert mixed.input_shape == (3, 16, 16)
    every = torch.cat([mixed.train.x, mixed.test.x])
    assert torch.equal(every[:, 0], every[:, 1]) and torch.equal(every[:, 1], every[:, 2])


def test_sixteen_bit_greyscale_pngs_keep_their_scale(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "deep" / label).mkdir(parents=True)
        for i in range(5):
            pixels = np.full((6, 6), 1000 * (i + 1) + (30_000 if label == "b" else 0), dtype=np.uint16)
            Image.fromarray(pixels).save(tmp_path / "deep" / label / f"{i}.png")
    assert Image.open(tmp_path / "deep" / "a" / "0.png").mode.startswith("I")
    data = load_dataset(f"imagefolder:{tmp_path / 'deep'}")
    assert data.input_shape == (1, 6, 6)
    values = sorted(torch.cat([data.train.x, data.val.x, data.test.x])[:, 0, 0, 0].tolist())
    expected = sorted((1000 * (i + 1) + extra) / 65535 for i in range(5) for extra in (0, 30_000))
    assert values == pytest.approx(expected, abs=1e-6)


def test_a_plain_path_is_refused_with_the_prefix_it_needs_and_the_help_says_so(tmp_path, capsys):
    npz = write_digits_npz(tmp_path / "mine.npz", n=40)
    folder = write_greyscale_folder(tmp_path / "pngs", *digit_images(n=20))
    assert _train(str(npz), tmp_path / "ck") == 2
    assert f"unknown dataset '{npz}'" in (err := _one_error_line(capsys)) and f"write npz:{npz}" in err
    assert _train(str(folder), tmp_path / "ck") == 2
    assert f"write imagefolder:{folder}" in _one_error_line(capsys)
    # what the help names is what loads
    assert _train(f"npz:{npz}", tmp_path / "ck") == 0
    capsys.readouterr()
    for command in ("train", "attack", "search"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "npz:FILE.npz or imagefolder:DIR" in text and "a folder or .npz" not in text
        assert "arrays x and y (or x_train, y_train, x_test, y_test)" in text
        assert "DIR/<class>/<image>" in text and "greyscale images stay 1 channel" in text
        assert "A plain path is not a dataset name: write npz: or imagefolder: before it." in text
