"""nasbench search: search CNN architectures with Ray Tune + Optuna.

Examples:
  nasbench search --space macro --dataset digits --trials 40 --concurrency 2 --epochs 3
  nasbench search --objectives val_acc,params --sampler nsga2 --scheduler asha
  nasbench search --objectives val_acc,robust_acc --robust-attack pgd --robust-eps 0.1
  nasbench search --objectives val_acc,robust_acc,corruption_acc   # + common corruptions
  nasbench search --experiment exp1 --resume           # after a crash or Ctrl-C
  nasbench search --address 127.0.0.1:6379             # on an existing Ray cluster
  nasbench search --replay benchmark.db --trials 500   # answer from a recorded benchmark
  nasbench search --space cell --space-option channels=8 --space-option cells_per_stage=1 \\
      --space-option ops=[skip_connect,nor_conv_1x1,nor_conv_3x3] --replay cell_digits.db

Every option may also come from a YAML file given with --config; flags override it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli_options import DATASET_FORMATS, DATASET_NAMES
from nasbench.config import add_config_argument, split_list
from nasbench.console import print_summary
from nasbench.strategies import SAMPLERS as _SAMPLERS
from nasbench.strategies import SCHEDULERS as _SCHEDULERS

HELP = "search architectures (Ray Tune + Optuna, resumable, multi-objective)"

_OBJECTIVES = ("val_acc", "robust_acc", "params", "macs", "latency", "corruption_acc")


def _flag(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> None:
    parser.add_argument(f"--{name}", dest=name.replace("-", "_"), default=None, **kwargs)


def _bool(parser: argparse._ActionsContainer, name: str, help: str) -> None:
    parser.add_argument(
        f"--{name}", dest=name.replace("-", "_"), default=None, action=argparse.BooleanOptionalAction, help=help
    )


class _KeyValueOption(argparse.Action):
    """``--space-option KEY=VALUE`` (and ``--sampler-option``), repeatable: VALUE is read as
    YAML (numbers, lists)."""

    def __call__(self, parser, namespace, text, option_string=None):
        import yaml

        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            parser.error(f"{option_string} takes KEY=VALUE, e.g. channels=8 or ops=[skip_connect,nor_conv_3x3]")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parser.error(f"{option_string} {text}: the value is not valid YAML")
        options = dict(getattr(namespace, self.dest) or {})
        options[key.strip()] = parsed
        setattr(namespace, self.dest, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    _add_what_arguments(parser.add_argument_group("what to search"))
    parser.add_argument_group("datasets", description=DATASET_FORMATS)
    _add_training_arguments(parser.add_argument_group("training of each trial"))
    _add_robustness_arguments(parser.add_argument_group("robustness in the loop (objective robust_acc)"))
    _add_corruption_arguments(parser.add_argument_group("common corruptions in the loop (objective corruption_acc)"))
    _add_run_arguments(parser, parser.add_argument_group("where and how to run"))


def _add_what_arguments(what: argparse._ArgumentGroup) -> None:
    _flag(what, "space", choices=("macro", "cell"), help="search space (default macro)")
    what.add_argument(
        "--space-option",
        dest="space_options",
        action=_KeyValueOption,
        default=None,
        metavar="KEY=VALUE",
        help="a setting of the space, repeatable (replaces the config "
        "file's space_options): cell channels=8, cells_per_stage=1, ops=[...]; macro "
        "max_layers=4, filters=[24,36], strides=[1,2], ...",
    )
    _flag(what, "dataset", help=f"{DATASET_NAMES} (default: digits; formats below)")
    _flag(what, "data-dir", type=Path, help="where datasets live (default ./data)")
    _flag(what, "trials", type=int, help="number of architectures to evaluate (default 20)")
    _flag(
        what,
        "objectives",
        type=split_list,
        metavar="LIST",
        help=f"comma-separated, any of {', '.join(_OBJECTIVES)}; several give a Pareto front",
    )
    _flag(
        what,
        "sampler",
        choices=_SAMPLERS,
        help="Optuna sampler (default tpe); evolution: regularized "
        "evolution (Real et al. 2019), reinforce: Zoph & Le's controller",
    )
    what.add_argument(
        "--sampler-option",
        dest="sampler_options",
        action=_KeyValueOption,
        default=None,
        metavar="KEY=VALUE",
        help="a setting of the sampler, repeatable: evolution "
        "population_size=5, sample_size=5; reinforce batch_size=5, learning_rate=0.01, ...",
    )
    _flag(what, "seed", type=int, help="seed of the sampler, the data split and training (default 0)")
    _flag(
        what,
        "replay",
        type=Path,
        metavar="BENCH.db",
        help="answer trials from a recorded benchmark with simulated training time",
    )


def _add_training_arguments(train: argparse._ArgumentGroup) -> None:
    _flag(train, "epochs", type=int, help="training budget per trial (default 3)")
    _flag(train, "batch-size", type=int)
    _flag(train, "optimizer", choices=("sgd", "adamw"))
    _flag(train, "lr", type=float, help="peak learning rate (default 0.01 for adamw, 0.1 for sgd)")
    _flag(
        train,
        "schedule",
        choices=("onecycle", "cosine", "constant", "rungs"),
        help="learning-rate schedule (default onecycle); rungs anneals to its floor at every rung of "
        "--scheduler asha and restarts after it",
    )
    _flag(train, "adv", choices=("none", "pgd", "fgsm-rs"), help="adversarial training in each trial")
    _flag(train, "adv-eps", type=float)
    _flag(
        train,
        "adv-warmup",
        type=float,
        metavar="EPOCHS",
        help="epochs over which the adversarial eps grows linearly to --adv-eps (default half the epochs; 0: off)",
    )
    _flag(
        train,
        "scheduler",
        choices=_SCHEDULERS,
        help="fifo (default), asha or hyperband: stop weak trials after an epoch (told to Optuna as pruned)",
    )
    _flag(train, "grace-period", type=int, help="ASHA: epochs before a trial may be stopped (default 1)")
    _flag(train, "reduction-factor", type=int, help="ASHA/HyperBand: keep 1 in this many (default 3)")


def _add_robustness_arguments(robust: argparse._ArgumentGroup) -> None:
    _flag(robust, "robust-attack", choices=("fgsm", "pgd"), help="cheap attack on the validation split")
    _flag(
        robust,
        "rung-attack",
        choices=("fgsm", "pgd"),
        help="attack at the rungs of a multi-objective asha/hyperband (default fgsm; the final one is --robust-attack)",
    )
    _flag(robust, "robust-eps", type=float, help="Linf budget in [0, 1] pixel units (default 0.1)")
    _flag(robust, "robust-steps", type=int, help="PGD steps (default 10)")
    _flag(robust, "robust-samples", type=int, help="validation images attacked (default 256)")


def _add_corruption_arguments(corruption: argparse._ArgumentGroup) -> None:
    _flag(
        corruption,
        "corruption-subset",
        type=split_list,
        metavar="NAME:SEVERITY,...",
        help="corruptions of Hendrycks & Dietterich 2019 averaged on the validation split (default "
        "gaussian_noise:3,defocus_blur:3,fog:3,jpeg_compression:3: one per family, cheap)",
    )
    _flag(corruption, "corruption-samples", type=int, help="validation images corrupted (default 256)")


def _add_run_arguments(parser: argparse.ArgumentParser, run: argparse._ArgumentGroup) -> None:
    """Where and how trials run; ``--resume`` sits among the general options."""
    _flag(run, "concurrency", type=int, help="trials at a time (default 2)")
    _flag(run, "cpus-per-trial", type=float, help="CPUs per trial; torch threads follow it (default 1)")
    _flag(run, "gpus-per-trial", type=float, help="GPUs per trial; fractions share a GPU (default 0)")
    _flag(run, "device", help="auto (default: the trial's GPU if it was given one, else the CPU), cpu, cuda")
    _flag(run, "amp", choices=("auto", "on", "off"), help="bfloat16 autocast (default auto: on for CUDA)")
    _flag(
        run,
        "channels-last",
        choices=("auto", "on", "off"),
        help="channels_last memory format (default auto: on for CUDA)",
    )
    _flag(
        run,
        "address",
        metavar="HOST:PORT|auto",
        help="join a running Ray cluster: its head's HOST:PORT, or auto for the one started on this "
        "machine (default: a Ray runtime of this search's own)",
    )
    _flag(run, "experiment", metavar="NAME", help="experiment name (default <space>-<dataset>-<time>)")
    _flag(run, "experiments-dir", type=Path, help="where experiments live (default ./experiments)")
    parser.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=None,
        help="continue the experiment NAME where it stopped",
    )
    _flag(run, "store", type=Path, metavar="BENCH.db", help="benchmark store (default <experiment>/benchmark.db)")
    _flag(
        run,
        "tracking-uri",
        help="MLflow tracking URI (default sqlite in the experiment folder); recorded, "
        "so later attack, report and ui commands use it too",
    )
    _flag(
        run,
        "checkpoint-storage",
        metavar="DIR|URI",
        help="where Ray Tune keeps the trials' checkpoints: on a "
        "cluster a folder every node mounts, or s3://..., gs://... (default <experiment>/ray)",
    )
    _flag(run, "export-top", type=int, help="best architectures exported as arch JSON + weights (default 5)")
    _bool(
        run,
        "register-models",
        "log and register the exported best/Pareto models in MLflow, aliases best-val/best-robust on the winners",
    )
    _bool(run, "progress", "show the live progress line")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nasbench.config import resolve
    from nasbench.search import SearchConfig, run_search

    config = resolve(SearchConfig, args)
    summary = run_search(config)
    print_summary(summary, Console())
    if summary.interrupted:
        print(f"search interrupted: resume with 'nasbench search --experiment {summary.experiment} --resume'")
        return 130
    return 0
