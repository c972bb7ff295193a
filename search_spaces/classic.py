"""Classic CNNs by name, in the style of timm's registry.

Each model comes in two variants: ``"paper"``, the published layer shapes (for
ImageNet models, 3x224x224), whose parameter counts equal the papers' and
torchvision's exactly; and ``"small"``, the customary adaptation to 28-32 px data
(first-layer strides and pools removed, smaller heads) that also runs on 8x8 digits.
``"auto"`` picks the paper variant when the input is at least the paper's size.

LeNet-5, AlexNet, VGG and the ResNets are expressible in the macro spec, so they are
built from an :class:`~search_spaces.arch.Arch` (:func:`classic_arch`): classic models
are named points of the search space. GoogLeNet's parallel branches are not, so it
is its own module family (:class:`GoogLeNet`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from search_spaces import fields
from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import Shape
from search_spaces.googlenet import GoogLeNet, googlenet_min_input
from search_spaces.kinds import build_model
from search_spaces.macro.shapes import conv_output_size
from search_spaces.macro.spec import Arch, ConvLayer, Head, Pool

VARIANTS = ("auto", "paper", "small")

ArchFactory = Callable[[Shape, str], Arch]
"""``(input_shape, variant) -> Arch``: a classic model as a point of the macro space."""

ModuleFactory = Callable[[Shape, int, str], nn.Module]
"""``(input_shape, num_classes, variant) -> module``: a classic model the macro spec cannot express."""


class UnknownModel(InvalidArchitecture):
    """A model name that is not in the registry."""


@dataclass(frozen=True)
class ModelEntry:
    """A registered classic model: one of the two factories, and the input its paper used."""

    name: str
    paper_input: Shape
    summary: str
    make_arch: ArchFactory | None = None
    make_module: ModuleFactory | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_arch(name: str, paper_input: Shape, summary: str) -> Callable[[ArchFactory], ArchFactory]:
    """Decorator: register an ``Arch`` factory under ``name``."""

    def wrap(fn: ArchFactory) -> ArchFactory:
        _REGISTRY[name] = ModelEntry(name, paper_input, summary, make_arch=fn)
        return fn

    return wrap


def register_module(name: str, paper_input: Shape, summary: str) -> Callable[[ModuleFactory], ModuleFactory]:
    """Decorator: register a module factory under ``name``."""

    def wrap(fn: ModuleFactory) -> ModuleFactory:
        _REGISTRY[name] = ModelEntry(name, paper_input, summary, make_module=fn)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; :class:`UnknownModel` naming the others if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def resolve_variant(name: str, input_shape: Any, variant: str = "auto") -> str:
    """``"paper"`` or ``"small"``: what ``variant="auto"`` means for this input."""
    if variant not in VARIANTS:
        raise InvalidArchitecture(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant != "auto":
        return variant
    _, h, w = fields.input_shape(input_shape)
    _, ph, pw = model_entry(name).paper_input
    return "paper" if h >= ph and w >= pw else "small"


def classic_arch(name: str, input_shape: Any, num_classes: int = 10, variant: str = "auto") -> Arch:
    """The macro-spec :class:`Arch` of a classic model (all but GoogLeNet)."""
    entry = model_entry(name)
    if entry.make_arch is None:
        raise InvalidArchitecture(
            f"{name} has parallel branches the macro spec cannot express; use create_model() for it"
        )
    shape = fields.input_shape(input_shape)
    return entry.make_arch(shape, resolve_variant(name, shape, variant))


def create_model(name: str, input_shape: Any, num_classes: int, variant: str = "auto") -> nn.Module:
    """Build the classic model ``name`` for ``input_shape`` = (C, H, W) and ``num_classes``."""
    entry = model_entry(name)
    shape = fields.input_shape(input_shape)
    resolved = resolve_variant(name, shape, variant)
    if entry.make_arch is not None:
        return build_model(entry.make_arch(shape, resolved), shape, num_classes)
    assert entry.make_module is not None  # every entry has one of the two
    return entry.make_module(shape, num_classes, resolved)


# ------------------------------------------------------------ macro-spec models


def _conv(
    filters: int,
    size: int = 3,
    stride: int = 1,
    padding: int | str = "same",
    *,
    bn: bool = False,
    act: str = "relu",
    pool: Pool | None = None,
    skips: tuple[int, ...] = (),
    combine: str = "concat",
    shortcut: str = "projection",
) -> ConvLayer:
    return ConvLayer(
        filter_height=size,
        filter_width=size,
        stride=stride,
        filters=filters,
        padding=padding,
        activation=act,
        batch_norm=bn,
        pool=pool,
        skips=skips,
        combine=combine,
        shortcut=shortcut,
    )


def _pools_that_fit(plan: Sequence[ConvLayer | str], spatial: int) -> tuple[ConvLayer, ...]:
    """Attach a pool after each "M" of a VGG-style plan while the map is still >= 2 pixels,
    so that small inputs (8x8 digits) keep as many downsamplings as they can afford."""
    layers: list[ConvLayer] = []
    size = spatial
    for item in plan:
        if item == "M":
            if size >= 2 and layers:
                pool = Pool("max", 2, 2)
                layers[-1] = replace(layers[-1], pool=pool)
                size = conv_output_size(size, pool.size, pool.effective_stride, pool.padding)
        elif isinstance(item, ConvLayer):
            layers.append(item)
    return tuple(layers)


@register_arch("lenet5", (1, 32, 32), "LeNet-5 (LeCun et al. 1998): 2 conv + 3 dense, 61,706 params")
def lenet5(input_shape: Shape, variant: str) -> Arch:
    """LeNet-5, LeCun et al., "Gradient-Based Learning Applied to Document Recognition", 1998.

    C1 (6 5x5 filters) - S2 (2x2 average subsampling) - C3 (16 5x5) - S4 - C5 (120) -
    F6 (84) - output, with tanh. On 32x32x1 and 10 classes: 61,706 parameters. The
    small variant pads both convolutions by 2 (as MNIST LeNets pad C1) so 8x8 fits.
    """
    padding = "valid" if variant == "paper" else 2
    subsample = Pool("avg", 2, 2)
    return Arch(
        layers=(
            _conv(6, 5, padding=padding, act="tanh", pool=subsample),
            _conv(16, 5, padding=padding, act="tanh", pool=subsample),
        ),
        head=Head(pool="flatten", dense=(120, 84), activation="tanh"),
        name=f"lenet5-{variant}",
    )


@register_arch("alexnet", (3, 224, 224), "AlexNet (Krizhevsky et al. 2012): 5 conv + 3 dense, 61,100,840 params")
def alexnet(input_shape: Shape, variant: str) -> Arch:
    """AlexNet, Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NIPS 2012, in torchvision's single-tower form
    (64-192-384-256-256 filters, Krizhevsky 2014): 61,100,840 parameters on 224x224x3.

    Overlapping 3x3/2 max pooling, ReLU, dropout 0.5 in the 4096-4096 classifier. The
    small variant uses 3x3 stride-1 convolutions, 2x2 pools and a 1024-1024 classifier.
    """
    layers: tuple[ConvLayer, ...]
    if variant == "paper":
        overlap = Pool("max", 3, 2)
        layers = (
            _conv(64, 11, 4, 2, pool=overlap),
            _conv(192, 5, 1, 2, pool=overlap),
            _conv(384, 3, 1, 1),
            _conv(256, 3, 1, 1),
            _conv(256, 3, 1, 1, pool=overlap),
        )
        head = Head(pool="flatten", dense=(4096, 4096), dropout=0.5)
    else:
        plan: list[ConvLayer | str] = [_conv(64), "M", _conv(192), "M", _conv(384), _conv(256), _conv(256), "M"]
        layers = _pools_that_fit(plan, min(input_shape[1:]))
        head = Head(pool="flatten", dense=(1024, 1024), dropout=0.5)
    return Arch(layers=layers, head=head, name=f"alexnet-{variant}")


_VGG_PLANS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # configuration A
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),  # D
}


def _vgg(name: str, input_shape: Shape, variant: str) -> Arch:
    """VGG, Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
    Image Recognition", ICLR 2015: stacks of 3x3 stride-1 "same" convolutions and 2x2
    max pools, then a 4096-4096 classifier with dropout 0.5 (VGG-11: 132,863,336
    parameters, VGG-16: 138,357,544 on 224x224x3).

    The small variant is the usual CIFAR VGG: batch norm after every conv, pools only
    while the map is at least 2x2, global average pooling into the classifier.
    """
    small = variant != "paper"
    plan = [c if isinstance(c, str) else _conv(c, 3, 1, 1, bn=small) for c in _VGG_PLANS[name]]
    if small:
        return Arch(layers=_pools_that_fit(plan, min(input_shape[1:])), head=Head(pool="avg"), name=f"{name}-{variant}")
    layers = _pools_that_fit(plan, 1 << 30)
    return Arch(layers=layers, head=Head(pool="flatten", dense=(4096, 4096), dropout=0.5), name=f"{name}-{variant}")


@register_arch("vgg11", (3, 224, 224), "VGG-11 (Simonyan & Zisserman 2015, config A): 132,863,336 params")
def vgg11(input_shape: Shape, variant: str) -> Arch:
    return _vgg("vgg11", input_shape, variant)


@register_arch("vgg16", (3, 224, 224), "VGG-16 (Simonyan & Zisserman 2015, config D): 138,357,544 params")
def vgg16(input_shape: Shape, variant: str) -> Arch:
    return _vgg("vgg16", input_shape, variant)


vgg11.__doc__ = vgg16.__doc__ = _vgg.__doc__


def _residual_stages(
    layers: list[ConvLayer], stages: Sequence[tuple[int, int]], blocks_per_stage: int, shortcut: str
) -> None:
    """Append basic blocks (He et al. 2016): conv-BN-ReLU, conv-BN, + block input, ReLU.

    Each block is two macro layers; the second adds the output of the layer before the
    block, which is exactly ResNet's identity skip (or its projection where shapes change).
    """
    for filters, first_stride in stages:
        for block in range(blocks_per_stage):
            block_input = len(layers) - 1
            layers.append(_conv(filters, 3, first_stride if block == 0 else 1, 1, bn=True))
            layers.append(_conv(filters, 3, 1, 1, bn=True, skips=(block_input,), combine="add", shortcut=shortcut))


@register_arch("resnet18", (3, 224, 224), "ResNet-18 (He et al. 2016): 11,689,512 params")
def resnet18(input_shape: Shape, variant: str) -> Arch:
    """ResNet-18, He et al., "Deep Residual Learning for Image Recognition", CVPR 2016:
    a 7x7/2 stem with 3x3/2 max pooling, four stages of two basic blocks (64-128-256-512
    filters), projection shortcuts (option B) where shapes change, global average
    pooling: 11,689,512 parameters on 224x224x3, as torchvision.

    The small variant is the common CIFAR form: a 3x3 stride-1 stem, no max pool.
    """
    if variant == "paper":
        layers = [_conv(64, 7, 2, 3, bn=True, pool=Pool("max", 3, 2, 1))]
    else:
        layers = [_conv(64, 3, 1, 1, bn=True)]
    _residual_stages(layers, ((64, 1), (128, 2), (256, 2), (512, 2)), 2, "projection")
    return Arch(layers=tuple(layers), head=Head(pool="avg"), name=f"resnet18-{variant}")


@register_arch("resnet20", (3, 32, 32), "ResNet-20 for CIFAR (He et al. 2016, sec. 4.2): 0.27M params")
def resnet20(input_shape: Shape, variant: str) -> Arch:
    """ResNet-20, He et al. 2016, section 4.2 (the CIFAR-10 ResNets, ``6n + 2`` layers
    with n = 3): a 3x3 conv with 16 filters, three stages of three basic blocks with
    16-32-64 filters on 32-16-8 maps, parameter-free zero-padding shortcuts (option A),
    global average pooling: 0.27M parameters. Already a small-input network, so both
    variants are the same.
    """
    layers = [_conv(16, 3, 1, 1, bn=True)]
    _residual_stages(layers, ((16, 1), (32, 2), (64, 2)), 3, "zero_pad")
    return Arch(layers=tuple(layers), head=Head(pool="avg"), name=f"resnet20-{variant}")


@register_module("googlenet", (3, 224, 224), "GoogLeNet / Inception v1 (Szegedy et al. 2015): 6,624,904 params")
def googlenet(input_shape: Shape, num_classes: int, variant: str) -> nn.Module:
    stem = "paper" if variant == "paper" else "small"
    _, h, w = input_shape
    if min(googlenet_min_input(stem, h), googlenet_min_input(stem, w)) < 1:
        raise InvalidArchitecture(
            f"googlenet ({variant}) collapses the feature map on {h}x{w} input; "
            "use variant 'small' for inputs under 224 px"
        )
    return GoogLeNet(input_shape[0], num_classes, stem=stem)


googlenet.__doc__ = GoogLeNet.__doc__
