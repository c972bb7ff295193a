"""Zoph & Le's macro search space, written define-by-run against an Optuna trial.

For each layer the controller of Zoph & Le (ICLR 2017) picks filter height and width
in {1, 3, 5, 7}, stride in {1, 2, 3} and the number of filters in {24, 36, 48, 64},
and, through one sigmoid per earlier layer ("anchor points"), which earlier layers feed
it. We add the depth, an optional pooling choice and the skip combination as further
choices.

Everything is asked of ``trial.suggest_*``, so any Optuna sampler (TPE, CMA-ES,
random, NSGA-II, a fixed trial) drives it. Choices are conditional where they only
exist in some architectures (layer ``i``'s parameters exist only when the depth
exceeds ``i``; pooling is only offered while the map is at least 2x2), and sampling
only yields architectures that are valid for ``input_shape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from search_spaces import fields
from search_spaces.errors import InvalidArchitecture
from search_spaces.fields import Shape
from search_spaces.macro.serialize import head_from_dict
from search_spaces.macro.shapes import conv_output_size, infer_shapes
from search_spaces.macro.spec import ACTIVATIONS, COMBINE_MODES, PADDINGS, Arch, ConvLayer, Head, Pool
from search_spaces.trial import Trial

POOL_CHOICES = ("none", "max", "avg")


def _ask(trial: Trial, name: str, options: tuple[Any, ...]) -> Any:
    """One categorical choice, asked of the trial only where there is something to choose."""
    return trial.suggest_categorical(name, options) if len(options) > 1 else options[0]


@dataclass
class MacroSpace:
    """Zoph & Le's macro space; every choice and range is configurable.

    ``paddings`` may include ``"valid"``: where a valid convolution would collapse the
    map, the layer falls back to ``"same"`` padding, so every sample stays valid.
    """

    input_shape: Shape
    min_layers: int = 2
    max_layers: int = 6
    filter_sizes: tuple[int, ...] = (1, 3, 5, 7)
    strides: tuple[int, ...] = (1, 2, 3)
    filters: tuple[int, ...] = (24, 36, 48, 64)
    pools: tuple[str, ...] = POOL_CHOICES
    paddings: tuple[str, ...] = ("same",)
    activations: tuple[str, ...] = ("relu",)
    combine: tuple[str, ...] = ("concat",)
    skips: bool = True
    batch_norm: bool = True
    head: Head = field(default_factory=Head)

    name: ClassVar[str] = "macro"

    def __post_init__(self) -> None:
        self.input_shape = fields.input_shape(self.input_shape)
        if not 1 <= self.min_layers <= self.max_layers:
            raise InvalidArchitecture(
                f"need 1 <= min_layers <= max_layers, got {self.min_layers} and {self.max_layers}"
            )
        self.filter_sizes = fields.positive_ints("filter_sizes", self.filter_sizes)
        self.strides = fields.positive_ints("strides", self.strides)
        self.filters = fields.positive_ints("filters", self.filters)
        self.pools = fields.choices("pools", self.pools, POOL_CHOICES)
        self.paddings = fields.choices("paddings", self.paddings, PADDINGS)
        self.activations = fields.choices("activations", self.activations, ACTIVATIONS)
        self.combine = fields.choices("combine", self.combine, COMBINE_MODES)
        if not isinstance(self.head, Head):  # from a config file: {"pool": "avg", "dense": [64], ...}
            self.head = head_from_dict(self.head)

    def sample(self, trial: Trial) -> Arch:
        """Ask ``trial`` for one architecture (define-by-run) and return it."""
        _, h, w = self.input_shape
        depth = trial.suggest_int("num_layers", self.min_layers, self.max_layers)
        layers: list[ConvLayer] = []
        for i in range(depth):
            layer = self._sample_layer(trial, i, h, w)
            _, h, w = _layer_output(layer, h, w)
            layers.append(layer)
        arch = Arch(layers=tuple(layers), head=self.head)
        infer_shapes(arch, self.input_shape)  # by construction this holds; keep it checked
        return arch

    def _sample_layer(self, trial: Trial, i: int, h: int, w: int) -> ConvLayer:
        """Layer ``i`` on an ``h`` x ``w`` map; the names of its choices start with ``layer{i}_``."""
        p = f"layer{i}_"
        fh = trial.suggest_categorical(p + "filter_height", self.filter_sizes)
        fw = trial.suggest_categorical(p + "filter_width", self.filter_sizes)
        stride = trial.suggest_categorical(p + "stride", self.strides)
        filters = trial.suggest_categorical(p + "filters", self.filters)
        padding: int | str = _ask(trial, p + "padding", self.paddings)
        if padding == "valid" and (conv_output_size(h, fh, stride, 0) < 1 or conv_output_size(w, fw, stride, 0) < 1):
            padding = "same"  # "same" maps n to ceil(n / stride) >= 1: never collapses
        act = _ask(trial, p + "activation", self.activations)
        skips: tuple[int, ...] = ()
        combine = self.combine[0]
        if self.skips and i >= 2:
            # one yes/no per earlier anchor; the previous layer is the main input already
            skips = tuple(j for j in range(i - 1) if trial.suggest_categorical(f"{p}skip_from{j}", (False, True)))
            if skips:
                combine = _ask(trial, p + "combine", self.combine)
        ph, pw = ((fh - 1) // 2, (fw - 1) // 2) if padding == "same" else (0, 0)
        if conv_output_size(h, fh, stride, ph) < 1 or conv_output_size(w, fw, stride, pw) < 1:
            # only even filters on a 1-pixel map get here; f // 2 padding keeps n + 2p - f >= n - 1
            padding = ph = pw = max(fh, fw) // 2
        h, w = conv_output_size(h, fh, stride, ph), conv_output_size(w, fw, stride, pw)
        pool = None
        if min(h, w) >= 2:  # a 2x2 window needs a 2x2 map
            kind = _ask(trial, p + "pool", self.pools)
            if kind != "none":
                pool = Pool(kind, 2, 2)
        return ConvLayer(
            filter_height=fh,
            filter_width=fw,
            stride=stride,
            filters=filters,
            padding=padding,
            activation=act,
            batch_norm=self.batch_norm,
            pool=pool,
            skips=skips,
            combine=combine,
        )


def _layer_output(layer: ConvLayer, h: int, w: int) -> tuple[int, int, int]:
    """The (filters, height, width) that ``layer`` makes of an ``h`` x ``w`` map."""
    ph, pw = layer.padding_hw
    h = conv_output_size(h, layer.filter_height, layer.stride, ph)
    w = conv_output_size(w, layer.filter_width, layer.stride, pw)
    if layer.pool is not None:
        h, w = conv_output_size(h, 2, 2, 0), conv_output_size(w, 2, 2, 0)
    return layer.filters, h, w
