"""`nasbench ui` and remote tracking, against a real MLflow server on 127.0.0.1.

One server (started by `nasbench ui` as a user would) serves the module: it takes
seconds to start, so the tests share it; teardown stops it with SIGTERM and checks
that the server's whole process group is gone.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.models import build_from_spec, wrap_normalized
from nasbench.tracking import SearchRun, TrackingConfig, default_tracking_uri, trial_run

ARCH = {"kind": "macro", "layers": [{"kernel_h": 3, "kernel_w": 3, "stride": 1, "filters": 8}]}
STARTUP_TIMEOUT = 300  # a cold MLflow server start on a busy 2-core machine


class TinyDataset:
    """The attributes tracking reads from nasbench.data.Dataset, with a few real tensors."""

    def __init__(self):
        import torch

        generator = torch.Generator().manual_seed(0)
        split = type("Split", (), {})
        self.name = "tiny"
        self.train, self.val, self.test = split(), split(), split()
        for part, n in ((self.train, 40), (self.val, 10), (self.test, 10)):
            part.x = torch.rand(n, 1, 8, 8, generator=generator)
            part.y = torch.randint(0, 10, (n,), generator=generator)
        self.input_shape, self.num_classes = (1, 8, 8), 10


class _Stats:
    mean, std = (0.3,), (0.2,)


NORMALIZE = _Stats()


def fill_store(experiment_dir: Path, name: str) -> dict:
    """A search run with two nested trials: curves, final metrics, arch.json artifacts."""
    cfg = TrackingConfig(default_tracking_uri(experiment_dir), name)
    dataset = TinyDataset()
    with SearchRun(cfg, {"space": "macro", "trials": 2}) as search:
        trials = {}
        for trial_id, final in (("0", 0.8), ("1", 0.6)):
            with trial_run(
                cfg,
                search.run_id,
                trial_id,
                arch=ARCH,
                arch_hash=f"h{trial_id}",
                train_config={"epochs": 3},
                dataset=dataset,
            ) as recorder:
                for epoch in (1, 2, 3):
                    recorder.log_epoch(epoch, {"val_acc": final * epoch / 3, "train_loss": 1 / epoch})
                recorder.log_metrics({"params": 1000 + int(trial_id)})
            trials[trial_id] = recorder.run_id
        search.log_summary({"best_val_acc": 0.8}, [{"arch_hash": "h0", "val_acc": 0.8}])
    return {"parent": search.run_id, "trials": trials}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, query: str = "") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{path}{query}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    ids = fill_store(root / "demo", "demo")
    port = free_port()
    log = (root / "ui.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nasbench.cli",
            "ui",
            "--experiment",
            "demo",
            "--experiments-dir",
            str(root),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    # Ready when `nasbench ui` says so, as a user sees it: it prints the URL only after
    # the server answered its own health check (polling /health here would race that line).
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "MLflow UI for demo:" not in (root / "ui.log").read_text():
        assert process.poll() is None, (root / "ui.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "nasbench ui did not come up"
        time.sleep(0.5)
    yield {"base": base, "ids": ids, "root": root, "log": root / "ui.log"}
    process.send_signal(signal.SIGTERM)  # nasbench ui stops the server's process group
    process.wait(timeout=60)
    log.close()
    with pytest.raises(ConnectionRefusedError):  # nothing listens: no orphaned uvicorn
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_ui_serves_the_experiment_runs_and_curves_over_rest(server):
    base, ids = server["base"], server["ids"]
    assert f"MLflow UI for demo: {base}" in server["log"].read_text()
    experiment = call(base, "GET", "/api/2.0/mlflow/experiments/get-by-name", query="?experiment_name=demo")[
        "experiment"
    ]
    # and, after the URL, the experiment's runs table in the UI's model-training view
    # (MLflow 3.17 opens experiments on its GenAI overview otherwise)
    assert (
        f"runs of demo: {base}/#/experiments/{experiment['experiment_id']}/runs?workflowType=machine_learning"
        in server["log"].read_text()
    )
    runs = call(base, "POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    by_id = {run["info"]["run_id"]: run for run in runs}
    assert set(by_id) == {ids["parent"], *ids["trials"].values()}
    for trial_id, run_id in ids["trials"].items():
        tags = {tag["key"]: tag["value"] for tag in by_id[run_id]["data"]["tags"]}
        assert tags["mlflow.parentRunId"] == ids["parent"]
        assert tags["nasbench.arch_hash"] == f"h{trial_id}"
        assert by_id[run_id]["info"]["status"] == "FINISHED"

    history = call(
        base, "GET", "/api/2.0/mlflow/metrics/get-history", query=f"?run_id={ids['trials']['0']}&metric_key=val_acc"
    )["metrics"]
    assert [(m["step"], round(m["value"], 6)) for m in sorted(history, key=lambda m: m["step"])] == [
        (1, 0.266667),
        (2, 0.533333),
        (3, 0.8),
    ]
    artifacts = call(base, "GET", "/api/2.0/mlflow/artifacts/list", query=f"?run_id={ids['trials']['0']}")["files"]
    assert [f["path"] for f in artifacts] == ["arch.json"]
    parent_artifacts = {
        f["path"]
        for f in call(base, "GET", "/api/2.0/mlflow/artifacts/list", query=f"?run_id={ids['parent']}")["files"]
    }
    assert {"config.json", "best_architectures.json", "best_architectures.csv"} <= parent_artifacts
    # the UI's own artifact download route serves the file contents
    with urllib.request.urlopen(
        f"{base}/get-artifact?path=arch.json&run_uuid={ids['trials']['1']}", timeout=30
    ) as response:
        assert json.loads(response.read()) == ARCH


@pytest.mark.e2e
def test_tracking_to_a_remote_server_by_uri(server):
    """--tracking-uri http://...: the same parent/child layout, artifacts proxied by the
    server, and a registered model that loads back from it (safetensors, no pickle)."""
    import torch

    from nasbench.tracking import load_logged_model, log_model, registered_model_name

    base = server["base"]
    ids = fill_store_remote(base)
    runs = call(
        base,
        "POST",
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [ids["experiment_id"]], "filter": f"tags.`mlflow.parentRunId` = '{ids['parent']}'"},
    )["runs"]
    assert [run["info"]["run_id"] for run in runs] == [ids["trial"]]
    history = call(
        base, "GET", "/api/2.0/mlflow/metrics/get-history", query=f"?run_id={ids['trial']}&metric_key=val_acc"
    )["metrics"]
    assert sorted(m["step"] for m in history) == [1, 2]
    files = call(base, "GET", "/api/2.0/mlflow/artifacts/list", query=f"?run_id={ids['trial']}")
    assert [f["path"] for f in files["files"]] == ["arch.json"]
    # proxied artifacts land under the experiment directory, not the server's cwd
    assert list(server["root"].glob(f"demo/mlartifacts/**/{ids['trial']}/**/arch.json"))

    torch.manual_seed(0)
    cfg = TrackingConfig(base, "remote")
    spec = {"kind": "classic", "name": "lenet5"}
    model = wrap_normalized(build_from_spec(spec, (1, 8, 8), 10), NORMALIZE)
    log_model(
        cfg,
        ids["trial"],
        model,
        torch.rand(2, 1, 8, 8),
        registered_model_name(cfg),
        ["best-val"],
        arch=spec,
        meta={"mean": NORMALIZE.mean, "std": NORMALIZE.std},
    )
    restored = load_logged_model(f"models:/{registered_model_name(cfg)}@best-val", base)
    images = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(restored(images), model.eval()(images))


@pytest.mark.e2e
def test_attack_and_report_follow_the_tracking_uri_a_search_recorded(server, tmp_path, capsys):
    """An experiment whose search tracked to a server (its config.yaml records the
    --tracking-uri): `nasbench attack` loads the registered model from there and logs its
    evaluation there, `nasbench report` logs there too, `nasbench ui` points at the server,
    and none of them leaves a local mlflow.db behind."""
    import torch

    from nasbench.tracking import TAG_MODEL_RUN, log_model, registered_model_name

    base = server["base"]
    root = tmp_path / "experiments"
    (root / "followed").mkdir(parents=True)
    (root / "followed" / "config.yaml").write_text(f"dataset: digits\ntracking_uri: {base}\n")
    cfg = TrackingConfig(base, "followed")
    spec = {"kind": "classic", "name": "lenet5"}
    with (
        SearchRun(cfg, {"trials": 1}) as search,
        trial_run(cfg, search.run_id, "0", arch=spec, arch_hash="f0", train_config={}, dataset=TinyDataset()) as trial,
    ):
        pass
    torch.manual_seed(0)
    model = wrap_normalized(build_from_spec(spec, (1, 8, 8), 10), NORMALIZE)
    log_model(
        cfg,
        trial.run_id,
        model,
        torch.rand(2, 1, 8, 8),
        registered_model_name(cfg),
        ["best-val"],
        meta={"mean": NORMALIZE.mean, "std": NORMALIZE.std},
    )

    common = ["--experiment", "followed", "--experiments-dir", str(root)]
    assert (
        main(
            [
                "attack",
                "--model",
                "models:/nasbench-followed@best-val",
                "--attacks",
                "fgsm",
                "--eps",
                "0,0.1",
                "--n",
                "16",
                "--no-checks",
                *common,
            ]
        )
        == 0
    )
    assert main(["report", *common]) == 0
    capsys.readouterr()
    assert main(["ui", *common]) == 2
    error = capsys.readouterr().err
    assert error == f"nasbench ui: error: experiment followed is tracked at {base}: open that server instead\n"
    assert not (root / "followed" / "mlflow.db").exists()

    evaluations = call(
        base,
        "POST",
        "/api/2.0/mlflow/runs/search",
        {
            "experiment_ids": [search.experiment_id],
            "filter": "tags.`nasbench.role` != 'trial' AND tags.`nasbench.role` != 'search'",
        },
    )["runs"]
    tags = {run["info"]["run_name"]: {t["key"]: t["value"] for t in run["data"]["tags"]} for run in evaluations}
    assert set(tags) == {"attack lenet5", "report"}
    assert tags["attack lenet5"][TAG_MODEL_RUN] == trial.run_id  # linked to the model's trial run
    assert tags["report"]["nasbench.covers_runs"] and tags["report"]["nasbench.role"] == "report"


def fill_store_remote(base: str) -> dict:
    cfg = TrackingConfig(base, "remote")
    with (
        SearchRun(cfg, {"trials": 1}) as search,
        trial_run(
            cfg, search.run_id, "0", arch=ARCH, arch_hash="r0", train_config={}, dataset=TinyDataset()
        ) as recorder,
    ):
        recorder.log_epoch(1, {"val_acc": 0.5})
        recorder.log_epoch(2, {"val_acc": 0.7})
    return {"experiment_id": search.experiment_id, "parent": search.run_id, "trial": recorder.run_id}


# -- bad input: one line on stderr, exit status 2, no server started -----------------------


def test_ui_without_a_store_is_a_user_error(tmp_path, capsys):
    assert main(["ui", "--experiment", "nope", "--experiments-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no MLflow store at" in error and "nope" in error

    assert main(["ui", "--experiments-dir", str(tmp_path)]) == 2
    assert "none found" in capsys.readouterr().err

    assert main(["ui", "--tracking-uri", "http://127.0.0.1:5000"]) == 2
    assert "already a tracking server" in capsys.readouterr().err

    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path}/missing.db"]) == 2
    assert "no MLflow store" in capsys.readouterr().err


def test_ui_serves_the_local_store_a_search_recorded(tmp_path, capsys):
    """A search's --tracking-uri (in config.yaml) decides what `nasbench ui --experiment`
    serves: a SQLite store elsewhere is served; a server is pointed at, not served again."""
    import argparse

    from nasbench.commands.ui import resolve_store

    elsewhere = tmp_path / "shared"
    elsewhere.mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "config.yaml").write_text(f"tracking_uri: sqlite:///{elsewhere}/mlflow.db\n")
    assert main(["ui", "--experiment", "local", "--experiments-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"no MLflow store at {elsewhere}/mlflow.db (recorded in" in error
    assert not (elsewhere / "mlflow.db").exists() and not (tmp_path / "local" / "mlflow.db").exists()

    (elsewhere / "mlflow.db").touch()
    args = argparse.Namespace(tracking_uri=None, experiment="local", experiments_dir=tmp_path)
    assert resolve_store(args) == (f"sqlite:///{elsewhere}/mlflow.db", elsewhere)

    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "config.yaml").write_text("tracking_uri: http://10.0.0.5:5000\n")
    assert main(["ui", "--experiment", "remote", "--experiments-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "experiment remote is tracked at http://10.0.0.5:5000: open that server instead" in error
    assert not (tmp_path / "remote" / "mlflow.db").exists()


def test_attack_of_a_logged_model_without_its_store_is_a_user_error(tmp_path, capsys):
    """models:/ from an experiment with no store: one line, and no empty mlflow.db made
    while looking (MLflow creates a SQLite store on first contact)."""
    code = main(
        [
            "attack",
            "--model",
            "models:/nasbench-none@best-val",
            "--attacks",
            "fgsm",
            "--eps",
            "0,0.1",
            "--n",
            "16",
            "--experiment",
            "none",
            "--experiments-dir",
            str(tmp_path),
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert f"no MLflow store at {(tmp_path / 'none').resolve()}/mlflow.db" in error
    assert not (tmp_path / "none").exists()


def test_ui_on_a_busy_port_is_a_user_error(tmp_path, capsys):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "mlflow.db").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--experiments-dir", str(tmp_path), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in error and error.count("\n") == 1
