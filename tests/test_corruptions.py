"""The 15 common corruptions (Hendrycks & Dietterich 2019) and their evaluation.

The building blocks are checked against the routines the reference code called (scipy's
gaussian_filter, zoom, map_coordinates and correlate; PIL's BOX resize; colorsys' HSV);
every corruption against the properties a benchmark needs: images stay in [0, 1], change,
are reproducible by seed, and move further from the clean image as the severity grows.
"""

from __future__ import annotations

import colorsys
from itertools import pairwise

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from attack_fixtures import load_digits_tensors, train_cnn
from PIL import Image

from attacks import corruptions as C
from attacks.corruption_eval import (
    CorruptionReport,
    corruption_accuracy,
    corruption_errors,
    evaluate_corruptions,
    parse_subset,
)

# tiny models run fastest on one thread, and the runs stay comparable on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = list(C.CORRUPTIONS)
# Random pixel-noise images and 8x8 digits alone would hide what blurs do to real images:
# digits upsampled to 32x32 (CIFAR's size, where the constants were set) in random colours.


@pytest.fixture(scope="module")
def colour_images() -> torch.Tensor:
    (x, _), _ = load_digits_tensors()
    up = torch.nn.functional.interpolate(x[:64], size=32, mode="bilinear", align_corners=False).clamp(0, 1)
    generator = torch.Generator().manual_seed(0)
    ink, paper = torch.rand(64, 3, 1, 1, generator=generator), 0.5 * torch.rand(64, 3, 1, 1, generator=generator)
    return (up * ink + (1 - up) * paper).clamp(0, 1)


@pytest.fixture(scope="module")
def digit_images() -> torch.Tensor:
    (x, _), _ = load_digits_tensors()
    return x[:64]


def test_registry_holds_the_papers_fifteen_in_four_families():
    assert NAMES == [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "glass_blur",
        "motion_blur",
        "zoom_blur",
        "snow",
        "frost",
        "fog",
        "brightness",
        "contrast",
        "elastic_transform",
        "pixelate",
        "jpeg_compression",
    ]
    families = [info.family for info in C.CORRUPTIONS.values()]
    assert families.count("noise") == 3 and families.count("blur") == 4
    assert families.count("weather") == 3 and families.count("digital") == 5
    assert all(len(info.severities) == 5 for info in C.CORRUPTIONS.values())
    # a few of the CIFAR-10-C constants, as make_cifar_c.py writes them
    assert C.CORRUPTIONS["gaussian_noise"].severities == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert C.CORRUPTIONS["jpeg_compression"].severities == (80, 65, 58, 50, 40)
    assert len(C.CORRUPTIONS["zoom_blur"].severities[0]) == 7  # np.arange(1, 1.06, 0.01) ends at 1.06


@pytest.mark.parametrize("name", NAMES)
def test_each_corruption_changes_images_within_the_unit_range(name, colour_images, digit_images):
    for images, severities in ((colour_images, range(1, 6)), (digit_images, (5,))):
        for severity in severities:
            out = C.corrupt(images, name, severity, seed=0)
            assert out.shape == images.shape and out.dtype == images.dtype
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            assert float((out - images).abs().mean()) > 1e-4, (name, severity, tuple(images.shape))


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_clean_image_and_seeds_reproduce(name, colour_images):
    images = colour_images[:16]
    assert torch.equal(C.corrupt(images, name, 0, seed=3), images)
    first, again = C.corrupt(images, name, 3, seed=1), C.corrupt(images, name, 3, seed=1)
    assert torch.equal(first, again)
    other = C.corrupt(images, name, 3, seed=2)
    if name in ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"):
        assert torch.equal(first, other)  # no randomness in the reference either
    else:
        assert not torch.equal(first, other)


# The reference's constants do not grow monotonically for these, so the mean pixel change
# does not either (measured on the colour digits, severities 1-5): glass blur's sigma falls
# from 0.4 to 0.25 between severities 3 and 4 (0.0208 0.0208 0.0181 0.0301 0.0265);
# elastic transform's affine shift shrinks from 8% to 3% of the side while its local
# displacement grows (0.0284 ... 0.0152); frost trades image weight (1 -> 0.75) for frost
# weight (0.2 -> 0.45), which moves bright pixels less at 4-5 than at 3 (checked below by
# correlation instead).
NOT_MONOTONE_IN_PIXELS = ("glass_blur", "elastic_transform", "frost")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_MONOTONE_IN_PIXELS])
def test_a_larger_severity_moves_images_further(name, colour_images):
    distance = [float((C.corrupt(colour_images, name, s, seed=0) - colour_images).abs().mean()) for s in range(1, 6)]
    assert all(b >= a - 1e-7 for a, b in pairwise(distance)), distance
    assert distance[-1] > distance[0], distance


def test_frost_keeps_less_of_the_image_at_each_severity(colour_images):
    def correlation(a, b):
        a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
        return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())

    kept = [correlation(colour_images, C.corrupt(colour_images, "frost", s, seed=0)) for s in range(1, 6)]
    assert all(b < a for a, b in pairwise(kept)), kept


def test_frost_texture_matches_the_measured_plates():
    texture = C.frost_texture(400, 3, 32, 32, torch.Generator().manual_seed(0), "cpu")
    expected = torch.tensor([p[0] for p in C.FROST_PLATES]).mean(0)
    assert torch.allclose(texture.mean((0, 2, 3)), expected, atol=0.03)
    spread = float(texture.mean(1).flatten(1).std(1).mean())
    assert 0.03 < spread < 0.09  # the plates' 32x32 crops: 0.041-0.093
    grey = C.frost_texture(4, 1, 8, 8, torch.Generator().manual_seed(0), "cpu")
    assert grey.shape == (4, 1, 8, 8)


# ---------------------------------------------------------------- against the reference's routines


def test_blur_filters_and_sampling_equal_scipy():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for sigma in (0.25, 0.4, 1.0):  # skimage.filters.gaussian: mode nearest, truncate 4
        ref = ndi.gaussian_filter(x[1, 2].numpy(), sigma, mode="nearest", truncate=4.0)
        assert np.abs(C._gaussian_blur(x, sigma)[1, 2].numpy() - ref).max() < 1e-12
    ref = ndi.gaussian_filter(x[0, 0].numpy(), 6.4, mode="reflect", truncate=3.0)  # elastic's field
    assert np.abs(C._gaussian_blur(x, 6.4, "symmetric", 3.0)[0, 0].numpy() - ref).max() < 1e-12
    kernel = C._disk_kernel(1.5, 0.1).double()  # cv2.filter2D = correlation, BORDER_REFLECT_101
    ref = ndi.correlate(x[0, 1].numpy(), kernel.numpy(), mode="mirror")
    assert np.abs(C._filter2d(x, kernel, "reflect101")[0, 1].numpy() - ref).max() < 1e-12
    generator = torch.Generator().manual_seed(1)
    rows = torch.rand(1, 32, 32, dtype=torch.float64, generator=generator) * 40 - 4
    cols = torch.rand(1, 32, 32, dtype=torch.float64, generator=generator) * 40 - 4
    ref = ndi.map_coordinates(x[0, 0].numpy(), [rows[0].numpy(), cols[0].numpy()], order=1, mode="reflect")
    assert np.abs(C._bilinear(x[:1, :1], rows, cols, "symmetric")[0, 0].numpy() - ref).max() < 1e-12


def _reference_clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """make_cifar_c.py's clipped_zoom, verbatim but for names."""
    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    img = ndi.zoom(img[top : top + ch, top : top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top : trim_top + h, trim_top : trim_top + h]


@pytest.mark.parametrize("zoom", [1.06, 1.25, 1.75, 2.25])
def test_clipped_zoom_equals_the_reference(zoom):
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = _reference_clipped_zoom(x[0].permute(1, 2, 0).numpy(), zoom)
    assert np.abs(C._clipped_zoom(x, zoom)[0].permute(1, 2, 0).numpy() - ref).max() < 1e-12


def test_pixelate_equals_pil_box_resizing():
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    for factor in C.CORRUPTIONS["pixelate"].severities:
        side = int(32 * factor)
        image = Image.fromarray(x[0, 0].numpy(), mode="F")
        ref = np.asarray(image.resize((side, side), Image.BOX).resize((32, 32), Image.BOX))
        assert np.abs(C.pixelate(x, factor, None)[0, 0].numpy() - ref).max() < 1e-6


def test_brightness_adds_to_the_hsv_value():
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x[0, :, 0, 0] = 0.0  # black: no hue, becomes grey
    out = C.brightness(x, 0.3, None)[0].reshape(3, -1).T
    for (r, g, b), got in zip(x[0].reshape(3, -1).T.tolist(), out.tolist(), strict=True):
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        assert np.allclose(got, colorsys.hsv_to_rgb(h, s, min(v + 0.3, 1.0)), atol=1e-6)


def test_contrast_pulls_each_channel_to_its_own_mean(colour_images):
    out = C.corrupt(colour_images, "contrast", 5)
    means = colour_images.mean((2, 3), keepdim=True)
    assert torch.allclose(out, (colour_images - means) * 0.15 + means, atol=1e-6)


def test_glass_blur_wavefronts_give_the_reference_loop_permutation():
    n, height, width = 3, 9, 7
    generator = torch.Generator().manual_seed(5)
    got = C._glass_shuffle(n, height, width, 1, 2, generator, "cpu")
    generator = torch.Generator().manual_seed(5)
    for image in range(n):
        pixels = list(range(height * width))
        replay = torch.Generator().manual_seed(5)
        shifts = [torch.randint(-1, 1, (n, 2, height * width), generator=replay) for _ in range(2)]
        for shift in shifts:  # the reference's loop: rows then columns, descending, swap with (h+dy, w+dx)
            for h in range(height - 1, 1, -1):
                for w in range(width - 1, 1, -1):
                    dy, dx = int(shift[image, 0, h * width + w]), int(shift[image, 1, h * width + w])
                    a, b = h * width + w, (h + dy) * width + (w + dx)
                    pixels[a], pixels[b] = pixels[b], pixels[a]
        assert got[image].tolist() == pixels
    assert not torch.equal(got[0], torch.arange(height * width))


def test_motion_blur_kernel_is_imagemagicks():
    kernel = C.motion_blur_kernel(6, 1.0)
    assert len(kernel) == 13  # 2 * ceil(radius) + 1
    expected = torch.exp(-(torch.arange(13.0, dtype=torch.float64) ** 2) / 2)
    assert torch.allclose(kernel, expected / expected.sum())
    # at angle 0 a pixel averages itself and the 12 to its right (one-sided kernel): left of a
    # vertical edge, the pixel next to it gets every weight but its own
    edge = torch.zeros(1, 1, 5, 12)
    edge[..., 6:] = 1.0
    out = C._motion_blur(edge, 6, 1.0, torch.zeros(1))
    assert torch.all(out[..., 6:] == 1.0)
    assert float(out[0, 0, 0, 5]) == pytest.approx(1 - float(kernel[0]), abs=1e-6)
    assert float(out[0, 0, 0, 0]) == pytest.approx(float(kernel[6:].sum()), abs=1e-6)


def test_jpeg_is_a_real_round_trip(colour_images, digit_images):
    out = C.corrupt(colour_images, "jpeg_compression", 5)
    assert torch.all(out * 255 == (out * 255).round())  # decoded 8-bit pixels
    grey = C.corrupt(digit_images, "jpeg_compression", 1)
    assert grey.shape == digit_images.shape


def test_bad_names_and_severities_are_refused():
    with pytest.raises(C.CorruptionConfigError, match="unknown corruption 'rain'"):
        C.parse_corruptions("fog,rain")
    with pytest.raises(C.CorruptionConfigError, match="outside 1-5"):
        C.parse_severities("1,6")
    with pytest.raises(C.CorruptionConfigError, match="0 to 5"):
        C.corrupt(torch.zeros(1, 1, 8, 8), "fog", 7)
    assert C.parse_corruptions("jpeg, motion ,gaussian") == ["gaussian_noise", "motion_blur", "jpeg_compression"]
    assert C.parse_corruptions("all") == NAMES
    assert C.parse_severities("2-4,1") == [1, 2, 3, 4]
    assert parse_subset("fog:3,jpeg:5") == [("fog", 3), ("jpeg_compression", 5)]


# ---------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def digits_report():
    model = train_cnn()
    _, (x, y) = load_digits_tensors()
    return model, x, y, evaluate_corruptions(model, x, y, "all", seed=0, batch_size=200)


def test_a_trained_models_accuracy_falls_with_severity(digits_report):
    _, _, _, report = digits_report
    assert report.clean_accuracy > 0.9
    by_severity = [report.severity_mean(s) for s in range(1, 6)]
    assert all(b < a for a, b in pairwise(by_severity)), by_severity
    assert by_severity[0] < report.clean_accuracy
    assert report.mean_accuracy == pytest.approx(sum(by_severity) / 5)
    assert report.relative_accuracy == pytest.approx(report.mean_accuracy / report.clean_accuracy)
    assert len(report.pairs()) == 75 and report.images_per_second > 0


def test_evaluation_is_deterministic_and_the_search_subset_agrees(digits_report):
    model, x, y, report = digits_report
    again = evaluate_corruptions(model, x, y, "fog,jpeg", [3], seed=0, batch_size=200)
    assert again.accuracy["fog"][3] == report.accuracy["fog"][3]
    assert again.accuracy["jpeg_compression"][3] == report.accuracy["jpeg_compression"][3]
    subset = corruption_accuracy(model, x, y, ["fog:3", "jpeg:3"], seed=0, batch_size=200)
    assert subset == pytest.approx((report.accuracy["fog"][3] + report.accuracy["jpeg_compression"][3]) / 2)


def test_corruption_errors_follow_the_papers_definitions(digits_report):
    report = CorruptionReport(
        n=10,
        seed=0,
        clean_accuracy=0.9,
        corruptions=["fog", "contrast"],
        severities=[1, 2],
        accuracy={"fog": {1: 0.8, 2: 0.6}, "contrast": {1: 0.9, 2: 0.9}},
    )
    base = CorruptionReport(
        n=10,
        seed=0,
        clean_accuracy=0.8,
        corruptions=["fog", "contrast"],
        severities=[1, 2],
        accuracy={"fog": {1: 0.6, 2: 0.4}, "contrast": {1: 0.8, 2: 0.8}},
    )
    errors = corruption_errors(report, base, "base")
    assert errors["ce"]["fog"] == pytest.approx((0.2 + 0.4) / (0.4 + 0.6))
    assert errors["ce"]["contrast"] == pytest.approx(0.2 / 0.4)
    assert errors["mce"] == pytest.approx((0.6 + 0.5) / 2)
    assert errors["relative_ce"]["fog"] == pytest.approx((0.1 + 0.3) / (0.2 + 0.4))
    assert errors["relative_ce"]["contrast"] is None  # the baseline loses nothing to it
    assert errors["relative_mce"] == pytest.approx(4 / 6)
    assert errors["baseline"] == "base"
    _, _, _, real = digits_report
    own = corruption_errors(real, real, "itself")
    assert own["mce"] == pytest.approx(1.0)
    assert CorruptionReport.from_dict(real.to_dict()).accuracy == real.accuracy


def test_motion_blur_reads_imagemagicks_taps_at_any_angle():
    """Against the definition, pixel by pixel: tap i of (row, col) reads the edge-clamped pixel at
    (row + ceil(i sin a - 0.5), col + ceil(i cos a - 0.5))."""
    import math

    generator = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2, 7, 9, generator=generator, dtype=torch.float64)
    angles = torch.tensor([-135.0, 17.0, 60.0], dtype=torch.float64)
    kernel = C.motion_blur_kernel(4, 1.5)
    got = C._motion_blur(x, 4, 1.5, angles)
    for n, angle in enumerate(angles.tolist()):
        a = math.radians(angle)
        for row in range(7):
            for col in range(9):
                value = sum(
                    float(kernel[i])
                    * x[
                        n,
                        :,
                        min(max(row + math.ceil(i * math.sin(a) - 0.5), 0), 6),
                        min(max(col + math.ceil(i * math.cos(a) - 0.5), 0), 8),
                    ]
                    for i in range(len(kernel))
                )
                assert torch.allclose(got[n, :, row, col], value, atol=1e-9)
