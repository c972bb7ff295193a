"""Robustness evaluation of trained models: every model attacked on the same test points.

The Python API behind ``nasbench attack`` and the demo. :func:`evaluate_models` attacks
every model (see :mod:`nasbench.model_loading` for loading them) with
:func:`attacks.evaluate` on the same seeded test subset and writes one *evaluation
bundle* per model::

    <experiment_dir>/evaluations/<label>/evaluation.json     the numbers (nasbench.evaluation_record)
    <experiment_dir>/evaluations/<label>/examples.safetensors clean/adversarial tensors
    <experiment_dir>/evaluations/<label>/grid.png             clean / adversarial / amplified perturbation
    <experiment_dir>/evaluations/transfer.json                transferability matrix (two or more models)

``nasbench report`` reads nothing else. With common corruptions asked for (Hendrycks &
Dietterich 2019), every model is evaluated under them on the same points and its
corruption errors are computed against one baseline model of the same evaluation (the
mCE); without attacks, ``report`` holds the clean accuracy alone. The number to report
is the per-example worst case over all attacks (Carlini et al. 2019, "On Evaluating
Adversarial Robustness", section 4), which the engine computes.

When tracking is on, every evaluation is an MLflow run linked to the evaluated model's
run (:mod:`nasbench.evaluation_runs`); a model that came out of a search (its checkpoint
meta holds ``arch_hash``, ``dataset``, ``budget``, ``seed``) also gets its robust
accuracies written to the experiment's benchmark store (:mod:`nasbench.evaluation_store`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasbench.command_line import command_line
from nasbench.errors import UserError
from nasbench.evaluation_bundle import write_bundle_files, write_json
from nasbench.evaluation_record import EVALUATION_FILE, BundleFiles, EvaluationRecord, ModelRecord, StoreOutcome
from nasbench.evaluation_runs import log_evaluation, log_transfer
from nasbench.evaluation_store import record_in_store
from nasbench.experiment import BENCHMARK_FILE, EVALUATIONS_DIR, TRANSFER_FILE
from nasbench.model_loading import ModelInfo, safe_label
from nasbench.transferability import transfer_setting, write_transfer_matrix

if TYPE_CHECKING:
    from attacks import CorruptionReport, RobustnessReport
    from attacks.eps import EpsInput
    from nasbench.data import Dataset, Split
    from nasbench.tracking import TrackingConfig

__all__ = [
    "GREYSCALE_EPS",
    "ModelEvaluation",
    "default_eps",
    "evaluate_models",
    "parse_one_eps",
    "select_examples",
]

# Sweeps that reach zero robust accuracy. On digits (8x8, 17 grey levels) an undefended
# CNN keeps ~94% under PGD-20 at Linf 8/255, so the CIFAR-style sweep says nothing there:
# greyscale sets get MNIST-style radii (Madry et al. 2018 use 0.3).
GREYSCALE_EPS = "0,0.05,0.1,0.2,0.3"
NATURAL_IMAGE_EPS = "0,1/255,2/255,4/255,8/255"

# Progress of one model's attack batches: (label, batches done, batches in all, what runs).
Progress = Callable[[str, int, int, str], None]


def default_eps(dataset: Dataset) -> str:
    """The default Linf sweep for a dataset: MNIST-style radii for greyscale images (the
    digits, MNIST, Fashion-MNIST, and a user's own greyscale npz or image folder), the
    CIFAR-style sweep for colour images."""
    return GREYSCALE_EPS if dataset.input_shape[0] == 1 else NATURAL_IMAGE_EPS


def parse_one_eps(text: str, option: str) -> float:
    """One radius such as ``8/255`` or ``0.1`` (any norm's range) for ``option``; bad ones are UserErrors."""
    from attacks import AttackConfigError
    from attacks.eps import parse_radius

    try:
        return parse_radius(text, "L2")
    except AttackConfigError as error:
        raise UserError(f"{option}: {error}") from None


@dataclass
class ModelEvaluation:
    """One model's evaluation: the engine's report, its bundle's record and folder, where it was logged."""

    label: str
    info: ModelInfo
    report: RobustnessReport
    directory: Path
    evaluation_record: EvaluationRecord
    mlflow_run_id: str | None = None
    store_status: str | None = None

    @property
    def json_path(self) -> Path:
        return self.directory / EVALUATION_FILE

    @property
    def record(self) -> dict[str, Any]:
        """What ``evaluation.json`` holds, as a dict."""
        return self.evaluation_record.to_dict()


def select_examples(split: Split, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` points of ``split`` (all of it when smaller), in index order.

    Every model of an evaluation sees the same points, so their numbers compare.
    """
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    total = len(split.y)
    if n >= total:
        index = torch.arange(total)
    else:
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(total, generator=generator)[:n].sort().values
    return split.x[index], split.y[index], index


@dataclass
class ModelProfile:
    """Size and speed of a model: parameters, MACs, single-image latency in ms (the best
    and the mean of 20 runs) on ``latency_device``."""

    params: int
    macs: int
    latency_ms: float
    latency_mean_ms: float
    latency_device: str


def profile_model(model: nn.Module, dataset: Dataset, device: str) -> ModelProfile:
    """Parameters, MACs (search_spaces.describe) and single-image latency of ``model``."""
    from search_spaces import describe, measure_latency

    with torch.random.fork_rng():  # profiling draws random inputs: leave the caller's RNG alone
        totals = describe(model.to("cpu"), dataset.input_shape, dataset.num_classes).totals
        latency = measure_latency(model, dataset.input_shape, batch_size=1, device=device, repeats=20)
    model.to("cpu")
    # Best of 20, as timeit advises: on a shared machine the mean mostly measures the neighbours.
    return ModelProfile(
        params=int(totals["params"]),
        macs=int(totals["macs"]),
        latency_ms=latency.min_ms,
        latency_mean_ms=latency.mean_ms,
        latency_device=latency.device,
    )


@dataclass
class EvaluationSetup:
    """What every model of one evaluation shares: the points, the attacks, where results go.

    ``x``, ``y`` are the test points at ``index`` of the dataset's test split; ``device``
    is the one asked for (None or "auto": the engine's choice); ``command`` and
    ``provenance`` are recorded in every bundle.
    """

    dataset: Dataset
    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    attacks: str | list | None
    eps: EpsInput
    targeted: bool
    seed: int
    batch_size: int
    device: str | None
    keep_examples: int
    checks: bool
    out_dir: Path
    command: str
    provenance: dict[str, Any]
    progress: Progress | None = None

    @property
    def run_device(self) -> str | None:
        return None if self.device in (None, "auto") else self.device

    @property
    def root(self) -> Path:
        return self.out_dir / EVALUATIONS_DIR

    @property
    def store_path(self) -> Path:
        return self.out_dir / BENCHMARK_FILE


def _report_progress(
    progress: Progress | None, label: str, prefix: str, done: int, total: int, description: str
) -> None:
    if progress is not None:
        progress(label, done, total, prefix + description)


def _corruption_reports(
    models: dict[str, tuple[nn.Module, ModelInfo | dict]],
    setup: EvaluationSetup,
    corruptions: str | list[str] | None,
    severities: str | Sequence[int],
    baseline: str | None,
) -> dict[str, CorruptionReport]:
    """Every model under every corruption and severity, on the same points, then each one's
    corruption errors against ``baseline`` (a model label; default the first model). Empty
    when no corruption is asked for."""
    from attacks import CorruptionConfigError, corruption_errors, evaluate_corruptions

    if not corruptions:
        return {}

    labels = [safe_label(label) for label in models]
    baseline = safe_label(baseline) if baseline else labels[0]
    if baseline not in labels:
        raise UserError(f"corruption baseline {baseline!r} is not one of the evaluated models: {', '.join(labels)}")
    reports = {}
    for label, (model, _) in zip(labels, models.values(), strict=True):
        try:
            reports[label] = evaluate_corruptions(
                model,
                setup.x,
                setup.y,
                corruptions,
                severities,
                seed=setup.seed,
                batch_size=setup.batch_size,
                device=setup.run_device,
                progress=partial(_report_progress, setup.progress, label, "corruptions: "),
            )
        except CorruptionConfigError as error:
            raise UserError(str(error)) from None
        model.to("cpu")
    for report in reports.values():
        report.errors = corruption_errors(report, reports[baseline], baseline)
    return reports


def _clean_only_report(corruption: CorruptionReport, n_classes: int, batch_size: int) -> RobustnessReport:
    """The robustness report of an evaluation without attacks: the clean accuracy alone."""
    from attacks import RobustnessReport

    threat_model: dict[str, Any] = {
        "n": corruption.n,
        "targeted": False,
        "target_selection": None,
        "eps": {},
        "attacks": [],
        "seed": corruption.seed,
        "batch_size": batch_size,
        "early_stop": [],
        "cascade": [],
    }
    return RobustnessReport(
        n=corruption.n,
        n_classes=n_classes,
        clean_accuracy=corruption.clean_accuracy,
        targeted=False,
        threat_model=threat_model,
        results=[],
        worst_case=[],
        device=corruption.device,
    )


def _attack(
    setup: EvaluationSetup, model: nn.Module, label: str, corruption: CorruptionReport | None
) -> RobustnessReport:
    """The engine's robustness report of one model (the clean accuracy alone without attacks)."""
    from attacks import AttackConfigError, evaluate

    if not setup.attacks:
        assert corruption is not None  # evaluate_models refuses a run with neither
        return _clean_only_report(corruption, setup.dataset.num_classes, setup.batch_size)
    try:
        return evaluate(
            model,
            setup.x,
            setup.y,
            setup.attacks,
            setup.eps,
            batch_size=setup.batch_size,
            device=setup.run_device,
            seed=setup.seed,
            targeted=setup.targeted,
            keep_examples=setup.keep_examples,
            progress=partial(_report_progress, setup.progress, label, ""),
            checks=setup.checks,
        )
    except AttackConfigError as error:
        raise UserError(str(error)) from None


def _model_record(info: ModelInfo, profile: ModelProfile, report: RobustnessReport) -> ModelRecord:
    return ModelRecord(
        label=info.label,
        spec=info.spec,
        source=info.source,
        kind=info.kind,
        params=profile.params,
        macs=profile.macs,
        latency_ms=profile.latency_ms,
        latency_mean_ms=profile.latency_mean_ms,
        latency_device=profile.latency_device,
        clean_acc=report.clean_accuracy,
        trained_test_acc=info.meta.get("test_acc"),
        budget=info.meta.get("budget"),
        training_collapse=info.meta.get("collapse"),
        run_id=info.run_id,
        store_key=list(info.store_key) if info.store_key else None,
    )


def _evaluation_record(
    setup: EvaluationSetup,
    model: ModelRecord,
    report: RobustnessReport,
    corruption: CorruptionReport | None,
    files: BundleFiles,
) -> EvaluationRecord:
    return EvaluationRecord(
        model=model,
        dataset=setup.dataset.name,
        split="test",
        n=len(setup.y),
        indices=setup.index.tolist(),
        seed=setup.seed,
        targeted=setup.targeted,
        report=report.to_dict(),
        corruptions=corruption.to_dict() if corruption is not None else None,
        files=files,
        command=setup.command,
        versions={k: v for k, v in setup.provenance.items() if k != "git_commit"},
        git_commit=setup.provenance.get("git_commit"),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _evaluate_one(
    setup: EvaluationSetup,
    model: nn.Module,
    info: ModelInfo,
    corruption_reports: dict[str, CorruptionReport],
    tracking: TrackingConfig | None,
) -> ModelEvaluation:
    """Attack one model, write its bundle, record it in the store and log it."""
    corruption = corruption_reports.get(info.label)
    model.eval()
    profile = profile_model(model, setup.dataset, setup.device or "auto")
    report = _attack(setup, model, info.label, corruption)
    model.to("cpu")
    directory = setup.root / info.label
    files = write_bundle_files(directory, report, setup.dataset.class_names)
    record = _evaluation_record(setup, _model_record(info, profile, report), report, corruption, files)
    store_status = record_in_store(setup.store_path, info, report, corruption)
    record.store = StoreOutcome(path=str(setup.store_path), status=store_status)
    write_json(directory / EVALUATION_FILE, record.to_dict())
    run_id = log_evaluation(tracking, info, record, report, directory) if tracking is not None else None
    return ModelEvaluation(
        label=info.label,
        info=info,
        report=report,
        directory=directory,
        evaluation_record=record,
        mlflow_run_id=run_id,
        store_status=store_status,
    )


def _transfer(
    setup: EvaluationSetup,
    models: dict[str, tuple[nn.Module, ModelInfo | dict]],
    evaluations: list[ModelEvaluation],
    asked: tuple[str | None, float | None],
    tracking: TrackingConfig | None,
) -> None:
    """The transferability matrix of the evaluated models, written beside their bundles and
    logged; ``asked`` is the attack and eps the user gave (None: chosen from the sweep)."""
    spec, chosen_eps, why = transfer_setting([e.report for e in evaluations], *asked)
    if spec is None or chosen_eps is None:
        return
    path = setup.root / TRANSFER_FILE
    about = {
        "dataset": setup.dataset.name,
        "command": setup.command,
        "evaluations": {e.label: e.mlflow_run_id for e in evaluations},
    }
    matrix = write_transfer_matrix(
        path,
        {label: model for label, (model, _) in models.items()},
        setup.x,
        setup.y,
        (spec, chosen_eps, why),
        batch_size=setup.batch_size,
        seed=setup.seed,
        about=about,
    )
    if tracking is not None:
        log_transfer(tracking, matrix, path)


def _model_info(label: str, info: ModelInfo | dict) -> ModelInfo:
    """``info`` as a ModelInfo labelled with ``label`` made safe for a folder name."""
    if isinstance(info, dict):
        info = ModelInfo(**{"label": label, **info})
    info.label = safe_label(label)
    return info


def evaluate_models(
    models: dict[str, tuple[nn.Module, ModelInfo | dict]],
    dataset,
    attacks: str | list,
    eps,
    n: int,
    targeted: bool,
    seed: int,
    out_dir: str | Path,
    tracking=None,
    *,
    batch_size: int = 256,
    device: str | None = None,
    keep_examples: int = 16,
    checks: bool = True,
    command: str | None = None,
    transfer: bool = True,
    transfer_attack: str | None = None,
    transfer_eps: float | None = None,
    progress: Progress | None = None,
    corruptions: str | list[str] | None = None,
    severities: str | Sequence[int] = (1, 2, 3, 4, 5),
    corruption_baseline: str | None = None,
) -> list[ModelEvaluation]:
    """Attack every model on the same ``n`` test points and write their evaluation bundles.

    Args:
        models: ``{label: (model, info)}``; ``info`` is a :class:`ModelInfo` (or its
            fields as a dict). Models take [0, 1] images and normalise inside.
        dataset: a ``nasbench.data.Dataset``; its test split is attacked.
        attacks: ``"fgsm,pgd,square"`` or attack specs (``attacks.parse_attacks``); None or
            empty runs no attack (then ``corruptions`` must be given).
        eps: a list of radii, ``"0,0.1,0.2"``, or ``{"Linf": [...], "L2": [...]}``.
        n: points of the test split (a seeded random subset; all of it when smaller).
        targeted: aim every targeted-capable attack at one random wrong class per point.
        out_dir: the experiment directory: bundles go to ``out_dir/evaluations/<label>/``,
            the transfer matrix to ``out_dir/evaluations/transfer.json``, and robust
            accuracies of search results to the store ``out_dir/benchmark.db``.
        tracking: a ``nasbench.tracking.TrackingConfig``; None tracks nothing.
        transfer: with two or more models, also the transferability matrix (``transfer_attack``,
            ``transfer_eps``: see :func:`nasbench.transferability.transfer_setting`).
        progress: called as ``progress(label, done, total, description)`` over attack batches.
        corruptions, severities: common corruptions (``"all"`` or names, see
            ``attacks.corruptions``) at these severities, on the same points; each model's
            corruption errors (CE, mCE) are computed against ``corruption_baseline``, a
            model label (default: the first model).

    Bad attacks or eps raise :class:`UserError`. Returns one :class:`ModelEvaluation` per model.
    """
    from nasbench.provenance import collect_provenance

    x, y, index = select_examples(dataset.test, n, seed)
    setup = EvaluationSetup(
        dataset=dataset,
        x=x,
        y=y,
        index=index,
        attacks=attacks,
        eps=eps,
        targeted=targeted,
        seed=seed,
        batch_size=batch_size,
        device=device,
        keep_examples=keep_examples,
        checks=checks,
        out_dir=Path(out_dir),
        command=command or command_line() or "python: nasbench.evaluation.evaluate_models(...)",
        provenance=collect_provenance(),
        progress=progress,
    )
    if not attacks and not corruptions:
        raise UserError("nothing to evaluate: give attacks, corruptions or both")
    corruption_reports = _corruption_reports(models, setup, corruptions, severities, corruption_baseline)
    evaluations = [
        _evaluate_one(setup, model, _model_info(label, info), corruption_reports, tracking)
        for label, (model, info) in models.items()
    ]
    if transfer and len(evaluations) > 1:
        _transfer(setup, models, evaluations, (transfer_attack, transfer_eps), tracking)
    return evaluations
