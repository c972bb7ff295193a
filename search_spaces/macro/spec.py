"""The macro spec: a plain, frozen description of a chain of conv layers and a head.

An :class:`Arch` is the *macro* encoding of Zoph & Le, "Neural Architecture Search
with Reinforcement Learning" (ICLR 2017): a chain of convolutional layers, each with
its filter height and width, stride, number of filters, padding, activation, batch
norm and optional pooling, plus skip connections from earlier layers (concatenated
along the channels, as in the paper, or added, as in He et al.'s ResNet). A
:class:`Head` turns the last feature map into logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "silu", "identity")
POOL_KINDS = ("max", "avg")
PADDINGS = ("same", "valid")
COMBINE_MODES = ("concat", "add")
SHORTCUTS = ("projection", "zero_pad")
HEAD_POOLS = ("avg", "flatten")


@dataclass(frozen=True)
class Pool:
    """Pooling after a layer's activation: ``kind`` over ``size``x``size`` windows.

    ``stride`` defaults to ``size`` (non-overlapping windows, as in LeNet and VGG);
    AlexNet's overlapping pooling is ``Pool("max", 3, 2)``.
    """

    kind: str = "max"
    size: int = 2
    stride: int | None = None
    padding: int = 0

    @property
    def effective_stride(self) -> int:
        """The stride in pixels: ``stride``, or ``size`` when it is left out."""
        return self.size if self.stride is None else self.stride


@dataclass(frozen=True)
class ConvLayer:
    """One layer: conv -> batch norm -> (+ added skips) -> activation -> pooling.

    ``padding`` is ``"same"`` (``(f - 1) // 2`` on each side, which keeps the size of
    odd filters at stride 1), ``"valid"`` (no padding) or a number of pixels.
    ``skips`` are indices of earlier layers whose outputs also feed this layer; the
    previous layer is always the main input. With ``combine="concat"`` (Zoph & Le)
    they are resized to the main input's height and width and concatenated to it
    before the convolution; with ``combine="add"`` (ResNet) they are added after the
    batch norm, through a 1x1 projection (conv + BN, He et al. 2016 option B) or a
    parameter-free subsample-and-zero-pad (option A) where shapes differ.
    ``bias`` defaults to "no bias when batch norm follows".
    """

    filter_height: int = 3
    filter_width: int = 3
    stride: int = 1
    filters: int = 32
    padding: int | str = "same"
    activation: str = "relu"
    batch_norm: bool = True
    bias: bool | None = None
    pool: Pool | None = None
    skips: tuple[int, ...] = ()
    combine: str = "concat"
    shortcut: str = "projection"

    @property
    def has_bias(self) -> bool:
        """Whether the convolution has a bias: ``bias``, or "unless batch norm follows"."""
        return (not self.batch_norm) if self.bias is None else self.bias

    @property
    def padding_hw(self) -> tuple[int, int]:
        """The padding in pixels on each side, (height, width)."""
        if self.padding == "same":
            return (self.filter_height - 1) // 2, (self.filter_width - 1) // 2
        if self.padding == "valid":
            return 0, 0
        return int(self.padding), int(self.padding)


@dataclass(frozen=True)
class Head:
    """Classifier: global average pooling or flatten, hidden dense layers, classifier.

    Dropout (when ``dropout > 0``) is applied to the input of the classifier and
    after every hidden layer's activation, as in VGG's classifier.
    """

    pool: str = "avg"
    dense: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"


@dataclass(frozen=True)
class Arch:
    """A macro architecture (Zoph & Le 2017): conv layers with skips, and a head."""

    layers: tuple[ConvLayer, ...]
    head: Head = field(default_factory=Head)
    name: str | None = None

    kind: ClassVar[str] = "macro"
