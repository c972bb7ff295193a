"""Profile a model layer by layer: output shape, parameters, multiply-accumulates and
receptive field, with totals; optionally the measured inference latency of a batch.

MODEL is a classic model name (lenet5, alexnet, vgg11, vgg16, resnet18, resnet20,
googlenet), an architecture JSON file (macro, cell or classic spec), a checkpoint
directory from `nasbench train` or a search (its input shape and classes are the
defaults, and the dataset it was trained on is shown), or a NAS-Bench-201 arch string
such as '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|'. --dataset takes the input shape
and classes from a dataset instead.

examples:
  nasbench describe --model lenet5 --input 1x32x32
  nasbench describe --model arch.json --input 192x28x28 --json
  nasbench describe --model resnet20 --input 3x32x32 --latency --batch-size 128
  nasbench describe --model experiments/models/lenet5-digits
  nasbench describe --model lenet5 --dataset npz:my_digits.npz
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from nasbench.errors import UserError

CONFIG_AS_FLAGS = True  # --config FILE.yaml: its keys are this command's flags
HELP = "per-layer shapes, parameters, MACs and receptive field of a model or architecture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME|ARCH.json|DIR",
        help="classic model name, architecture JSON file, checkpoint directory, or NAS-Bench-201 arch string",
    )
    parser.add_argument(
        "--input", metavar="CxHxW", help="input shape, e.g. 1x8x8 or 3x32x32 (default: a checkpoint's own)"
    )
    parser.add_argument("--classes", type=int, metavar="N", help="number of classes (default: a checkpoint's, or 10)")
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="take the input shape and classes from this dataset (names as in 'nasbench train "
        "--help'), instead of --input",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="where torchvision datasets live (default: data)"
    )
    parser.add_argument(
        "--variant",
        choices=("auto", "paper", "small"),
        default="auto",
        help="classic models: paper shapes or the small-input variant (default: auto)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--latency", action="store_true", help="also measure inference latency of one batch")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="latency batch size (default 32)")
    parser.add_argument("--repeats", type=int, default=10, metavar="N", help="timed latency runs (default 10)")
    parser.add_argument("--device", default="auto", help="latency device: auto, cpu, cuda, cuda:1 (default auto)")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not match or min(int(g) for g in match.groups()) < 1:
        raise UserError(f"--input must be CxHxW with positive sizes, e.g. 3x32x32; got {text!r}")
    channels, height, width = (int(g) for g in match.groups())
    return channels, height, width


def _load_target(model: str) -> tuple[object, dict]:
    """What to describe -> ``(target, checkpoint meta)``.

    The target is a classic model name, a classic spec dict, a NAS-Bench-201 string or an
    Arch; the meta (input shape, classes) is empty unless MODEL is a checkpoint directory.
    """
    from nasbench.config import read_json
    from nasbench.models import checked_classic_spec
    from search_spaces import InvalidArchitecture, arch_from_dict, list_models

    if model.startswith("|"):
        return model, {}
    path = Path(model)
    if model in list_models() and not path.exists():
        return model, {}
    meta = {}
    if path.is_dir():
        meta = read_json(path / "meta.json", "checkpoint file")
        path = path / "arch.json"
    elif path.suffix.lower() != ".json" and not path.exists():
        raise UserError(f"unknown model {model!r}: not a file, and not one of {', '.join(list_models())}")
    spec = read_json(path, "architecture")
    if spec.get("kind") == "classic":
        return checked_classic_spec(spec, path), meta
    try:
        return arch_from_dict(spec), meta
    except InvalidArchitecture as error:
        raise UserError(f"architecture {path}: {error}") from None


def _shape_and_classes(args: argparse.Namespace, meta: dict) -> tuple[tuple[int, int, int], int, str | None]:
    """Input shape, classes and the dataset they come from: --dataset, else --input, else
    the checkpoint's own (a checkpoint given another --dataset gets one warning line)."""
    from nasbench.checkpoint import recorded_dataset

    recorded = recorded_dataset(meta)
    if args.dataset is None:
        if args.input is None and "input_shape" not in meta:
            raise UserError("--input CxHxW is needed, or --dataset (only a checkpoint directory knows its own)")
        input_shape = parse_input_shape(args.input) if args.input else tuple(meta["input_shape"])
        classes = args.classes if args.classes is not None else int(meta.get("num_classes", 10))
        return input_shape, classes, recorded["dataset"] if recorded and not args.input else None
    if args.input is not None:
        raise UserError("give --input or --dataset, not both")
    import warnings

    from nasbench.data import absolute_dataset_name, load_dataset
    from nasbench.errors import DoubtfulInput

    if recorded and absolute_dataset_name(recorded["dataset"]) != absolute_dataset_name(args.dataset):
        warnings.warn(
            f"describing for {args.dataset} inputs as asked, not for the data the checkpoint was "
            f"trained on: {recorded['dataset']} ({args.model})",
            DoubtfulInput,
            stacklevel=2,
        )
    dataset = load_dataset(args.dataset, args.data_dir)
    classes = args.classes if args.classes is not None else dataset.num_classes
    return dataset.input_shape, classes, args.dataset


def _format_shape(shape) -> str:
    return "x".join(str(v) for v in shape)


def _print_table(description) -> None:
    from nasbench.tables import compact_table, stdout_console

    # Numbers never wrap; long layer and type names fold onto a second line instead.
    table = compact_table(f"{description.name} on {_format_shape(description.input_shape)} input", show_footer=True)
    totals = description.totals
    table.add_column("#", justify="right", footer="", no_wrap=True)
    table.add_column("layer", footer="total", overflow="fold")
    table.add_column("type", footer="", overflow="fold")
    table.add_column("output", justify="right", footer=_format_shape(totals["output_shape"]), no_wrap=True)
    table.add_column("params", justify="right", footer=f"{totals['params']:,}", no_wrap=True)
    table.add_column("MACs", justify="right", footer=f"{totals['macs']:,}", no_wrap=True)
    table.add_column("receptive field", justify="right", footer="")
    for i, row in enumerate(description.rows):
        rf = "" if row.receptive_field is None else f"{row.receptive_field[0]}x{row.receptive_field[1]}"
        table.add_row(
            str(i), row.name, row.type, _format_shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}", rf
        )
    console = stdout_console()
    console.print(table)
    console.print(
        f"parameters: {totals['params']:,} ({totals['trainable_params']:,} trainable)   "
        f"MACs per image: {totals['macs']:,} ({totals['macs'] / 1e6:,.1f} M)"
    )
    latency = description.latency
    if latency is not None:
        console.print(
            f"latency on {latency.device}: {latency.mean_ms:.2f} ms per batch of {latency.batch_size} "
            f"(± {latency.std_ms:.2f}, min {latency.min_ms:.2f}; {latency.per_image_ms:.3f} ms/image, "
            f"{latency.images_per_s:,.0f} images/s)"
        )


def run(args: argparse.Namespace) -> int:
    if args.latency and (args.batch_size < 1 or args.repeats < 1):
        raise UserError("--batch-size and --repeats must be at least 1")
    target, meta = _load_target(args.model)
    input_shape, classes, data_label = _shape_and_classes(args, meta)
    if classes < 1:
        raise UserError(f"--classes must be at least 1, got {classes}")
    variant = args.variant
    if isinstance(target, dict):  # a classic spec: its name, and its variant unless one is asked for
        if variant == "auto":
            variant = target.get("variant", "auto")
        target = target["name"]

    from nasbench.train import select_device
    from search_spaces import InvalidArchitecture, describe, measure_latency
    from search_spaces.describe import resolve_model

    try:
        name, model = resolve_model(target, input_shape, classes, variant)
        description = describe(model, input_shape, classes, name=name)
    except InvalidArchitecture as error:
        raise UserError(str(error)) from None
    if args.latency:
        try:
            device = select_device(args.device)
        except RuntimeError as error:
            raise UserError(f"--device {args.device!r}: {error}") from None
        description.latency = measure_latency(model, input_shape, args.batch_size, device, repeats=args.repeats)
    if args.json:
        print(json.dumps({**description.to_dict(), **({"dataset": data_label} if data_label else {})}, indent=2))
    else:
        _print_table(description)
        if data_label:
            print(f"dataset: {data_label}" + (" (the checkpoint's)" if args.dataset is None else ""))
    return 0
