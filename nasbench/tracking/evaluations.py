"""Attack and report runs, linked to the run of the model they evaluated."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nasbench.tracking.batch import _as_float, _BatchWriter, _clip, flatten
from nasbench.tracking.client import _client, ensure_experiment
from nasbench.tracking.names import _MAX_TAG_VALUE, TAG_MODEL_RUN, TAG_REASON, TAG_ROLE, TrackingConfig

_NORM_NAMES = {
    "linf": "linf",
    "inf": "linf",
    "l_inf": "linf",
    "l2": "l2",
    "2": "l2",
    "l1": "l1",
    "1": "l1",
    "l0": "l0",
    "0": "l0",
}


def robust_metric_name(attack: str, norm: str, eps: float) -> str:
    """``robust_acc.<attack>.<norm>.eps_<eps:.4f>``, e.g. ``robust_acc.pgd.linf.eps_0.0314``.

    Fixed decimals make the UI's alphabetical metric list sort by eps within an attack
    and norm, and the same eps always maps to the same name across runs.
    """
    attack_name = re.sub(r"[^a-z0-9_-]+", "_", str(attack).strip().lower()).strip("_")
    if not attack_name:
        raise ValueError(f"attack name {attack!r} has no usable characters")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, not {eps}")
    return f"robust_acc.{attack_name}.{norm_name(norm)}.eps_{eps:.4f}"


def norm_name(norm: str) -> str:
    """``"Linf"``, ``"inf"``, ``"L_inf"`` -> ``"linf"``; ``"L2"`` -> ``"l2"``."""
    key = str(norm).strip().lower().replace("-", "_")
    if key not in _NORM_NAMES:
        raise ValueError(f"unknown norm {norm!r}: use one of linf, l2, l1, l0")
    return _NORM_NAMES[key]


class EvaluationRecorder:
    """What an attack or report run logs. Created by :func:`evaluation_run`."""

    def __init__(self, client, run_id: str):
        self.client = client
        self.run_id = run_id
        self._writer = _BatchWriter(client, run_id, flush_seconds=math.inf)

    def log_robustness(self, results: list[dict]) -> dict[str, float]:
        """One metric per attack and eps, plus per norm and eps the worst case over attacks.

        ``results`` holds dicts with ``attack``, ``norm``, ``eps``, ``accuracy``. Returns the
        metrics it logged.
        """
        logged: dict[str, float] = {}
        worst: dict[tuple[str, float], float] = {}
        for result in results:
            accuracy = _as_float(result["accuracy"])
            if accuracy is None:
                continue
            logged[robust_metric_name(result["attack"], result["norm"], result["eps"])] = accuracy
            key = (norm_name(result["norm"]), round(float(result["eps"]), 4))
            worst[key] = min(worst.get(key, accuracy), accuracy)
        for (norm, eps), accuracy in worst.items():
            logged[robust_metric_name("worst", norm, eps)] = accuracy
        self._writer.metrics_from(logged)
        self._writer.flush()
        return logged

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        self._writer.metrics_from(metrics, step=step)
        self._writer.flush()

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, _clip(str(value), _MAX_TAG_VALUE))

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)


@contextmanager
def evaluation_run(
    cfg: TrackingConfig, *, model_run_id: str | None, name: str, params: dict, role: str = "evaluation"
) -> Iterator[EvaluationRecorder]:
    """A run for an attack (``role`` "evaluation") or a report (``role`` "report"),
    linked to the run of the model it evaluated.

    The link is the tag ``nasbench.model_run_id``; search the evaluations of a model
    with ``tags.`nasbench.model_run_id` = '<run id>'``. Ends FINISHED, or FAILED (KILLED
    on Ctrl-C) when an exception escapes.
    """
    client = _client(cfg.tracking_uri)
    experiment_id = ensure_experiment(cfg)
    tags = {TAG_ROLE: role}
    if model_run_id is not None:
        tags[TAG_MODEL_RUN] = model_run_id
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    recorder = EvaluationRecorder(client, run_id)
    for key, value in flatten(params).items():
        recorder._writer.param(key, value)
    recorder._writer.flush()
    try:
        yield recorder
    except BaseException as error:
        recorder._writer.tag(TAG_REASON, f"{type(error).__name__}: {error}")
        recorder._writer.flush()
        client.set_terminated(run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    else:
        recorder._writer.flush()
        client.set_terminated(run_id, "FINISHED")
