"""Train one model (a classic model by name, or an architecture JSON) on a dataset.

Prints per-epoch loss and accuracy, the final test accuracy, and saves a checkpoint
(weights as safetensors plus the architecture and metadata as JSON) that
`nasbench attack --model DIR` and `nasbench describe` accept.

Examples:
  nasbench train --model lenet5 --dataset digits --epochs 15
  nasbench train --model arch.json --dataset cifar10 --data-dir ~/data --epochs 30 --augment crop,flip
  nasbench train --model lenet5 --epochs 20 --adv pgd --eps 0.1
  nasbench train --model lenet5 --epochs 40 --adv pgd --eps 0.3 --adv-warmup 20

With --adv, eps grows linearly over the first --adv-warmup epochs (default: half of
them). Training that ends at chance (accuracy within 5 points of 1/K, or a training
loss stuck at ln K) prints one warning line; the checkpoint is saved and marked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nasbench.cli_options import add_data_arguments
from nasbench.config import DataConfig, TrainConfig, add_config_argument, resolve, split_list

if TYPE_CHECKING:  # torch is imported by run, so that `nasbench --help` answers at once
    from nasbench.data import Dataset
    from nasbench.train import TrainResult

HELP = "train one model and save a checkpoint"


class TrainCommandConfig(DataConfig, TrainConfig):
    model: str = "lenet5"
    out: Path | None = None


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of how one model is trained."""
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, help="training epochs (default 10)")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--optimizer", help="adamw (default) or sgd")
    group.add_argument("--lr", type=float, help="peak learning rate (default 0.01 for adamw, 0.1 for sgd)")
    group.add_argument("--weight-decay", type=float)
    group.add_argument(
        "--schedule",
        choices=("onecycle", "cosine", "constant", "rungs"),
        help="onecycle (default), cosine, constant or rungs (cosine restarts after epochs 1, 3, 9, ...)",
    )
    group.add_argument("--label-smoothing", type=float)
    group.add_argument(
        "--augment", type=split_list, help="comma-separated: crop, flip, erase, mixup, cutmix (default none)"
    )
    group.add_argument(
        "--adv", help="adversarial training: none (default), pgd (Madry PGD-AT) or fgsm-rs (FGSM with random start)"
    )
    group.add_argument("--eps", dest="adv_eps", help="Linf radius for adversarial training, e.g. 8/255 or 0.1")
    group.add_argument(
        "--adv-warmup",
        type=float,
        metavar="EPOCHS",
        help="epochs over which the adversarial eps grows linearly (per step) from about 0 "
        "to --eps (default with --adv: half the epochs; 0 turns it off)",
    )
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    group.add_argument("--amp", choices=("auto", "on", "off"), help="bfloat16 autocast (default auto: on for CUDA)")
    group.add_argument(
        "--channels-last", choices=("auto", "on", "off"), help="channels_last memory format (default auto: on for CUDA)"
    )
    group.add_argument("--threads", type=int, help="torch CPU threads (default: all cores given)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--model", help="classic model name (lenet5, resnet20, ...) or an architecture .json")
    parser.add_argument("--out", type=Path, help="checkpoint directory (default experiments/models/<model>-<dataset>)")
    add_data_arguments(parser)
    add_training_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = resolve(TrainCommandConfig, args)

    from rich.console import Console

    from nasbench.checkpoint import save_checkpoint
    from nasbench.data import load_dataset
    from nasbench.models import build_from_spec, resolve_spec, spec_label, wrap_normalized
    from nasbench.train import seed_everything, select_device, train_model

    select_device(config.device)  # a GPU asked for and not here: say so before any work
    console = Console(stderr=True)
    spec = resolve_spec(config.model)
    dataset = load_dataset(config.dataset, config.data_dir, config.download, config.seed, config.val_fraction)
    console.print(f"[bold]data[/] {dataset.summary()}")
    seed_everything(config.seed)  # the initial weights too, so one seed gives one result
    model = wrap_normalized(build_from_spec(spec, dataset.input_shape, dataset.num_classes), dataset)
    params = sum(p.numel() for p in model.parameters())
    console.print(f"[bold]model[/] {spec_label(spec)}: {params:,} parameters")

    def show(metrics: dict) -> None:
        eps = f"  eps {metrics['adv_eps']:.3g}" if "adv_eps" in metrics else ""
        console.print(
            f"epoch {metrics['epoch']:>3}/{config.epochs}  loss {metrics['train_loss']:.4f}  "
            f"train {metrics['train_acc']:.2%}  val {metrics['val_acc']:.2%}{eps}  "
            f"({metrics['epoch_seconds']:.1f} s)"
        )

    augment: list[str] = list(config.augment)
    result = train_model(model, dataset, config, on_epoch=show, seed=config.seed, augment=augment)
    out = config.out or _default_checkpoint_dir(config, spec_label(spec))
    save_checkpoint(out, result.model, spec, _checkpoint_meta(config, dataset, params, result))
    print(f"test accuracy {result.test_acc:.2%} (val {result.val_acc:.2%}) in {result.train_seconds:.1f} s")
    print(f"checkpoint: {out}")
    if result.collapse:  # the checkpoint is kept (and marked): it is what the run produced
        _warn_collapsed(config, result.collapse)
    return 0


def _default_checkpoint_dir(config: TrainCommandConfig, model_label: str) -> Path:
    """experiments/models/<model>-<dataset>: a user's own dataset is named by its folder or
    file, never by a path that climbs out."""
    from nasbench.model_loading import safe_label

    dataset_label = Path(config.dataset.partition(":")[2]).stem or config.dataset
    return Path("experiments") / "models" / safe_label(f"{model_label}-{dataset_label}")


def _checkpoint_meta(config: TrainCommandConfig, dataset: Dataset, params: int, result: TrainResult) -> dict:
    """meta.json of the checkpoint: the data it fits, the training and what it reached."""
    from nasbench.checkpoint import dataset_meta

    return {
        **dataset_meta(dataset),
        "input_shape": list(dataset.input_shape),
        "num_classes": dataset.num_classes,
        "class_names": dataset.class_names,
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "params": params,
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "device": result.device,
        "train_config": config.model_dump(mode="json"),
        "collapse": result.collapse,
    }


def _warn_collapsed(config: TrainCommandConfig, collapse: str) -> None:
    hint = " (adversarial training: try --adv-warmup, more --epochs or a smaller --eps)" if config.adv != "none" else ""
    print(
        f"nasbench: warning: training collapsed: {collapse}; checkpoint saved anyway, marked as collapsed{hint}",
        file=sys.stderr,
    )
