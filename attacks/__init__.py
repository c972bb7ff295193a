"""Adversarial attacks and robustness evaluation for image classifiers.

Built on torchattacks. Knows nothing of Ray, search or the platform: it takes a
``torch.nn.Module`` that maps images in [0, 1] to logits (normalising inside) and
tensors of images and labels.

- :mod:`attacks.registry`: the attacks and their validated parameters.
- :mod:`attacks.builders`: specs built into torchattacks objects.
- :mod:`attacks.eps`: radii parsed from text, per norm (:class:`EpsSweep`).
- :mod:`attacks.engine`: :func:`evaluate`, the eps sweep that never redoes work; its steps
  in :mod:`attacks.sweep`, :mod:`attacks.early_stop` and :mod:`attacks.probes`.
- :mod:`attacks.results`: what an evaluation reports (:class:`RobustnessReport`).
- :mod:`attacks.checks`: sanity checks after Carlini et al. 2019.
- :mod:`attacks.transfer`: transferability matrices.
- :mod:`attacks.adversarial_training`: PGD-AT and FGSM-RS batches for training.
- :mod:`attacks.visualize`: PNG grids of adversarial examples.
- :mod:`attacks.corruptions`: the 15 common corruptions of Hendrycks & Dietterich 2019.
- :mod:`attacks.corruption_eval`: accuracy per corruption and severity, mCE.
"""

from attacks.adversarial_training import ADVERSARIAL_TRAINING_METHODS, adversarial_batch
from attacks.builders import build_attack, build_autoattack
from attacks.checks import run_checks
from attacks.corruption_eval import (
    SEARCH_SUBSET,
    CorruptionReport,
    corruption_accuracy,
    corruption_errors,
    evaluate_corruptions,
    subset_accuracies,
)
from attacks.corruptions import (
    CORRUPTIONS,
    CorruptionConfigError,
    corrupt,
    list_corruptions,
    parse_corruptions,
    parse_severities,
)
from attacks.early_stop import iterative_attack
from attacks.engine import evaluate
from attacks.eps import EpsSweep, parse_eps, parse_eps_list, parse_eps_sweep
from attacks.errors import AttackConfigError
from attacks.registry import ATTACKS, AttackInfo, AttackSpec, list_attacks, parse_attacks
from attacks.results import AdversarialExamples, AttackResult, CheckResult, RobustnessReport, WorstCase
from attacks.transfer import transfer_matrix
from attacks.visualize import save_example_grid

__all__ = [
    "ADVERSARIAL_TRAINING_METHODS",
    "ATTACKS",
    "CORRUPTIONS",
    "CorruptionConfigError",
    "CorruptionReport",
    "SEARCH_SUBSET",
    "AdversarialExamples",
    "AttackConfigError",
    "AttackInfo",
    "AttackResult",
    "AttackSpec",
    "CheckResult",
    "EpsSweep",
    "RobustnessReport",
    "WorstCase",
    "adversarial_batch",
    "build_attack",
    "build_autoattack",
    "corrupt",
    "corruption_accuracy",
    "corruption_errors",
    "evaluate_corruptions",
    "evaluate",
    "iterative_attack",
    "list_attacks",
    "list_corruptions",
    "parse_attacks",
    "parse_eps",
    "parse_eps_list",
    "parse_eps_sweep",
    "parse_corruptions",
    "parse_severities",
    "run_checks",
    "save_example_grid",
    "subset_accuracies",
    "transfer_matrix",
]
