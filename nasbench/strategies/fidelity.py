"""The fidelity ladder: what a trial measures at the rungs of a multi-objective scheduler.

Successive halving compares trials after few epochs; when robust accuracy is an
objective, measuring it there with the final attack would spend most of a stopped
trial's cost on attacks. So rungs use a cheaper attack (``rung_attack``, FGSM by
default: one gradient step, Goodfellow et al. 2015) and the final objective the
configured one (``robust_attack``, e.g. PGD-k, Madry et al. 2018), at the same eps on
the same validation images. Params and MACs are measured at the rungs too (they do not
change in training). The rung attack and rung epochs are part of the search's config
(and so of its MLflow parameters).
"""

from __future__ import annotations

from typing import Any

from nasbench.strategies.mo_asha import bracket_count, rung_epochs
from nasbench.strategies.settings import FidelitySettings, SchedulerSettings
from nasbench.trial_context import RobustConfig, TrialContext


def schedule_milestones(config: SchedulerSettings) -> tuple[int, ...]:
    """The epochs where a search's training schedule ``rungs`` anneals and restarts: the
    rungs of its scheduler, so that each rung compares trials at the end of a finished
    short schedule. A FIFO search gets the rungs ASHA would have with the same grace
    period and reduction factor, so the two train alike.

    Raises ValueError for Ray's single-objective HyperBand, whose brackets place their
    rungs by rules of its own.
    """
    if config.scheduler != "fifo" and config.multi_objective:
        return ladder_epochs(config)
    if config.scheduler == "hyperband":
        raise ValueError(
            "schedule rungs restarts at the rungs of --scheduler asha (or of a multi-objective "
            "hyperband); a single-objective hyperband places its rungs otherwise: choose another schedule"
        )
    return tuple(rung_epochs(config.epochs, min(config.grace_period, config.epochs), config.reduction_factor))


def ladder_epochs(config: SchedulerSettings) -> tuple[int, ...]:
    """Every epoch at which some bracket of the search's scheduler checks its trials."""
    if config.scheduler == "fifo" or not config.multi_objective:
        return ()
    grace = min(config.grace_period, config.epochs)
    return tuple(
        sorted(
            {
                epoch
                for bracket in range(bracket_count(config))
                for epoch in rung_epochs(config.epochs, grace, config.reduction_factor, bracket)
            }
        )
    )


def fidelity_ladder(config: FidelitySettings) -> dict[str, Any]:
    """The trial context's ``rung_epochs`` and ``rung_robust`` for ``config``."""
    epochs = ladder_epochs(config)
    robust = None
    if epochs and "robust_acc" in config.objectives:
        robust = RobustConfig(config.rung_attack, config.robust_eps, config.robust_steps, config.robust_samples)
    return {"rung_epochs": epochs, "rung_robust": robust}


def rung_metrics(context: TrialContext, model, network, dataset, epoch: int) -> dict[str, Any]:
    """The objectives a trial reports at a rung epoch besides its validation accuracy."""
    if epoch not in context.rung_epochs:
        return {}
    metrics: dict[str, Any] = {}
    if {"params", "macs"} & set(context.objectives):
        from search_spaces import describe

        totals = describe(network, dataset.input_shape, dataset.num_classes).totals
        metrics.update(params=int(totals["params"]), macs=int(totals["macs"]))
    if context.rung_robust is not None:
        metrics["robust_acc"] = robust_accuracy(model, dataset, context.rung_robust, context.seed)
    return metrics


def robust_accuracy(model, dataset, robust: RobustConfig, seed: int) -> float:
    """Accuracy under ``robust``'s attack on the trial's fixed validation subset (the same
    images the final robust objective uses)."""
    import torch

    from attacks import evaluate

    n = min(robust.samples, len(dataset.val))
    index = torch.randperm(len(dataset.val), generator=torch.Generator().manual_seed(seed))[:n]
    x, y = dataset.val.x[index].cpu(), dataset.val.y[index].cpu()
    report = evaluate(model, x, y, robust.spec(), [robust.eps], checks=False, keep_examples=0, seed=seed)
    return float(report.robust_accuracy(robust.eps))
