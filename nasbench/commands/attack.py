"""Attack trained models and measure their robust accuracy.

For every attack and eps: robust accuracy, attack success rate, mean and median
L2/Linf perturbation and time per example; per eps the per-example worst case over
all attacks (the number to report); sanity checks after Carlini et al. 2019. Each
model's evaluation bundle (evaluation.json, adversarial examples as safetensors, a
PNG grid) goes to experiments/<NAME>/evaluations/<model>/, and is logged to MLflow.

With --corruptions, also the accuracy under the common corruptions of Hendrycks &
Dietterich 2019 (CIFAR-10-C's 15 corruptions at severities 1-5): per corruption and
severity, their mean, its ratio to clean accuracy, and each model's corruption error
(CE, mCE) relative to a baseline model of the same evaluation. --corruptions without
--attacks evaluates the corruptions alone.

--model takes a checkpoint directory, a classic model name (trained on the dataset
for --epochs first, then reused), runs:/RUN_ID or models:/NAME@ALIAS; several
comma-separated models also give a transferability matrix.

A checkpoint is attacked on the dataset it was trained on (recorded in its meta.json)
unless --dataset names another, which gets a warning; checkpoints trained on different
datasets need --dataset to be attacked together.

Examples:
  nasbench attack --model lenet5 --attacks fgsm,pgd,square --eps 0,0.05,0.1,0.2,0.3
  nasbench attack --model experiments/models/lenet5-digits --n 300 --targeted
  nasbench attack --model lenet5,resnet20 --dataset cifar10 --data-dir ~/data --eps 0,1/255,2/255,4/255,8/255
  nasbench attack --model models:/nasbench-exp1@best-robust --experiment exp1
  nasbench attack --model lenet5,resnet20 --corruptions all --corruption-baseline lenet5
  nasbench attack --model lenet5 --attacks fgsm,pgd --corruptions fog,jpeg,motion --severities 1,3,5
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from nasbench.cli_options import add_data_arguments
from nasbench.config import Device, StrictModel, TrackingUri, add_config_argument, resolve, split_list
from nasbench.console import attack_progress, print_evaluations, print_transfer
from nasbench.errors import UserError

if TYPE_CHECKING:  # torch is imported by run, so that `nasbench --help` answers at once
    from rich.console import Console

    from attacks import AttackSpec
    from nasbench.evaluation import ModelEvaluation

HELP = "attack trained models: robust accuracy per attack and eps, worst case, checks, example grids"


class AttackCommandConfig(StrictModel):
    # None: the dataset the checkpoints were trained on, else digits (nasbench.evaluation.choose_dataset)
    dataset: str | None = None
    data_dir: Path | None = None
    download: bool = False
    seed: int = Field(0, ge=0)
    val_fraction: float = Field(0.15, gt=0.0, lt=0.9)
    model: list[str] = ["lenet5"]
    attacks: list[str] = ["fgsm", "pgd", "square"]
    eps: list[str] | None = None  # default: by dataset (nasbench.evaluation.default_eps)
    eps_l2: list[str] | None = None
    n: int = Field(1000, ge=1, le=10_000_000)
    targeted: bool = False
    steps: int | None = Field(None, ge=1, le=100_000)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=65_536)
    keep_examples: int = Field(16, ge=1, le=1024)
    device: Device = "auto"
    checks: bool = True
    transfer_attack: str | None = None
    transfer_eps: str | None = None
    experiment: str = "default"
    experiments_dir: Path = Path("experiments")
    tracking_uri: TrackingUri = None
    no_tracking: bool = False
    corruptions: list[str] | None = None  # None: none; ["all"] or names (attacks.corruptions)
    severities: list[str] = ["1", "2", "3", "4", "5"]
    corruption_baseline: str | None = None  # a model label; default the first model

    @field_validator("model", "attacks", "eps", "eps_l2", "corruptions", "severities", mode="before")
    @classmethod
    def _comma_list(cls, value):
        """YAML may give ``pgd,fgsm`` as one string or as a list; numbers stay exact text."""
        if isinstance(value, str):
            return split_list(value)
        if isinstance(value, (int, float)):
            return [str(value)]
        if isinstance(value, list):
            return [str(item) for item in value]
        return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--model",
        type=split_list,
        metavar="NAME|CHECKPOINT|runs:/ID|models:/NAME@ALIAS",
        help="model(s) to attack, comma-separated (default lenet5)",
    )
    _add_attack_arguments(parser.add_argument_group("attacks"))
    _add_corruption_arguments(parser.add_argument_group("common corruptions (Hendrycks & Dietterich 2019)"))
    _add_experiment_arguments(parser.add_argument_group("models and experiment"))
    add_data_arguments(parser, default="the dataset the checkpoints were trained on, else digits")


def _add_attack_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--attacks",
        type=split_list,
        help="comma-separated, cheapest run first: fgsm, bim, pgd, mifgsm, pgdl2, apgd, apgd-t, "
        "fab, square, autoattack, cw, deepfool, gaussian; options after colons, e.g. "
        "pgd:steps=20:restarts=2 (default fgsm,pgd,square)",
    )
    group.add_argument(
        "--eps",
        type=split_list,
        help="Linf radii, e.g. 0,1/255,2/255,4/255,8/255 (default 0,0.05,0.1,0.2,0.3 on "
        "greyscale images, such as digits and mnist, else 0,1/255,2/255,4/255,8/255)",
    )
    group.add_argument("--eps-l2", type=split_list, help="L2 radii for L2 attacks (default: --eps)")
    group.add_argument("--n", type=int, help="test points to attack, a seeded subset (default 1000)")
    group.add_argument(
        "--targeted",
        action="store_true",
        default=None,
        help="aim at one random wrong class per point (attacks that support it)",
    )
    group.add_argument("--steps", type=int, help="override the steps of every iterative attack")
    group.add_argument("--batch-size", type=int, help="attack batch size (default 256)")
    group.add_argument("--keep-examples", type=int, help="adversarial examples kept per eps (default 16)")
    group.add_argument(
        "--no-checks",
        dest="checks",
        action="store_false",
        default=None,
        help="skip the sanity checks and their probe attacks",
    )
    group.add_argument("--transfer-attack", help="attack of the transfer matrix (default: the first iterative one)")
    group.add_argument("--transfer-eps", help="eps of the transfer matrix (default: where models are half broken)")
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")


def _add_corruption_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--corruptions",
        type=split_list,
        metavar="all|LIST",
        help="also measure accuracy under these corruptions: all, or any of gaussian_noise, "
        "shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur, snow, "
        "frost, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression; "
        "without --attacks, no attack runs (--attacks none says so too)",
    )
    group.add_argument(
        "--severities",
        type=split_list,
        metavar="1,...,5",
        help="corruption severities, 1 (mildest) to 5 (default 1,2,3,4,5)",
    )
    group.add_argument(
        "--corruption-baseline",
        metavar="MODEL",
        help="the model whose errors normalise the corruption errors (CE, mCE), by label (default: the first --model)",
    )


def _add_experiment_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--epochs", type=int, help="training epochs for a classic model name (default 10)")
    group.add_argument("--experiment", help="experiment name: files go to <experiments-dir>/<NAME> (default: default)")
    group.add_argument("--experiments-dir", type=Path, help="root of the experiments (default: experiments)")
    group.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: the one the experiment's search recorded, else its mlflow.db)",
    )
    group.add_argument("--no-tracking", action="store_true", default=None, help="do not log to MLflow")


def _parse_eps(config: AttackCommandConfig, default: str):
    from attacks import AttackConfigError, parse_eps_sweep

    linf = config.eps if config.eps is not None else default
    try:
        return parse_eps_sweep(linf if config.eps_l2 is None else {"Linf": linf, "L2": config.eps_l2})
    except AttackConfigError as error:
        raise UserError(str(error)) from None


def _parse_corruptions(config: AttackCommandConfig) -> tuple[list[str] | None, list[int] | None]:
    """The corruptions and severities asked for (None when none), checked before any work."""
    from attacks import CorruptionConfigError, parse_corruptions, parse_severities

    if not config.corruptions:
        if "severities" in config.model_fields_set or config.corruption_baseline:
            raise UserError("--severities and --corruption-baseline need --corruptions (all, or a list)")
        return None, None
    try:
        return parse_corruptions(config.corruptions), parse_severities(config.severities)
    except CorruptionConfigError as error:
        raise UserError(str(error)) from None


def _runs_attacks(config: AttackCommandConfig) -> bool:
    """Attacks run unless ``--attacks none``, or corruptions were asked for and attacks not."""
    if [a.lower() for a in config.attacks] == ["none"]:
        if not config.corruptions:
            raise UserError("--attacks none leaves nothing to evaluate; add --corruptions all (or a list)")
        return False
    return "attacks" in config.model_fields_set or not config.corruptions


def _parse_attacks(config: AttackCommandConfig) -> list[AttackSpec]:
    from attacks import AttackConfigError, parse_attacks

    try:
        if config.transfer_attack is not None:  # checked now, not after every model was attacked
            parse_attacks(config.transfer_attack)
        return parse_attacks(config.attacks, targeted=config.targeted or None, steps=config.steps)
    except AttackConfigError as error:
        raise UserError(str(error)) from None


def _reconstruct(config: AttackCommandConfig, dataset: str) -> str:
    """The resolved options as one command line (used when the typed one is unknown)."""
    import shlex

    words = [
        "nasbench",
        "attack",
        "--model",
        ",".join(config.model),
        "--dataset",
        dataset,
        "--attacks",
        ",".join(config.attacks),
        "--n",
        str(config.n),
        "--seed",
        str(config.seed),
        "--epochs",
        str(config.epochs),
        "--experiment",
        config.experiment,
    ]
    if config.eps is not None:
        words += ["--eps", ",".join(config.eps)]
    if config.eps_l2 is not None:
        words += ["--eps-l2", ",".join(config.eps_l2)]
    if config.targeted:
        words.append("--targeted")
    if config.steps is not None:
        words += ["--steps", str(config.steps)]
    if config.data_dir is not None:
        words += ["--data-dir", str(config.data_dir)]
    if config.corruptions:
        words += ["--corruptions", ",".join(config.corruptions), "--severities", ",".join(config.severities)]
        if config.corruption_baseline:
            words += ["--corruption-baseline", config.corruption_baseline]
    if config.experiments_dir != Path("experiments"):
        words += ["--experiments-dir", str(config.experiments_dir)]
    return shlex.join(words)


def _check_model_store(models: list[str], store_uri: str) -> None:
    """A logged model (runs:/, models:/) from a local store that does not exist: one clear
    line, before MLflow would create an empty store while looking for it."""
    from nasbench.model_loading import MODEL_URI_PREFIXES
    from nasbench.tracking import missing_local_store

    logged = [model for model in models if model.strip().startswith(MODEL_URI_PREFIXES)]
    missing = missing_local_store(store_uri) if logged else None
    if missing is not None:
        raise UserError(
            f"cannot load {logged[0]}: no MLflow store at {missing} (give --tracking-uri, or the "
            "--experiment whose search logged it)"
        )


def _load_data_and_models(config: AttackCommandConfig, experiment_dir: Path, store_uri: str, console):
    """The dataset, the eps sweep and the models: checkpoints first, since the data defaults
    to the one they were trained on (nasbench.evaluation.choose_dataset)."""
    from nasbench.evaluation import GREYSCALE_EPS, default_eps
    from nasbench.model_loading import choose_dataset, load_chosen_dataset, load_models, load_saved_models

    saved = load_saved_models(config.model, experiment_dir=experiment_dir, tracking_uri=store_uri)
    choice = choose_dataset(config.dataset, config.data_dir, [info for _, info in saved.values()])
    _parse_eps(config, GREYSCALE_EPS)  # a bad --eps is refused before the data is loaded
    dataset = load_chosen_dataset(choice, download=config.download, seed=config.seed, val_fraction=config.val_fraction)
    eps = _parse_eps(config, default_eps(dataset))
    origin = f" (the data {choice.recorded_by} was trained on)" if choice.recorded_by else ""
    console.print(f"[bold]data[/] {dataset.summary()}{origin}", soft_wrap=True, highlight=False)

    def show_epoch(metrics: dict) -> None:
        console.print(
            f"  epoch {metrics['epoch']:>3}/{config.epochs}  loss {metrics['train_loss']:.4f}  "
            f"val {metrics['val_acc']:.2%}"
        )

    models = load_models(
        config.model,
        dataset,
        loaded=saved,
        experiment_dir=experiment_dir,
        epochs=config.epochs,
        seed=config.seed,
        device=config.device,
        tracking_uri=store_uri,
        on_epoch=show_epoch,
    )
    if config.n > len(dataset.test):
        console.print(
            f"[yellow]note[/]: the {dataset.name} test split has {len(dataset.test)} points; "
            f"attacking all of them (asked for {config.n})"
        )
    return dataset, eps, models


@contextmanager
def removed_if_left_empty(directory: Path) -> Iterator[None]:
    """Folders up to ``directory`` that do not exist yet are removed again if the block
    fails and leaves them empty; a folder that holds any file is never touched."""
    created = [folder for folder in (directory, *directory.parents) if not folder.exists()]
    try:
        yield
    except BaseException:
        for folder in (folder for folder in created if folder.is_dir()):  # the deepest first
            for inner in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _remove_if_empty(inner)
            _remove_if_empty(folder)
        raise


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # refuses a folder that is not empty


@dataclass
class AttackPlan:
    """What the options ask for, checked before any data or model is loaded."""

    specs: list[AttackSpec]  # empty: no attack runs, the corruptions alone
    corruptions: list[str] | None
    severities: list[int] | None
    transfer_eps: float | None
    experiment_dir: Path
    store_uri: str  # the store the experiment's search tracked to (also where models:/ URIs are looked up)


def _plan(config: AttackCommandConfig) -> AttackPlan:
    """A GPU asked for and not here, a model or attack that does not exist, a store that is
    missing: each is said before any work."""
    from nasbench.evaluation import parse_one_eps
    from nasbench.experiment import experiment_path
    from nasbench.model_loading import model_source
    from nasbench.tracking import default_tracking_uri, experiment_tracking_uri, missing_local_store
    from nasbench.train import select_device

    select_device(config.device)
    for model in config.model:
        model_source(model)
    specs = _parse_attacks(config) if _runs_attacks(config) else []
    corruptions, severities = _parse_corruptions(config)
    transfer_eps = None if config.transfer_eps is None else parse_one_eps(config.transfer_eps, "--transfer-eps")
    experiment_dir = experiment_path(config.experiment, config.experiments_dir)
    store_uri = experiment_tracking_uri(experiment_dir, config.tracking_uri)
    _check_model_store(config.model, store_uri)
    # only the experiment's own default store may be created here, never one the search recorded
    recorded_missing = missing_local_store(store_uri) if config.tracking_uri is None else None
    if not config.no_tracking and recorded_missing and store_uri != default_tracking_uri(experiment_dir):
        raise UserError(
            f"experiment {config.experiment} was tracked to {store_uri}, and that store does not exist "
            "(give --tracking-uri, or --no-tracking)"
        )
    return AttackPlan(specs, corruptions, severities, transfer_eps, experiment_dir, store_uri)


def _evaluate(config: AttackCommandConfig, plan: AttackPlan, argv: list[str] | None) -> list[ModelEvaluation]:
    """Load the data and the models, attack them with a progress bar on stderr, and write
    (and track) the evaluation bundles."""
    from rich.console import Console

    from nasbench.command_line import command_line
    from nasbench.evaluation import evaluate_models
    from nasbench.tracking import TrackingConfig

    console = Console(stderr=True)
    with removed_if_left_empty(plan.experiment_dir):
        dataset, eps, models = _load_data_and_models(config, plan.experiment_dir, plan.store_uri, console)
        tracking = None
        if not config.no_tracking:
            plan.experiment_dir.mkdir(parents=True, exist_ok=True)
            tracking = TrackingConfig(plan.store_uri, config.experiment)
        with attack_progress(console) as progress:
            return evaluate_models(
                models,
                dataset,
                plan.specs,
                eps,
                config.n,
                config.targeted,
                config.seed,
                plan.experiment_dir,
                tracking,
                batch_size=config.batch_size,
                device=config.device,
                keep_examples=config.keep_examples,
                checks=config.checks,
                command=command_line(argv) or _reconstruct(config, dataset.name),
                transfer_attack=config.transfer_attack,
                transfer_eps=plan.transfer_eps,
                progress=progress,
                corruptions=plan.corruptions,
                severities=plan.severities or [1, 2, 3, 4, 5],
                corruption_baseline=config.corruption_baseline,
            )


def _print_files(out: Console, evaluations: list[ModelEvaluation], store_uri: str, transfer_path: Path | None) -> None:
    """Where each bundle went, its MLflow run and its benchmark-store row; paths are
    printed unwrapped so they can be copied."""
    out.print("\n[bold]files[/]")
    for evaluation in evaluations:
        files = ", ".join(
            name
            for name in ("evaluation.json", "examples.safetensors", "grid.png")
            if (evaluation.directory / name).is_file()
        )
        out.print(f"  {evaluation.directory}/ ({files})", soft_wrap=True, highlight=False)
        if evaluation.mlflow_run_id:
            out.print(f"    MLflow run {evaluation.mlflow_run_id} ({store_uri})", soft_wrap=True, highlight=False)
        if evaluation.info.store_key is not None:
            out.print(f"    benchmark store: {evaluation.store_status}", soft_wrap=True, highlight=False)
    if transfer_path is not None:
        out.print(f"  {transfer_path}", soft_wrap=True, highlight=False)


def run(args: argparse.Namespace) -> int:
    config = resolve(AttackCommandConfig, args)

    import json

    from rich.console import Console

    plan = _plan(config)
    evaluations = _evaluate(config, plan, getattr(args, "argv", None))
    out = Console()
    print_evaluations(out, evaluations)
    transfer_path = plan.experiment_dir / "evaluations" / "transfer.json"
    shows_transfer = len(evaluations) > 1 and transfer_path.is_file()
    if shows_transfer:
        print_transfer(out, json.loads(transfer_path.read_text()))
    _print_files(out, evaluations, plan.store_uri, transfer_path if shows_transfer else None)
    out.print(
        f"report: nasbench report --experiment {config.experiment}"
        + (f" --experiments-dir {config.experiments_dir}" if config.experiments_dir != Path("experiments") else ""),
        soft_wrap=True,
        highlight=False,
    )
    return 0
