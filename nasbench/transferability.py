"""The transferability matrix of an evaluation (Papernot et al. 2016): the accuracy of each
model on adversarial examples crafted on each other one, at one attack and eps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasbench.errors import UserError
from nasbench.evaluation_bundle import write_json

if TYPE_CHECKING:  # attacks loads torch
    from attacks import AttackSpec, RobustnessReport

__all__ = ["transfer_setting", "write_transfer_matrix"]

# The attacks that follow the gradient of the model they are run on: their examples can
# be carried to another model.
WHITE_BOX = ("fgsm", "bim", "pgd", "mifgsm", "pgdl2", "apgd", "apgd-t")


def _default_attack(threat: dict[str, Any]) -> AttackSpec | None:
    """The first white-box attack of the run other than FGSM (FGSM when it is the only one)."""
    from attacks import parse_attacks

    gradient = [a for a in threat["attacks"] if a["name"] in WHITE_BOX]
    chosen = next((a for a in gradient if a["name"] != "fgsm"), gradient[0] if gradient else None)
    if chosen is None:
        return None
    return parse_attacks([f"{chosen['name']}:steps={chosen['steps']}" if chosen.get("steps") else chosen["name"]])[0]


def _half_broken_eps(reports: list[RobustnessReport], norm: str) -> float | None:
    """The sweep eps where the models' mean worst-case robust accuracy is nearest half their
    mean clean accuracy; None when the sweep has no eps > 0 in ``norm``."""
    sweep = sorted({w.eps for report in reports for w in report.worst_case if w.norm == norm and w.eps > 0})
    if not sweep:
        return None
    clean = sum(report.clean_accuracy for report in reports) / len(reports)

    def mean_robust(value: float) -> float:
        accs = [
            w.robust_accuracy
            for report in reports
            for w in report.worst_case
            if w.norm == norm and abs(w.eps - value) < 1e-12
        ]
        return sum(accs) / max(len(accs), 1)

    return min(sweep, key=lambda value: (abs(mean_robust(value) - clean / 2), value))


def transfer_setting(
    reports: list[RobustnessReport], attack: str | None, eps: float | None
) -> tuple[AttackSpec | None, float | None, str]:
    """The attack and eps of the transfer matrix, and why: ``(spec, eps, why)``, with
    ``spec`` None when the run has nothing to transfer.

    Default: the first white-box attack of the run (cheapest first) at the sweep eps
    where the models' mean worst-case robust accuracy is nearest half their mean clean
    accuracy. At a much larger eps every source breaks every target and the matrix
    is all zeros; at a much smaller one nothing breaks and it is all clean accuracy.
    """
    from attacks import parse_attacks

    spec = parse_attacks(attack)[0] if attack is not None else _default_attack(reports[0].threat_model)
    if spec is None:
        return None, None, "no white-box attack in this run"
    if eps is not None:
        return spec, float(eps), "given"
    chosen = _half_broken_eps(reports, spec.norm)
    if chosen is None:
        return None, None, f"no {spec.norm} eps > 0 in the sweep"
    return spec, chosen, "the sweep eps where mean worst-case robust accuracy is nearest half the clean accuracy"


def write_transfer_matrix(
    path: Path,
    models: dict[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    setting: tuple[AttackSpec, float, str],
    *,
    batch_size: int,
    seed: int,
    about: dict[str, Any],
) -> dict[str, Any]:
    """Attack every model in ``models`` with the ``setting`` of :func:`transfer_setting`,
    carry its examples to every model, and write the matrix with ``about`` (the dataset,
    the command, the evaluation runs) to ``path``; returns what was written."""
    from attacks import AttackConfigError, transfer_matrix

    spec, eps, why = setting
    try:
        matrix = transfer_matrix(models, x, y, spec, eps, batch_size=batch_size, seed=seed)
    except AttackConfigError as error:
        raise UserError(f"transfer attack: {error}") from None
    matrix.update({"norm": spec.norm, "attack_label": spec.label, "eps_choice": why, "seed": seed, **about})
    write_json(path, matrix)
    return matrix
