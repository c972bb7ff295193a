"""Common corruptions (Hendrycks & Dietterich 2019), batched on tensors.

"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations"
(ICLR 2019) defines 15 corruptions in four families, each at five severities:
noise (gaussian, shot, impulse), blur (defocus, glass, motion, zoom), weather (snow,
frost, fog) and digital (brightness, contrast, elastic transform, pixelate, JPEG). The
constants here are those its authors used to make CIFAR-10-C, taken from
``ImageNet-C/create_c/make_cifar_c.py`` of github.com/hendrycks/robustness (commit
8190fe329f5f072a06e3a2aea02bb5dda69aed9f); each function cites its line of them.

The reference code corrupts one PIL image at a time with numpy, scikit-image, OpenCV
and ImageMagick. Here every corruption takes a batch ``(N, C, H, W)`` of float images
in [0, 1] (C = 1 or 3, any size; greyscale images stay greyscale), runs on the batch's
device, draws its randomness from a ``torch.Generator`` (same seed, same device, same
batch: the same images) and returns images in [0, 1]. Where the reference used a
library routine, the same operation is written out:

- scikit-image's ``gaussian`` (scipy ``gaussian_filter``: truncate 4, edge mode
  ``nearest``), OpenCV's ``filter2D``/``GaussianBlur`` (``BORDER_REFLECT_101``) and
  scipy's ``zoom``/``map_coordinates`` (order 1) exactly, as separable kernels and
  interpolation matrices;
- ImageMagick's ``MotionBlurImage`` (kernel width ``2 * ceil(radius) + 1``, a one-sided
  Gaussian of ``sigma`` along the angle, edge pixels repeated);
- PIL's ``BOX`` resize as its resampling matrix; OpenCV's ``warpAffine`` as bilinear
  sampling (OpenCV rounds its weights to 1/32, this does not);
- JPEG through ``torchvision.io.encode_jpeg``/``decode_jpeg`` (libjpeg on the CPU,
  nvJPEG on CUDA) at the reference's qualities;
- glass blur's pixel shuffling, a sequential loop of swaps in the reference, as
  wavefronts of non-overlapping swaps that give the same permutation (see
  :func:`_glass_wavefronts`);
- **frost** overlays crops of six photographs of frost in the reference. They are not
  shipped here: a seeded procedural frost texture (ice needles on a smooth plasma
  fractal) stands in, tinted and scaled to the colour and contrast measured on 32x32
  crops of the reference's frost1-frost5 (the ones it draws from) at its 0.2 scale
  (:data:`FROST_PLATES`). Frost numbers are therefore close to, not equal to, CIFAR-10-C's.

Pixel-sized constants (blur radii, motion lengths, glass shifts) are in pixels, as in
the reference; elastic transform's are fractions of the image side, as in the reference
(``IMSIZE * ...``). On images smaller than 32x32 the pixel-sized corruptions are thus
relatively stronger. Severity 0 is the clean image. The reference stores its images as
uint8; here results stay float (only JPEG and glass blur's intermediate step quantise,
as the reference does inside them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CORRUPTIONS",
    "CorruptionConfigError",
    "CorruptionInfo",
    "SEVERITIES",
    "corrupt",
    "corruption_generator",
    "list_corruptions",
    "parse_corruptions",
    "parse_severities",
]

SEVERITIES = (1, 2, 3, 4, 5)
Tensor = torch.Tensor
Device = torch.device | str


class CorruptionConfigError(ValueError):
    """An unknown corruption name or a severity outside 0-5."""


# --------------------------------------------------------------------------- building blocks


def _border_index(index: Tensor, size: int, mode: str) -> Tensor:
    """Map integer positions outside ``[0, size)`` back inside.

    ``reflect101``: OpenCV's BORDER_REFLECT_101 / torch's "reflect" (d c b | a b c d | c b a);
    ``symmetric``: scipy's "reflect" (c b a | a b c d | d c b); ``edge``: repeat the edge.
    Any distance from the image works (torch's own padding needs pad < size).
    """
    if mode == "edge" or size == 1:
        return index.clamp(0, size - 1)
    if mode == "reflect101":
        period = 2 * (size - 1)
        index = index.remainder(period)
        return torch.where(index >= size, period - index, index)
    if mode == "symmetric":
        period = 2 * size
        index = index.remainder(period)
        return torch.where(index >= size, period - 1 - index, index)
    raise ValueError(f"unknown border mode {mode!r}")


def _pad(x: Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> Tensor:
    """Pad the last two dimensions with a border mode of :func:`_border_index`."""
    height, width = x.shape[-2:]
    rows = _border_index(torch.arange(-top, height + bottom, device=x.device), height, mode)
    cols = _border_index(torch.arange(-left, width + right, device=x.device), width, mode)
    return x.index_select(-2, rows).index_select(-1, cols)


def _filter2d(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlate every channel with one 2-D kernel (odd sides), as OpenCV's filter2D does."""
    kh, kw = kernel.shape
    channels = x.shape[1]
    padded = _pad(x, kh // 2, kh // 2, kw // 2, kw // 2, mode)
    weight = kernel.to(x).expand(channels, 1, kh, kw)
    return F.conv2d(padded, weight, groups=channels)


def _gaussian_kernel1d(sigma: float, truncate: float) -> Tensor:
    """scipy.ndimage's Gaussian: radius ``int(truncate * sigma + 0.5)``, weights summing to one."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * offsets**2 / sigma**2)
    return weights / weights.sum()


def _gaussian_blur(x: Tensor, sigma: float, mode: str = "edge", truncate: float = 4.0) -> Tensor:
    """scikit-image ``gaussian`` over the spatial axes (scipy skips a zero sigma, so does this)."""
    if sigma <= 1e-15:
        return x
    kernel = _gaussian_kernel1d(sigma, truncate)
    x = _filter2d(x, kernel.view(-1, 1), mode)
    return _filter2d(x, kernel.view(1, -1), mode)


def _gather_pixels(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``x[n, :, rows[n, ...], cols[n, ...]]`` for integer position tensors of shape (N, ...)."""
    n, channels, height, width = x.shape
    flat = (rows * width + cols).reshape(n, 1, -1).expand(n, channels, -1)
    return x.reshape(n, channels, height * width).gather(2, flat).reshape(n, channels, *rows.shape[1:])


def _bilinear(x: Tensor, rows: Tensor, cols: Tensor, mode: str) -> Tensor:
    """Sample ``x`` at fractional positions (N, H', W') with bilinear weights and a border mode."""
    height, width = x.shape[-2:]
    r0, c0 = rows.floor(), cols.floor()
    wr, wc = (rows - r0).unsqueeze(1), (cols - c0).unsqueeze(1)
    r0, c0 = r0.long(), c0.long()
    r = [_border_index(r0, height, mode), _border_index(r0 + 1, height, mode)]
    c = [_border_index(c0, width, mode), _border_index(c0 + 1, width, mode)]
    top = _gather_pixels(x, r[0], c[0]) * (1 - wc) + _gather_pixels(x, r[0], c[1]) * wc
    bottom = _gather_pixels(x, r[1], c[0]) * (1 - wc) + _gather_pixels(x, r[1], c[1]) * wc
    return top * (1 - wr) + bottom * wr


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, device: Device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def _grey(x: Tensor) -> Tensor:
    """Luma as OpenCV's RGB2GRAY weighs it (0.299, 0.587, 0.114); greyscale images as they are."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def motion_blur_kernel(radius: float, sigma: float) -> Tensor:
    """ImageMagick's motion-blur weights: width ``2 * ceil(radius) + 1``, ``exp(-i^2 / 2 sigma^2)``
    for tap i = 0 .. width-1 (one-sided), normalised (MagickCore ``GetMotionBlurKernel``)."""
    width = int(2 * math.ceil(radius) + 1)
    taps = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    return weights / weights.sum()


def _motion_blur(x: Tensor, radius: float, sigma: float, angles_deg: Tensor) -> Tensor:
    """ImageMagick ``MotionBlurImage`` with one angle per image: tap i reads the pixel at offset
    ``(ceil(i cos a - 0.5), ceil(i sin a - 0.5))`` (columns, rows), edge pixels repeated.

    Each tap is one whole-pixel shift per image, read with ``grid_sample`` (nearest, border):
    exact, and several times faster on a CPU than gathering every tap's pixels at once.
    """
    kernel = motion_blur_kernel(radius, sigma).to(x)
    n, _, height, width = x.shape
    taps = torch.arange(len(kernel), device=x.device, dtype=torch.float64)
    angles = torch.deg2rad(angles_deg.to(torch.float64)).view(n, 1)
    col_offset = torch.ceil(taps * torch.cos(angles) - 0.5).to(x.dtype)  # (N, taps)
    row_offset = torch.ceil(taps * torch.sin(angles) - 0.5).to(x.dtype)
    rows = torch.arange(height, device=x.device, dtype=x.dtype).view(1, height, 1)
    cols = torch.arange(width, device=x.device, dtype=x.dtype).view(1, 1, width)
    out = torch.zeros_like(x)
    for tap, weight in enumerate(kernel):
        # pixel positions, clamped to the edge, in grid_sample's [-1, 1] (align_corners: pixel centres)
        grid_rows = (rows + row_offset[:, tap].view(n, 1, 1)).clamp(0, height - 1) * (2 / max(height - 1, 1)) - 1
        grid_cols = (cols + col_offset[:, tap].view(n, 1, 1)).clamp(0, width - 1) * (2 / max(width - 1, 1)) - 1
        grid = torch.stack([grid_cols.expand(n, height, width), grid_rows.expand(n, height, width)], -1)
        out += weight * F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=True)
    return out


def _wibbled_mean(array: Tensor, wibble: float, generator: torch.Generator, device: Device) -> Tensor:
    """The reference's ``wibbledmean``: the mean of four neighbours plus ``wibble * U(-wibble, wibble)``."""
    noise = _uniform(array.shape, -wibble, wibble, generator, device).to(torch.float64)
    return array / 4 + wibble * noise


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, generator: torch.Generator, device: Device) -> Tensor:
    """The reference's diamond-square height map (``plasma_fractal``), ``n`` at once, in [0, 1].

    ``mapsize`` must be a power of two; the random wibble is ``wibble * U(-wibble, wibble)``
    with ``wibble`` starting at 100 and divided by ``wibbledecay`` per level, as in the reference.
    """
    assert mapsize & (mapsize - 1) == 0, "mapsize must be a power of two"
    maparray = torch.zeros(n, mapsize, mapsize, device=device, dtype=torch.float64)
    stepsize, wibble = mapsize, 100.0

    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[:, 0::stepsize, 0::stepsize]
        squares = corners + corners.roll(-1, dims=1)
        squares = squares + squares.roll(-1, dims=2)
        maparray[:, half::stepsize, half::stepsize] = _wibbled_mean(squares, wibble, generator, device)
        centres = maparray[:, half::stepsize, half::stepsize]
        corners = maparray[:, 0::stepsize, 0::stepsize]
        left = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        maparray[:, 0::stepsize, half::stepsize] = _wibbled_mean(left, wibble, generator, device)
        top = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        maparray[:, half::stepsize, 0::stepsize] = _wibbled_mean(top, wibble, generator, device)
        stepsize = half
        wibble /= wibbledecay
    flat = maparray.flatten(1)
    flat = flat - flat.min(1, keepdim=True).values
    return (flat / flat.max(1, keepdim=True).values).view(n, mapsize, mapsize)


def _plasma_for(x: Tensor, wibbledecay: float, generator: torch.Generator) -> Tensor:
    """A plasma map per image of ``x``, cropped top-left to its size (the reference uses 32x32)."""
    n, _, height, width = x.shape
    mapsize = max(32, 1 << (max(height, width) - 1).bit_length())
    return plasma_fractal(n, mapsize, wibbledecay, generator, x.device)[:, :height, :width].to(x).unsqueeze(1)


@functools.lru_cache(maxsize=256)
def _zoom_matrix(size: int, zoom: float) -> Tensor:
    """1-D matrix of the reference's ``clipped_zoom``: crop ``ceil(size / zoom)`` around the
    centre, scipy ``zoom(order=1)`` (corner-aligned, output ``round(crop * zoom)``), trim to ``size``."""
    crop = int(np.ceil(size / zoom))
    top = (size - crop) // 2
    out = int(round(crop * zoom))
    trim = (out - size) // 2
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for row in range(size):
        position = top + ((row + trim) * (crop - 1) / (out - 1) if out > 1 else 0.0)
        low = min(int(math.floor(position)), size - 1)
        weight = position - low
        matrix[row, low] += 1 - weight
        if weight > 0:
            matrix[row, min(low + 1, size - 1)] += weight
    return matrix


def _clipped_zoom(x: Tensor, zoom: float) -> Tensor:
    height, width = x.shape[-2:]
    rows, cols = _zoom_matrix(height, zoom).to(x), _zoom_matrix(width, zoom).to(x)
    return rows @ x @ cols.T


@functools.lru_cache(maxsize=256)
def _box_resize_matrix(in_size: int, out_size: int) -> Tensor:
    """PIL's ``BOX`` resampling as a matrix (Pillow ``precompute_coeffs`` with its box filter)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        for index in range(low, high):
            offset = (index - centre + 0.5) / filterscale
            matrix[out, index] = 1.0 if -0.5 < offset <= 0.5 else 0.0
        total = matrix[out].sum()
        if total > 0:
            matrix[out] /= total
    return matrix


def _box_resize(x: Tensor, height: int, width: int) -> Tensor:
    rows = _box_resize_matrix(x.shape[-2], height).to(x)
    cols = _box_resize_matrix(x.shape[-1], width).to(x)
    return rows @ x @ cols.T


@functools.lru_cache(maxsize=64)
def _glass_wavefronts(height: int, width: int, delta: int) -> list[Tensor]:
    """The reference's swap loop (rows ``h = H-delta .. delta+1`` descending, within each row
    columns ``w = W-delta .. delta+1`` descending) as groups of swaps that touch disjoint pixels.

    With ``delta = 1`` (every CIFAR-10-C severity) a swap at (h, w) touches (h, w) and one of
    (h-1, w), (h, w-1), (h-1, w-1). Giving it time ``2 * (H-delta-h) + (W-delta-w)`` orders
    every pair of swaps that share a pixel as the loop does (the next one in its row comes 1
    later, the three of the next row that can touch its pixels 1-3 later), and swaps of equal
    time share none, so running the groups in time order gives the loop's permutation.
    Returns the flat pixel indices ``h * W + w`` of each group.
    """
    if delta != 1:
        raise ValueError("glass blur's wavefronts are derived for max_delta = 1, the reference's only value")
    groups: dict[int, list[int]] = {}
    for h in range(height - delta, delta, -1):
        for w in range(width - delta, delta, -1):
            groups.setdefault(2 * (height - delta - h) + (width - delta - w), []).append(h * width + w)
    return [torch.tensor(groups[t]) for t in sorted(groups)]


def _glass_shuffle(
    n: int, height: int, width: int, delta: int, iterations: int, generator: torch.Generator, device: Device
) -> Tensor:
    """For each image, the source pixel of every position after the reference's local swaps."""
    permutation = torch.arange(height * width, device=device).repeat(n, 1)
    for _ in range(iterations):
        # one (dy, dx) per position and image, drawn from {-delta, ..., delta - 1} (numpy's randint)
        shifts = torch.randint(-delta, delta, (n, 2, height * width), generator=generator, device=device)
        partner_offset = shifts[:, 0] * width + shifts[:, 1]
        for group in _glass_wavefronts(height, width, delta):
            here = group.to(device).expand(n, -1)
            there = here + partner_offset[:, group.to(device)]
            mine, theirs = permutation.gather(1, here), permutation.gather(1, there)
            permutation.scatter_(1, here, theirs)
            permutation.scatter_(1, there, mine)
    return permutation


# --------------------------------------------------------------------------- the corruptions
# Each takes (images, the severity's constants, generator) and returns images in [0, 1].


def gaussian_noise(x: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """``x + N(0, c)``; c = [0.04, 0.06, .08, .09, .10]."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + scale * noise).clamp(0, 1)


def shot_noise(x: Tensor, photons: float, generator: torch.Generator) -> Tensor:
    """``Poisson(x * c) / c``; c = [500, 250, 100, 75, 50]."""
    return (torch.poisson(x * photons, generator=generator) / photons).clamp(0, 1)


def impulse_noise(x: Tensor, amount: float, generator: torch.Generator) -> Tensor:
    """Salt and pepper (scikit-image ``random_noise(mode='s&p')``, half salt): each value is replaced
    with probability c = [.01, .02, .03, .05, .07]."""
    flipped = torch.rand(x.shape, generator=generator, device=x.device) < amount
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(flipped, salt.to(x.dtype), x)


def defocus_blur(x: Tensor, params: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Filter with an aliased disk of radius c[0] smoothed by a 3x3 Gaussian of sigma c[1]
    (the reference's ``disk``); c = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]."""
    radius, alias_blur = params
    return _filter2d(x, _disk_kernel(radius, alias_blur), "reflect101").clamp(0, 1)


@functools.lru_cache(maxsize=32)
def _disk_kernel(radius: float, alias_blur: float) -> Tensor:
    """The reference's ``disk``: ``X^2 + Y^2 <= r^2`` on a 17x17 grid (radius <= 8), normalised,
    then OpenCV ``GaussianBlur`` with a 3x3 kernel; cropped to its non-zero support."""
    half = 8 if radius <= 8 else int(math.ceil(radius))
    size = 3 if radius <= 8 else 5
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((grid.view(-1, 1) ** 2 + grid.view(1, -1) ** 2) <= radius**2).to(torch.float64)
    disk = disk / disk.sum()
    # OpenCV's Gaussian kernel for an odd size and sigma > 0: exp(-(i - (size-1)/2)^2 / (2 sigma^2)).
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    gauss = torch.exp(-(offsets**2) / (2 * alias_blur**2))
    gauss = gauss / gauss.sum()
    smoothed = _filter2d(disk.view(1, 1, *disk.shape), gauss.view(-1, 1) * gauss.view(1, -1), "reflect101")[0, 0]
    support = smoothed.abs() > 0
    rows, cols = support.any(1).nonzero().squeeze(1), support.any(0).nonzero().squeeze(1)
    extent = int(max(half - rows.min(), rows.max() - half, half - cols.min(), cols.max() - half))
    return smoothed[half - extent : half + extent + 1, half - extent : half + extent + 1].float()


def glass_blur(x: Tensor, params: tuple[float, int, int], generator: torch.Generator) -> Tensor:
    """Gaussian blur (sigma c[0]), quantise to uint8 (floor, as ``np.uint8``), swap each pixel
    with a neighbour up to c[1] away, c[2] times over the image, blur again;
    c = [(0.05,1,1), (0.25,1,1), (0.4,1,1), (0.25,1,2), (0.4,1,2)]."""
    sigma, delta, iterations = params
    n, channels, height, width = x.shape
    blurred = torch.floor(_gaussian_blur(x, sigma) * 255) / 255
    permutation = _glass_shuffle(n, height, width, int(delta), int(iterations), generator, x.device)
    shuffled = blurred.reshape(n, channels, -1).gather(2, permutation.unsqueeze(1).expand(n, channels, -1))
    return _gaussian_blur(shuffled.view_as(x), sigma).clamp(0, 1)


def motion_blur(x: Tensor, params: tuple[float, float], generator: torch.Generator) -> Tensor:
    """ImageMagick motion blur of radius c[0] and sigma c[1] at an angle uniform in [-45, 45]
    degrees; c = [(6,1), (6,1.5), (6,2), (8,2), (9,2.5)]."""
    radius, sigma = params
    angles = _uniform((len(x),), -45.0, 45.0, generator, x.device)
    return _motion_blur(x, radius, sigma, angles).clamp(0, 1)


# np.arange(1, 1 + c, 0.01) exactly as the reference writes them (floating point decides the
# last factor: the first list holds 7 factors, 1.00 to 1.06).
_ZOOMS = [tuple(float(z) for z in np.arange(1, top, 0.01)) for top in (1.06, 1.11, 1.16, 1.21, 1.26)]


def zoom_blur(x: Tensor, zooms: tuple[float, ...], generator: torch.Generator) -> Tensor:
    """The mean of the image and its centre zoomed by each factor of
    c = [arange(1, 1.06, 0.01), arange(1, 1.11, 0.01), arange(1, 1.16, 0.01),
    arange(1, 1.21, 0.01), arange(1, 1.26, 0.01)] (no randomness)."""
    out = x.clone()
    for zoom in zooms:
        out += _clipped_zoom(x, zoom)
    return (out / (len(zooms) + 1)).clamp(0, 1)


def snow(x: Tensor, params: tuple[float, ...], generator: torch.Generator) -> Tensor:
    """Snow flakes: N(c[0], c[1]) per pixel, zoomed by c[2], zero below c[3], motion-blurred
    (radius c[4], sigma c[5], angle in [-135, -45]), added twice (once turned 180 degrees) to
    the image brightened towards ``1.5 * grey + 0.5`` with weight 1 - c[6];
    c = [(0.1,0.2,1,0.6,8,3,0.95), (0.1,0.2,1,0.5,10,4,0.9), (0.15,0.3,1.75,0.55,10,4,0.9),
    (0.25,0.3,2.25,0.6,12,6,0.85), (0.3,0.3,1.25,0.65,14,12,0.8)]."""
    loc, scale, zoom, threshold, radius, sigma, blend = params
    n, _, height, width = x.shape
    layer = loc + scale * torch.randn((n, 1, height, width), generator=generator, device=x.device, dtype=x.dtype)
    layer = _clipped_zoom(layer, zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = torch.floor(layer.clamp(0, 1) * 255) / 255  # the reference saves it as an 8-bit PNG
    angles = _uniform((n,), -135.0, -45.0, generator, x.device)
    layer = torch.round(_motion_blur(layer, radius, sigma, angles) * 255) / 255
    brightened = torch.maximum(x, _grey(x) * 1.5 + 0.5)
    x = blend * x + (1 - blend) * brightened
    return (x + layer + layer.flip(-2, -1)).clamp(0, 1)


# Mean RGB colour and standard deviation (of the grey level, within a 32x32 crop) of the
# reference's frost1.png ... frost5.jpg, resized by 0.2 as it does (measured here once).
FROST_PLATES = (
    ((0.305, 0.585, 0.650), 0.041),
    ((0.787, 0.805, 0.841), 0.047),
    ((0.787, 0.805, 0.841), 0.047),
    ((0.540, 0.599, 0.648), 0.059),
    ((0.441, 0.484, 0.528), 0.093),
)


def frost_texture(n: int, channels: int, height: int, width: int, generator: torch.Generator, device: Device) -> Tensor:
    """A seeded procedural stand-in for the reference's frost photographs, in [0, 1].

    Ice needles (sparse seeds motion-blurred at a random angle, both ways) over a smooth
    plasma fractal, standardised, then given the colour and contrast of one of
    :data:`FROST_PLATES`, chosen uniformly per image as the reference picks one of its
    five files.
    """
    seeds = (torch.rand((n, 1, height, width), generator=generator, device=device) < 0.08).float()
    angles = _uniform((n,), -180.0, 180.0, generator, device)
    needles = _motion_blur(seeds, 4, 2.0, angles) + _motion_blur(seeds, 4, 2.0, angles + 180)
    smooth = plasma_fractal(n, max(32, 1 << (max(height, width) - 1).bit_length()), 2.0, generator, device)
    structure = needles + 0.5 * smooth[:, :height, :width].float().unsqueeze(1)
    flat = structure.flatten(1)
    structure = ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-6)).view_as(structure)
    plate = torch.randint(0, len(FROST_PLATES), (n,), generator=generator, device=device)
    colours = torch.tensor([p[0] for p in FROST_PLATES], device=device)[plate]  # (N, 3)
    spread = torch.tensor([p[1] for p in FROST_PLATES], device=device)[plate].view(n, 1, 1, 1)
    if channels == 3:
        colour = colours.view(n, 3, 1, 1)
    else:
        colour = (colours @ torch.tensor([0.299, 0.587, 0.114], device=device)).view(n, 1, 1, 1)
    return (colour + spread * structure).clamp(0, 1).expand(n, channels, height, width)


def frost(x: Tensor, params: tuple[float, float], generator: torch.Generator) -> Tensor:
    """``c[0] * x + c[1] * frost``; c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)].
    The frost is :func:`frost_texture`, not the reference's photographs."""
    image_weight, frost_weight = params
    n, channels, height, width = x.shape
    texture = frost_texture(n, channels, height, width, generator, x.device).to(x)
    return (image_weight * x + frost_weight * texture).clamp(0, 1)


def fog(x: Tensor, params: tuple[float, float], generator: torch.Generator) -> Tensor:
    """``(x + c[0] * plasma) * max / (max + c[0])`` with a plasma fractal of wibble decay c[1];
    c = [(.2,3), (.5,3), (0.75,2.5), (1,2), (1.5,1.75)]."""
    strength, decay = params
    peak = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    fogged = x + strength * _plasma_for(x, decay, generator)
    return (fogged * peak / (peak + strength)).clamp(0, 1)


def brightness(x: Tensor, shift: float, generator: torch.Generator) -> Tensor:
    """Add c = [.05, .1, .15, .2, .3] to the HSV value, clipped at 1 (hue and saturation kept:
    the colour is scaled by V'/V; black becomes grey V')."""
    value = x.amax(1, keepdim=True)
    lifted = (value + shift).clamp(max=1)
    scaled = x * lifted / value.clamp_min(1e-12)
    return torch.where(value > 0, scaled, lifted.expand_as(x)).clamp(0, 1)


def contrast(x: Tensor, factor: float, generator: torch.Generator) -> Tensor:
    """Pull each channel towards its own mean: ``(x - mean) * c + mean``; c = [.75, .5, .4, .3, 0.15]."""
    mean = x.mean((-2, -1), keepdim=True)
    return ((x - mean) * factor + mean).clamp(0, 1)


def elastic_transform(x: Tensor, params: tuple[float, float, float], generator: torch.Generator) -> Tensor:
    """A random affine map (three points moved by up to c[2], OpenCV warpAffine, reflect-101
    borders) then a smooth displacement field (uniform noise, Gaussian of sigma c[1], truncate
    3, times c[0]; scipy map_coordinates, order 1); with IMSIZE the image side,
    c = [(IMSIZE*0, IMSIZE*0, IMSIZE*0.08), (IMSIZE*0.05, IMSIZE*0.2, IMSIZE*0.07),
    (IMSIZE*0.08, IMSIZE*0.06, IMSIZE*0.06), (IMSIZE*0.1, IMSIZE*0.04, IMSIZE*0.05),
    (IMSIZE*0.1, IMSIZE*0.03, IMSIZE*0.03)]."""
    n, _, height, width = x.shape
    side = min(height, width)
    alpha, sigma, shift = (side * p for p in params)
    # The affine map sending three points around the centre to their moved copies (x, y order).
    cx, cy, square = float(width // 2), float(height // 2), float(side // 3)
    source = torch.tensor(
        [[cx + square, cy + square], [cx + square, cy - square], [cx - square, cy - square]],
        device=x.device,
        dtype=torch.float64,
    )
    moved = source + _uniform((n, 3, 2), -shift, shift, generator, x.device).to(torch.float64)
    ones = torch.ones(3, 1, device=x.device, dtype=torch.float64)
    forward = torch.linalg.solve(torch.cat([source, ones], 1).expand(n, 3, 3), moved).transpose(1, 2)  # (N, 2, 3)
    square_forward = torch.cat(
        [forward, torch.tensor([0.0, 0.0, 1.0], device=x.device, dtype=torch.float64).expand(n, 1, 3)], 1
    )
    inverse = torch.linalg.inv(square_forward)[:, :2]  # warpAffine samples the source at M^-1 (x, y)
    rows = torch.arange(height, device=x.device, dtype=torch.float64).view(1, height, 1).expand(n, height, width)
    cols = torch.arange(width, device=x.device, dtype=torch.float64).view(1, 1, width).expand(n, height, width)
    src_cols = inverse[:, 0, 0, None, None] * cols + inverse[:, 0, 1, None, None] * rows + inverse[:, 0, 2, None, None]
    src_rows = inverse[:, 1, 0, None, None] * cols + inverse[:, 1, 1, None, None] * rows + inverse[:, 1, 2, None, None]
    warped = _bilinear(x, src_rows.to(x.dtype), src_cols.to(x.dtype), "reflect101")
    field = _uniform((n, 2, height, width), -1.0, 1.0, generator, x.device).to(x.dtype)
    field = _gaussian_blur(field, sigma, mode="symmetric", truncate=3.0) * alpha
    out = _bilinear(warped, rows.to(x.dtype) + field[:, 1], cols.to(x.dtype) + field[:, 0], "symmetric")
    return out.clamp(0, 1)


def pixelate(x: Tensor, factor: float, generator: torch.Generator) -> Tensor:
    """PIL ``BOX`` resize to ``int(side * c)`` and back; c = [0.95, 0.9, 0.85, 0.75, 0.65]."""
    height, width = x.shape[-2:]
    small = _box_resize(x, max(int(height * factor), 1), max(int(width * factor), 1))
    return _box_resize(small, height, width).clamp(0, 1)


def jpeg_compression(x: Tensor, quality: int, generator: torch.Generator) -> Tensor:
    """Encode as JPEG at quality c = [80, 65, 58, 50, 40] and decode (libjpeg's defaults, as PIL's:
    4:2:0 chroma subsampling for colour)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    pixels = (x * 255).round().clamp(0, 255).to(torch.uint8)
    # nvJPEG encodes CUDA tensors into CUDA tensors; the decoder reads bytes from the CPU
    encoded = [data.cpu() for data in encode_jpeg(list(pixels), quality=int(quality))]
    decoded = decode_jpeg(encoded, device=x.device)
    return torch.stack(decoded).to(x.dtype).div(255).view_as(x)


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class CorruptionInfo:
    """A corruption: its family, function and the reference's five severity constants."""

    name: str
    family: str
    function: Callable[[Tensor, Any, torch.Generator], Tensor]
    severities: tuple[Any, ...]

    @property
    def doc(self) -> str:
        return (self.function.__doc__ or "").strip().splitlines()[0]


def _info(
    family: str, function: Callable[[Tensor, Any, torch.Generator], Tensor], severities: list[Any]
) -> CorruptionInfo:
    return CorruptionInfo(function.__name__, family, function, tuple(severities))


# In the paper's order (its Figure 1 and every CIFAR-10-C table).
CORRUPTIONS: dict[str, CorruptionInfo] = {
    info.name: info
    for info in (
        _info("noise", gaussian_noise, [0.04, 0.06, 0.08, 0.09, 0.10]),
        _info("noise", shot_noise, [500, 250, 100, 75, 50]),
        _info("noise", impulse_noise, [0.01, 0.02, 0.03, 0.05, 0.07]),
        _info("blur", defocus_blur, [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]),
        _info("blur", glass_blur, [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)]),
        _info("blur", motion_blur, [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)]),
        _info("blur", zoom_blur, _ZOOMS),
        _info(
            "weather",
            snow,
            [
                (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
                (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
            ],
        ),
        _info("weather", frost, [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)]),
        _info("weather", fog, [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]),
        _info("digital", brightness, [0.05, 0.1, 0.15, 0.2, 0.3]),
        _info("digital", contrast, [0.75, 0.5, 0.4, 0.3, 0.15]),
        _info(
            "digital",
            elastic_transform,
            [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
        ),
        _info("digital", pixelate, [0.95, 0.9, 0.85, 0.75, 0.65]),
        _info("digital", jpeg_compression, [80, 65, 58, 50, 40]),
    )
}
ALIASES = {
    "gaussian": "gaussian_noise",
    "shot": "shot_noise",
    "impulse": "impulse_noise",
    "defocus": "defocus_blur",
    "glass": "glass_blur",
    "motion": "motion_blur",
    "zoom": "zoom_blur",
    "elastic": "elastic_transform",
    "jpeg": "jpeg_compression",
}


def list_corruptions() -> list[str]:
    return list(CORRUPTIONS)


def resolve_corruption(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in CORRUPTIONS:
        raise CorruptionConfigError(f"unknown corruption {name!r}; choose from: all, {', '.join(CORRUPTIONS)}")
    return key


def parse_corruptions(text: str | Sequence[str]) -> list[str]:
    """``"all"`` or a comma-separated list of names (``jpeg``, ``motion`` ... also work), in registry order."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    if not items:
        raise CorruptionConfigError(f"no corruption given; choose from: all, {', '.join(CORRUPTIONS)}")
    if any(str(item).lower() == "all" for item in items):
        return list(CORRUPTIONS)
    chosen = {resolve_corruption(item) for item in items}
    return [name for name in CORRUPTIONS if name in chosen]


def parse_severities(text: str | Sequence[int | str]) -> list[int]:
    """``"1,2,3,4,5"`` or ``"1-5"`` into sorted distinct severities in 1..5."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else map(str, text)) if str(t).strip()]
    values: set[int] = set()
    for item in items:
        low, dash, high = item.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else [int(item)]
        except ValueError:
            raise CorruptionConfigError(f"severity {item!r} is not a whole number from 1 to 5") from None
        for value in span:
            if value not in SEVERITIES:
                raise CorruptionConfigError(f"severity {value} is outside 1-5 (the paper's five levels)")
            values.add(value)
    if not values:
        raise CorruptionConfigError("no severity given; use e.g. 1,2,3,4,5")
    return sorted(values)


def corruption_generator(seed: int, name: str, device: Device = "cpu") -> torch.Generator:
    """A generator seeded by ``(seed, corruption)``: a corruption draws the same randomness
    whatever else is evaluated beside it, and the same at every severity (common random
    numbers: what differs between two severities is the severity's constants alone)."""
    import zlib

    mixed = (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63)
    return torch.Generator(device=torch.device(device)).manual_seed(mixed)


def corrupt(x: Tensor, name: str, severity: int, generator: torch.Generator | None = None, seed: int = 0) -> Tensor:
    """Corrupt a batch of images ``(N, C, H, W)`` (or one ``(C, H, W)``) in [0, 1].

    ``severity`` 1-5 uses the reference's constants; 0 returns the images unchanged.
    Randomness comes from ``generator`` (on the images' device), else from
    :func:`corruption_generator` with ``seed``. Runs on the images' device.
    """
    name = resolve_corruption(name)
    if not isinstance(severity, int) or not 0 <= severity <= 5:
        raise CorruptionConfigError(f"severity must be a whole number from 0 to 5, got {severity!r}")
    single = x.dim() == 3
    batch = x.unsqueeze(0) if single else x
    if batch.dim() != 4 or not batch.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W) in [0, 1], got {tuple(x.shape)} {x.dtype}")
    if severity == 0 or len(batch) == 0:
        out = batch.clone()
    else:
        if generator is None:
            generator = corruption_generator(seed, name, batch.device)
        info = CORRUPTIONS[name]
        out = info.function(batch, info.severities[severity - 1], generator)
    return out[0] if single else out
