"""The Ray runtime a search runs on: the embedded local one, or a cluster joined on purpose."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from nasbench.errors import UserError

if TYPE_CHECKING:
    from nasbench.search import SearchConfig


def configure_ray_environment() -> None:
    """Before Ray Tune is imported: no automatic CSV/JSON/TensorBoard loggers per result,
    the classic (quiet) output engine, no strict metric checks (failed trials report no
    objective), no trial-level checkpoint syncing.

    ``TUNE_MAX_PENDING_TRIALS_PG`` is left to Tune ("auto": the concurrency limit), so
    the actors of the first ``concurrency`` trials start side by side; with 1 each
    actor waited for the previous one to be up (seconds per worker on 2 cores)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000000")


def ensure_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Join ``address`` or start the embedded runtime; False if Ray was already running."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                                  logging_level="ERROR")
    if address:
        host = address.split("://")[-1].rsplit(":", 1)[0]
        if host in ("127.0.0.1", "localhost"):
            # a head bound to loopback: this driver's node is loopback too, not the
            # machine's outward address Ray would otherwise pick
            kwargs["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UserError(f"cannot join the Ray cluster at {address}: {short_error(error)}") from None
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
    return True


def trial_resources(config: "SearchConfig") -> dict[str, float]:
    """What each trial asks Ray for; a fractional GPU shares it with other trials."""
    resources = {"cpu": config.cpus_per_trial}
    if config.gpus_per_trial:
        resources["gpu"] = config.gpus_per_trial
    return resources


def check_resources_fit(resources: dict[str, float], cluster: bool = False) -> None:
    """A trial asking for more than the Ray runtime has would wait forever: a UserError.

    On a cluster (``--address``) an autoscaler may still add nodes, so there it is a
    warning on stderr instead.
    """
    import ray

    available = ray.cluster_resources()
    for name, flag in (("cpu", "--cpus-per-trial"), ("gpu", "--gpus-per-trial")):
        asked, has = resources.get(name, 0.0), available.get(name.upper(), 0.0)
        if asked > has:
            problem = f"each trial asks for {asked:g} {name.upper()}(s) ({flag}), but the Ray cluster has {has:g}"
            if not cluster:
                raise UserError(problem)
            print(f"nasbench search: warning: {problem} now; trials wait until nodes that have them join",
                  file=sys.stderr)


def short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
