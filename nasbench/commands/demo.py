"""The main job on the embedded default data, end to end.

1. a robustness-aware architecture search on `digits` (macro space; objectives:
   validation accuracy and robust accuracy under FGSM; Ray Tune + Optuna, 2 trials at a
   time);
2. classic baselines (LeNet-5 and the CIFAR ResNet-20) trained on the same data;
3. attacks (FGSM, PGD, Square at several eps) on the top architectures found and on
   the baselines, with the per-example worst case, the sanity checks and a
   transferability matrix; and their accuracy under the 15 common corruptions of
   Hendrycks & Dietterich 2019 (at severities 1, 3 and 5 by default, to stay quick),
   with the corruption errors relative to the first baseline (LeNet-5);
4. the HTML robustness report.

Everything lands in MLflow and in the benchmark store of the experiment
(experiments/<NAME>/). At the end it prints where the report is and the one command
that opens the dashboard.

Examples:
  nasbench demo
  nasbench demo --trials 24 --epochs 10 --experiment demo-long
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from nasbench.config import Device, StrictModel, add_config_argument, resolve, split_list
from nasbench.console import attack_progress, print_evaluations, print_summary
from nasbench.errors import UserError

if TYPE_CHECKING:  # torch, Ray and MLflow are imported by run, so that `nasbench --help` answers at once
    from rich.console import Console
    from torch import nn

    from attacks import AttackSpec, EpsSweep
    from nasbench.data import Dataset
    from nasbench.evaluation import ModelEvaluation
    from nasbench.model_loading import ModelInfo
    from nasbench.search import SearchSummary
    from nasbench.tracking import TrackingConfig

HELP = "search, attack and report on the embedded digits data, end to end"


class DemoConfig(StrictModel):
    experiment: str | None = None
    experiments_dir: Path = Path("experiments")
    trials: int = Field(12, ge=2, le=10_000)
    concurrency: int = Field(2, ge=1, le=256)
    epochs: int = Field(8, ge=1, le=1000)
    top: int = Field(2, ge=1, le=20)
    baselines: list[str] = ["lenet5", "resnet20"]
    # Square's 5,000-query default costs minutes per model and eps on two CPU cores: the demo
    # runs it with 1,000 queries (the report's threat model states the budget).
    attacks: list[str] = ["fgsm", "pgd", "square:queries=1000"]
    eps: str = "0,0.05,0.1,0.2,0.3"  # MNIST-style radii: on 8x8 digits, curves reach zero by 0.3
    n: int = Field(200, ge=10)
    # the 15 corruptions at three of the five severities: the demo's corruption stage stays
    # a few seconds per model on two CPU cores
    corruptions: list[str] = ["all"]
    severities: list[str] = ["1", "3", "5"]
    seed: int = Field(0, ge=0)
    device: Device = "auto"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--experiment", help="experiment name (default demo-<date>-<time>)")
    parser.add_argument("--experiments-dir", type=Path, help="where experiments live (default experiments)")
    parser.add_argument("--trials", type=int, help="search trials (default 12)")
    parser.add_argument("--concurrency", type=int, help="trials at a time (default 2)")
    parser.add_argument("--epochs", type=int, help="training epochs per trial and per baseline (default 8)")
    parser.add_argument("--top", type=int, help="found architectures to attack (default 2)")
    parser.add_argument("--baselines", type=split_list, help="classic models (default lenet5,resnet20)")
    parser.add_argument("--attacks", type=split_list, help="attacks (default fgsm,pgd,square:queries=1000)")
    parser.add_argument("--eps", help="Linf radii (default 0,0.05,0.1,0.2,0.3)")
    parser.add_argument("--n", type=int, help="test points attacked per model (default 200)")
    parser.add_argument(
        "--corruptions",
        type=split_list,
        help="common corruptions, all or a list (default all; see nasbench attack --help)",
    )
    parser.add_argument("--severities", type=split_list, help="corruption severities (default 1,3,5)")
    parser.add_argument("--seed", type=int, help="seed of splits, search and attacks (default 0)")
    parser.add_argument("--device", help="auto (default), cpu, cuda")


def found_architectures(summary: SearchSummary, top: int) -> list[str]:
    """Checkpoints of the ``top`` architectures to attack: the Pareto front first (as the
    search exported it), then, when the front is smaller, the next best by validation
    accuracy from the experiment's benchmark store."""
    from nasbench.store import Benchmark

    sources = [str(path) for path in summary.exported[:top]]
    taken = {row["arch_hash"] for row in summary.best[: len(sources)]}
    with Benchmark(summary.experiment_dir / "benchmark.db") as store:
        for row in store.top(top + len(taken), by="val_acc"):
            checkpoint = summary.experiment_dir / "checkpoints" / row["arch_hash"][:16]
            if len(sources) < top and row["arch_hash"] not in taken and checkpoint.is_dir():
                sources.append(str(checkpoint))
                taken.add(row["arch_hash"])
    return sources


def run(args: argparse.Namespace) -> int:
    config = resolve(DemoConfig, args)
    name = config.experiment or f"demo-{datetime.now():%Y%m%d-%H%M%S}"

    from rich.console import Console

    from nasbench.report import build_report
    from nasbench.tracking import TrackingConfig, default_tracking_uri

    threat = _checked_threat(config)  # every name and number is checked before the search spends a minute
    console = Console(stderr=True)
    stage = StageRule(console)

    stage(1, f"search: {config.trials} architectures on digits, {config.concurrency} at a time")
    summary = _search(config, name, console)
    experiment_dir = summary.experiment_dir
    tracking = TrackingConfig(default_tracking_uri(experiment_dir), experiment_dir.name)

    found = found_architectures(summary, config.top)
    stage(2, f"models: {len(found)} found + baselines {', '.join(config.baselines)}")
    dataset, models = _load_models(config, found, experiment_dir, tracking, console)

    stage(
        3,
        f"attacks: {', '.join(config.attacks)} at eps {config.eps}, and {len(threat.corruptions)} corruptions at "
        f"severities {','.join(map(str, threat.severities))}, on {config.n} test points per model",
    )
    evaluations = _evaluate(config, threat, models, dataset, experiment_dir, tracking, args.argv, console)
    out = Console()
    print_evaluations(out, evaluations)

    stage(4, "report")
    report = build_report(experiment_dir, experiment_dir / "report.html", tracking=tracking)

    console.rule(f"[bold]done in {stage.elapsed():.0f} s[/]")
    relative_dir = (
        "" if config.experiments_dir == Path("experiments") else f" --experiments-dir {config.experiments_dir}"
    )
    out.print(f"report:    {report.path}", soft_wrap=True, highlight=False)
    out.print(f"summary:   {report.json_path}", soft_wrap=True, highlight=False)
    out.print(f"dashboard: {_launcher()} ui --experiment {name}{relative_dir}", soft_wrap=True, highlight=False)
    return 0


@dataclass
class StageRule:
    """Prints the rule that opens each of the demo's four stages, with the seconds so far."""

    console: Console
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, number: int, title: str) -> None:
        # The rule holds the stage's name; what it does goes on the line below, where it
        # wraps instead of being cut to the terminal's width.
        name, _, what = title.partition(": ")
        self.console.rule(f"[bold]{number}/4 {name}[/]  ({self.elapsed():.0f} s)")
        if what:
            self.console.print(what, highlight=False)


@dataclass
class DemoThreat:
    """The attacks, radii and corruptions the demo evaluates every model under."""

    attack_specs: list[AttackSpec]
    eps: EpsSweep
    corruptions: list[str]
    severities: list[int]


def _checked_threat(config: DemoConfig) -> DemoThreat:
    """The device, the attacks, the radii, the corruptions and the baselines, each checked."""
    from attacks import (
        AttackConfigError,
        CorruptionConfigError,
        parse_attacks,
        parse_corruptions,
        parse_eps_sweep,
        parse_severities,
    )
    from nasbench.models import resolve_spec
    from nasbench.train import select_device

    select_device(config.device)
    try:
        attack_specs, eps = parse_attacks(config.attacks), parse_eps_sweep(config.eps)
        corruptions, severities = parse_corruptions(config.corruptions), parse_severities(config.severities)
    except (AttackConfigError, CorruptionConfigError) as error:
        raise UserError(str(error)) from None
    for baseline in config.baselines:
        resolve_spec(baseline)
    return DemoThreat(attack_specs, eps, corruptions, severities)


def _search(config: DemoConfig, name: str, console: Console) -> SearchSummary:
    """Stage 1: a robustness-aware search of the macro space on digits; prints its summary."""
    from nasbench.search import SearchConfig, run_search

    search = SearchConfig(
        space="macro",
        dataset="digits",
        seed=config.seed,
        epochs=config.epochs,
        trials=config.trials,
        concurrency=config.concurrency,
        sampler="tpe",
        objectives=["val_acc", "robust_acc"],
        robust_attack="fgsm",
        robust_eps=0.1,
        experiment=name,
        experiments_dir=config.experiments_dir,
        export_top=config.top,
        device=config.device,
    )
    summary = run_search(search, console=console)
    print_summary(summary, console)
    return summary


def _load_models(
    config: DemoConfig, found: list[str], experiment_dir: Path, tracking: TrackingConfig, console: Console
) -> tuple[Dataset, dict[str, tuple[nn.Module, ModelInfo]]]:
    """Stage 2: the found architectures' checkpoints, and the baselines trained on the same data."""
    from nasbench.data import load_dataset
    from nasbench.model_loading import load_models

    dataset = load_dataset("digits", seed=config.seed)

    def show_epoch(metrics: dict) -> None:
        console.print(f"  epoch {metrics['epoch']:>3}/{config.epochs}  val {metrics['val_acc']:.2%}")

    models = load_models(
        found + list(config.baselines),
        dataset,
        experiment_dir=experiment_dir,
        epochs=config.epochs,
        seed=config.seed,
        device=config.device,
        tracking_uri=tracking.tracking_uri,
        on_epoch=show_epoch,
    )
    return dataset, models


def _evaluate(
    config: DemoConfig,
    threat: DemoThreat,
    models: dict[str, tuple[nn.Module, ModelInfo]],
    dataset: Dataset,
    experiment_dir: Path,
    tracking: TrackingConfig,
    argv: list[str] | None,
    console: Console,
) -> list[ModelEvaluation]:
    """Stage 3: every model attacked and corrupted on the same test points; corruption
    errors are relative to the first baseline."""
    from nasbench.command_line import command_line
    from nasbench.evaluation import evaluate_models

    baseline = next((label for label, (_, info) in models.items() if info.kind == "classic"), None)
    with attack_progress(console) as progress:
        return evaluate_models(
            dict(models),  # evaluate_models' dict also takes a ModelInfo's fields as a plain dict
            dataset,
            threat.attack_specs,
            threat.eps,
            config.n,
            targeted=False,
            seed=config.seed,
            out_dir=experiment_dir,
            tracking=tracking,
            device=config.device,
            command=command_line(argv),
            progress=progress,
            corruptions=threat.corruptions,
            severities=threat.severities,
            corruption_baseline=baseline,
        )


def _launcher() -> str:
    """How to run nasbench again from here: the ``nasbench`` executable this demo was
    started as (``./dev demo`` runs ``.venv/bin/nasbench``) when it is not on PATH, else
    plain ``nasbench``."""
    started_as = sys.argv[0] if sys.argv else ""
    if shutil.which("nasbench") or Path(started_as).name != "nasbench":
        return "nasbench"
    return shlex.quote(started_as)
