"""The Ray runtime a search runs on: the embedded local one, or a cluster joined on purpose."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.search_config import SearchConfig


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
    """Start the embedded runtime, or join the cluster at ``address``; False if Ray was
    already running in this process.

    Without ``address`` the search always gets a runtime of its own (Ray's
    ``address="local"``): never a cluster that happens to run on this machine, and never
    a dead one that Ray's current-cluster file still names. Joining is explicit:
    ``HOST:PORT``, or ``auto`` for the cluster started on this machine with
    ``ray start --head``. Either is checked first, so a wrong address or a missing
    token is one line within seconds instead of a minute of Ray's retries.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR"
    )
    if not address:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
        return True
    address = _resolve_address(address)
    host = address.rsplit(":", 1)[0]
    if host in ("127.0.0.1", "localhost"):
        # a head bound to loopback: this driver's node is loopback too, not the
        # machine's outward address Ray would otherwise pick
        kwargs["_node_ip_address"] = "127.0.0.1"
    _check_reachable(address)
    has_token = _use_token_if_available()
    _check_token_accepted(address, has_token)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserError(f"cannot join the Ray cluster at {address}: {short_error(error)}") from None
    return True


def _resolve_address(address: str) -> str:
    """``auto`` -> the address of the cluster started on this machine; HOST:PORT as given."""
    if address != "auto":
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379) or auto")
        return address
    from ray._common.utils import get_ray_address_file

    try:
        found = Path(get_ray_address_file(None)).read_text().strip()
    except OSError:
        found = ""
    if not found:
        raise UserError(
            "--address auto: no Ray cluster was started on this machine "
            "(start one with `ray start --head`, or drop --address for a local runtime)"
        )
    return found


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"no Ray cluster answers at {address} ({reason.lower()}): start its head with "
            f"`ray start --head --port {port}`, or drop --address for a local runtime"
        ) from None


def _use_token_if_available() -> bool:
    """Send the cluster token when this machine has one.

    ``ray start --head`` turns token authentication on whenever ``~/.ray/auth_token``
    exists (every local ``ray.init()`` writes one), but Ray's driver sends the token to
    an explicit address only when ``RAY_AUTH_MODE=token`` is set. A token sent to a
    cluster without authentication is ignored, so sending it whenever there is one is
    safe. ``RAY_AUTH_MODE`` set by the user is left as it is. True if a token is sent.
    """
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # not in Ray's stub

    has_token = AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True)
    if "RAY_AUTH_MODE" in os.environ:
        return has_token and os.environ["RAY_AUTH_MODE"].lower() == "token"
    if has_token:
        os.environ["RAY_AUTH_MODE"] = "token"  # inherited by the processes Ray starts here too
        Config.initialize("")  # Ray caches its config: make it read the mode again
    return has_token


def _check_token_accepted(address: str, has_token: bool) -> None:
    """Ask the cluster's GCS for its id once; a refused token is a UserError at once."""
    from ray._raylet import InnerGcsClient  # type: ignore[attr-defined]  # not in Ray's stub
    from ray.exceptions import AuthenticationError

    try:
        with _quiet_stderr():  # Ray's C++ client logs each refusal on fd 2 as well
            InnerGcsClient.standalone(address, None, 10_000)
    except AuthenticationError:
        mine = "a different token" if has_token else "no token"
        raise UserError(
            f"the Ray cluster at {address} requires its authentication token and this machine has {mine}: "
            "copy the head's ~/.ray/auth_token here (or set RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH)"
        ) from None
    except Exception:  # noqa: BLE001 - anything else: ray.init below says it in full
        pass


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def describe_runtime(address: str | None) -> str:
    """One line naming the Ray runtime this process uses, for the search's output."""
    import ray

    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    gpus = f", {resources['GPU']:g} GPU(s)" if resources.get("GPU") else ""
    sizes = f"{nodes} node(s), {resources.get('CPU', 0):g} CPU(s){gpus}"
    gcs = ray.get_runtime_context().gcs_address
    if address:
        return f"Ray: the cluster at {gcs} ({sizes})"
    return f"Ray: a local runtime of this search at {gcs} ({sizes})"


def trial_resources(config: SearchConfig) -> dict[str, float]:
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
            print(
                f"nasbench search: warning: {problem} now; trials wait until nodes that have them join", file=sys.stderr
            )


def short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
