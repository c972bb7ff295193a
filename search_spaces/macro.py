"""Search spaces written define-by-run against an Optuna trial.

:class:`MacroSpace` is Zoph & Le's (ICLR 2017) CNN space: for each layer the
controller picks filter height and width in {1, 3, 5, 7}, stride in {1, 2, 3} and the
number of filters in {24, 36, 48, 64}, and, through one sigmoid per earlier layer
("anchor points"), which earlier layers feed it. We add the depth, an optional
pooling choice and the skip combination as further choices.

Everything is asked of ``trial.suggest_*``, so any Optuna sampler (TPE, CMA-ES,
random, NSGA-II, a fixed trial) drives it. Choices are conditional where they only
exist in some architectures (layer ``i``'s parameters exist only when the depth
exceeds ``i``; pooling is only offered while the map is at least 2x2), and sampling
only yields architectures that are valid for ``input_shape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from search_spaces.arch import (
    ACTIVATIONS,
    COMBINE_MODES,
    Arch,
    ConvLayer,
    Head,
    InvalidArchitecture,
    Pool,
    _head_from_dict,
    check_input_shape,
    conv_output_size,
    infer_shapes,
)
from search_spaces.cell import OPS, CellArch, EDGES, validate_cell

POOL_CHOICES = ("none", "max", "avg")


def _nonempty(name: str, values, allowed=None) -> tuple:
    values = (values,) if isinstance(values, (str, int)) else tuple(values)  # one choice given bare
    if not values:
        raise InvalidArchitecture(f"{name} needs at least one choice")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise InvalidArchitecture(f"{name}: unknown choice(s) {bad}; expected some of {', '.join(allowed)}")
    return values


def _positive_ints(name: str, values) -> tuple[int, ...]:
    values = _nonempty(name, values)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise InvalidArchitecture(f"{name} must be positive integers, not {values}")
    return values


@dataclass
class MacroSpace:
    """Zoph & Le's macro space; every choice and range is configurable.

    ``paddings`` may include ``"valid"``: where a valid convolution would collapse the
    map, the layer falls back to ``"same"`` padding, so every sample stays valid.
    """

    input_shape: tuple[int, int, int]
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

    name = "macro"

    def __post_init__(self) -> None:
        self.input_shape = check_input_shape(self.input_shape)
        if not 1 <= self.min_layers <= self.max_layers:
            raise InvalidArchitecture(f"need 1 <= min_layers <= max_layers, got "
                                      f"{self.min_layers} and {self.max_layers}")
        self.filter_sizes = _positive_ints("filter_sizes", self.filter_sizes)
        self.strides = _positive_ints("strides", self.strides)
        self.filters = _positive_ints("filters", self.filters)
        self.pools = _nonempty("pools", self.pools, POOL_CHOICES)
        self.paddings = _nonempty("paddings", self.paddings, ("same", "valid"))
        self.activations = _nonempty("activations", self.activations, ACTIVATIONS)
        self.combine = _nonempty("combine", self.combine, COMBINE_MODES)
        if not isinstance(self.head, Head):  # from a config file: {"pool": "avg", "dense": [64], ...}
            self.head = _head_from_dict(self.head)

    def sample(self, trial) -> Arch:
        """Ask ``trial`` for one architecture (define-by-run) and return it."""
        c, h, w = self.input_shape
        depth = trial.suggest_int("num_layers", self.min_layers, self.max_layers)
        layers: list[ConvLayer] = []
        for i in range(depth):
            p = f"layer{i}_"
            fh = trial.suggest_categorical(p + "filter_height", self.filter_sizes)
            fw = trial.suggest_categorical(p + "filter_width", self.filter_sizes)
            stride = trial.suggest_categorical(p + "stride", self.strides)
            filters = trial.suggest_categorical(p + "filters", self.filters)
            padding = trial.suggest_categorical(p + "padding", self.paddings) if len(self.paddings) > 1 \
                else self.paddings[0]
            if padding == "valid" and (conv_output_size(h, fh, stride, 0) < 1 or conv_output_size(w, fw, stride, 0) < 1):
                padding = "same"  # "same" maps n to ceil(n / stride) >= 1: never collapses
            act = trial.suggest_categorical(p + "activation", self.activations) if len(self.activations) > 1 \
                else self.activations[0]
            skips: tuple[int, ...] = ()
            combine = self.combine[0]
            if self.skips and i >= 2:
                # one yes/no per earlier anchor; the previous layer is the main input already
                skips = tuple(j for j in range(i - 1) if trial.suggest_categorical(f"{p}skip_from{j}", (False, True)))
                if skips and len(self.combine) > 1:
                    combine = trial.suggest_categorical(p + "combine", self.combine)
            ph, pw = ((fh - 1) // 2, (fw - 1) // 2) if padding == "same" else (0, 0)
            if conv_output_size(h, fh, stride, ph) < 1 or conv_output_size(w, fw, stride, pw) < 1:
                # only even filters on a 1-pixel map get here; f // 2 padding keeps n + 2p - f >= n - 1
                padding = ph = pw = max(fh, fw) // 2
            h, w = conv_output_size(h, fh, stride, ph), conv_output_size(w, fw, stride, pw)
            pool = None
            if min(h, w) >= 2:  # a 2x2 window needs a 2x2 map
                kind = trial.suggest_categorical(p + "pool", self.pools) if len(self.pools) > 1 else self.pools[0]
                if kind != "none":
                    pool = Pool(kind, 2, 2)
                    h, w = conv_output_size(h, 2, 2, 0), conv_output_size(w, 2, 2, 0)
            layers.append(ConvLayer(filter_height=fh, filter_width=fw, stride=stride, filters=filters,
                                    padding=padding, activation=act, batch_norm=self.batch_norm,
                                    pool=pool, skips=skips, combine=combine))
        arch = Arch(layers=tuple(layers), head=self.head)
        infer_shapes(arch, self.input_shape)  # by construction this holds; keep it checked
        return arch


@dataclass
class CellSpace:
    """NAS-Bench-201's space: one operation per edge of the cell, 5**6 = 15,625 cells."""

    input_shape: tuple[int, int, int]
    cells_per_stage: int = 5
    channels: int = 16
    ops: tuple[str, ...] = OPS

    name = "cell"

    def __post_init__(self) -> None:
        self.input_shape = check_input_shape(self.input_shape)
        self.ops = _nonempty("ops", self.ops, OPS)
        validate_cell(CellArch(("skip_connect",) * len(EDGES), self.cells_per_stage, self.channels),
                      self.input_shape)

    def sample(self, trial) -> CellArch:
        ops = tuple(trial.suggest_categorical(f"edge_{src}_{to}", self.ops) for to, src in EDGES)
        return CellArch(ops, cells_per_stage=self.cells_per_stage, channels=self.channels)


SPACES = {"macro": MacroSpace, "cell": CellSpace}


def get_space(name: str, input_shape, **options):
    """The search space ``name`` ("macro" or "cell") for ``input_shape`` = (C, H, W)."""
    try:
        cls = SPACES[name]
    except KeyError:
        raise InvalidArchitecture(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}") from None
    known = sorted(f.name for f in fields(cls) if f.name != "input_shape")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidArchitecture(f"unknown option(s) {', '.join(unknown)}; the {name} space takes "
                                  f"{', '.join(known)}")
    try:
        return cls(tuple(input_shape), **options)
    except TypeError as error:  # a value of the wrong type, e.g. a string where numbers go
        raise InvalidArchitecture(f"search space {name!r}: {error}") from None
