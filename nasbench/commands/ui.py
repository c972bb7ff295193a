"""nasbench ui: serve the MLflow dashboard over an experiment's tracking store.

Runs ``mlflow server`` on 127.0.0.1 (another interface only when --host says so) over
``experiments/<NAME>/mlflow.db``, the store ``nasbench search --experiment NAME`` fills,
or over any store given with --tracking-uri. The experiment, its search run with the
nested trial runs, their curves and artifacts are then at the printed URL; the second
link opens the experiment's runs table in MLflow's "Model training" view. An
experiment whose search tracked to a server is served there already: open that server.
Ctrl-C stops the server.

Examples:
  nasbench ui --experiment demo
  nasbench ui --experiment demo --port 5001
  nasbench ui --tracking-uri sqlite:////data/runs/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from nasbench.errors import UserError

CONFIG_AS_FLAGS = True  # --config FILE.yaml: its keys are this command's flags
HELP = "serve the MLflow dashboard (runs, curves, models) of an experiment"

STARTUP_SECONDS = 180  # a cold start imports MLflow's server stack; slow on a busy 2-core box


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--experiment",
        metavar="NAME",
        help="experiment directory under --experiments-dir (default: the only one there)",
    )
    source.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="serve this MLflow backend store instead, e.g. sqlite:////abs/path/mlflow.db",
    )
    parser.add_argument(
        "--experiments-dir",
        type=Path,
        default=Path("experiments"),
        metavar="DIR",
        help="where experiments live (default: ./experiments)",
    )
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")


def resolve_store(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The backend store URI to serve and the directory its artifacts go to (None for a
    --tracking-uri that is not a SQLite file)."""
    from nasbench.tracking import default_tracking_uri, recorded_tracking_uri

    if args.tracking_uri:
        uri = args.tracking_uri
        if _is_server(uri):
            raise UserError(
                f"{uri} is already a tracking server: open it in a browser "
                "(nasbench ui serves a local store such as sqlite:///path/mlflow.db)"
            )
        return _local_store(uri, f"from --tracking-uri {uri}")

    root: Path = args.experiments_dir
    if args.experiment is None:
        found = sorted(p.parent.name for p in root.glob("*/mlflow.db")) if root.is_dir() else []
        if len(found) != 1:
            listing = (
                f": choose one of {', '.join(found)}"
                if found
                else f"; none found in {root}/ (run 'nasbench search' first, or give --tracking-uri)"
            )
            raise UserError(f"which experiment? give --experiment NAME{listing}")
        args.experiment = found[0]
    directory = root / args.experiment
    recorded = recorded_tracking_uri(directory)  # the search's own --tracking-uri
    if recorded is not None and _is_server(recorded):
        raise UserError(f"experiment {args.experiment} is tracked at {recorded}: open that server instead")
    if recorded is not None:
        return _local_store(recorded, f"recorded in {directory / 'config.yaml'}")
    if not (directory / "mlflow.db").is_file():
        known = sorted(p.parent.name for p in root.glob("*/mlflow.db")) if root.is_dir() else []
        hint = (
            f" (experiments with a store: {', '.join(known)})"
            if known
            else f" (run 'nasbench search --experiment {args.experiment}' first)"
        )
        raise UserError(f"no MLflow store at {directory / 'mlflow.db'}{hint}")
    return default_tracking_uri(directory), directory


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _local_store(uri: str, origin: str) -> tuple[str, Path | None]:
    """A local backend store URI checked to exist (serving a missing file would create it)."""
    if not uri.startswith("sqlite:///"):
        return uri, None
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        raise UserError(f"no MLflow store at {path} ({origin})")
    return uri, path.parent


def runs_link(url: str, experiment: str) -> str | None:
    """The experiment's runs table on the running server, or None if it has no such experiment.

    MLflow 3.17's UI opens an experiment on the GenAI overview: which view it shows
    follows a per-browser switch (GenAI by default), not the experiment's
    ``mlflow.experimentKind`` tag; ``?workflowType=machine_learning`` selects "model
    training", whose runs table holds the search, its trials and the evaluations.
    """
    query = urllib.parse.urlencode({"experiment_name": experiment})
    try:
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=10) as response:
            experiment_id = json.loads(response.read())["experiment"]["experiment_id"]
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
        return None  # the store holds no such experiment (yet): the home page lists the others
    return f"{url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """Fail with one clear line if ``host:port`` cannot be bound (taken, or no such address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is already in use" if error.errno in (98, 48) else f"cannot be used ({error.strerror})"
            raise UserError(f"port {port} on {host} {reason}; pick another with --port") from None


def server_command(store_uri: str, host: str, port: int, artifacts_dir: Path | None) -> list[str]:
    """``mlflow server`` over ``store_uri``; one worker is plenty for one person's browser."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if artifacts_dir is not None:
        # Artifacts of runs logged by nasbench already sit next to the store (file URIs);
        # this only keeps anything uploaded through the UI there too, not in the cwd.
        command += ["--artifacts-destination", str((artifacts_dir / "mlartifacts").resolve())]
    return command


def server_environment() -> dict[str, str]:
    """The server's environment; the user's own settings for these win.

    MLflow's job runner serves GenAI judges and scheduled trace jobs, none of which a
    nasbench experiment has: skipping it saves a second Python process and seconds of
    start-up. Usage telemetry stays off (a local dashboard has no business phoning home).
    """
    return {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **os.environ,
        "PYTHONUNBUFFERED": "1",
    }


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll ``url/health`` until it answers; False if the server died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    return False


def run(args: argparse.Namespace) -> int:
    store_uri, directory = resolve_store(args)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    port = args.port or free_port(args.host)
    check_port(args.host, port)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{port}"

    # A plain `kill` (SIGTERM) must stop the server too, not orphan it: unwind through
    # the `finally` below like Ctrl-C does.
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # Its own process group: `mlflow server` starts uvicorn as a child, and stopping the
    # group stops both (terminating only the parent would leave the port held).
    process = subprocess.Popen(
        server_command(store_uri, args.host, port, directory), env=server_environment(), start_new_session=True
    )
    try:
        if not wait_until_up(url, process, STARTUP_SECONDS):
            code = process.poll()
            if code is None:
                raise UserError(f"the MLflow server did not answer at {url} within {STARTUP_SECONDS} s")
            raise UserError(f"the MLflow server exited with status {code} (its messages are above)")
        label = args.experiment or store_uri
        link = runs_link(url, args.experiment) if args.experiment else None
        runs = f"\nruns of {args.experiment}: {link}" if link else ""
        print(f"MLflow UI for {label}: {url}  (Ctrl-C to stop){runs}", flush=True)  # one write: seen whole
        return_code = process.wait()
        return 0 if return_code in (0, -15) else 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(process)
        signal.signal(signal.SIGTERM, previous_handler)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
