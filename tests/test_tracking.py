"""MLflow tracking: parent and nested trial runs, batching, resume, models, evaluations.

Everything runs against a real MLflow SQLite store in a temporary directory; one store
is shared by the module (creating its tables costs seconds) and each test uses its own
experiment name.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from nasbench.tracking import (
    TAG_ARCH_HASH,
    TAG_MODEL_RUN,
    TAG_PARENT_RUN,
    TAG_REASON,
    TAG_STATUS,
    SearchRun,
    TrackingConfig,
    dataset_digest,
    default_tracking_uri,
    describe_dataset,
    download_logged_model,
    evaluation_run,
    experiment_tracking_uri,
    flatten,
    load_logged_model,
    log_model,
    missing_local_store,
    registered_model_name,
    robust_metric_name,
    tracking_client,
    trial_run,
)

MACRO_ARCH = {
    "kind": "macro",
    "layers": [{"kernel_h": 3, "kernel_w": 5, "stride": 1, "filters": 16, "skip": [0]}],
    "head": {"pool": "avg"},
}
TRAIN = {"epochs": 3, "lr": 0.003, "optimizer": "adamw"}


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    return default_tracking_uri(tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="module")
def digits():
    from nasbench.data import load_dataset

    return load_dataset("digits", seed=0)


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def read_artifact_json(client, run_id: str, path: str, tmp_path: Path):
    return json.loads(Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text())


# -- pure functions -----------------------------------------------------------------------


def test_default_tracking_uri_is_the_sqlite_file_inside_the_experiment_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = default_tracking_uri("experiments/demo")
    assert uri == f"sqlite:///{tmp_path.resolve()}/experiments/demo/mlflow.db"
    assert uri.startswith("sqlite:////")  # absolute: Ray workers run in other directories


def test_an_experiment_is_tracked_where_its_search_recorded(tmp_path):
    """A flag wins; else the --tracking-uri the search wrote into config.yaml; else the
    experiment's own mlflow.db. Only a missing local SQLite file counts as missing."""
    experiment = tmp_path / "exp"
    experiment.mkdir()
    assert experiment_tracking_uri(experiment) == default_tracking_uri(experiment)
    (experiment / "config.yaml").write_text("dataset: digits\ntracking_uri: null\n")
    assert experiment_tracking_uri(experiment) == default_tracking_uri(experiment)
    (experiment / "config.yaml").write_text("dataset: digits\ntracking_uri: http://10.0.0.5:5000\n")
    assert experiment_tracking_uri(experiment) == "http://10.0.0.5:5000"
    assert experiment_tracking_uri(experiment, "sqlite:////elsewhere.db") == "sqlite:////elsewhere.db"

    assert missing_local_store(default_tracking_uri(experiment)) == experiment.resolve() / "mlflow.db"
    assert missing_local_store("http://10.0.0.5:5000") is None
    (experiment / "mlflow.db").touch()
    assert missing_local_store(default_tracking_uri(experiment)) is None


def test_flatten_gives_readable_param_names():
    flat = flatten(
        {
            "layers": [{"kernel_h": 3, "skip": [0, 2]}, {"kernel_h": 5, "skip": []}],
            "head": {"pool": "avg"},
            "lr": 0.1,
            "augment": ["crop", "flip"],
        }
    )
    assert flat == {
        "layers.0.kernel_h": "3",
        "layers.0.skip": "[0, 2]",
        "layers.1.kernel_h": "5",
        "layers.1.skip": "[]",
        "head.pool": "avg",
        "lr": "0.1",
        "augment": '["crop", "flip"]',
    }


def test_robust_metric_names_sort_by_eps_and_normalise_norms():
    assert robust_metric_name("PGD", "Linf", 8 / 255) == "robust_acc.pgd.linf.eps_0.0314"
    assert robust_metric_name("autoattack", "L2", 0.5) == "robust_acc.autoattack.l2.eps_0.5000"
    eps_values = [0.3, 0.01, 0.1, 0.05, 0.2]
    names = [robust_metric_name("fgsm", "inf", eps) for eps in eps_values]
    assert sorted(names) == [robust_metric_name("fgsm", "linf", eps) for eps in sorted(eps_values)]
    for bad in [("pgd", "l3", 0.1), ("pgd", "linf", -0.1), ("pgd", "linf", math.nan), ("!!", "l2", 1)]:
        with pytest.raises(ValueError):
            robust_metric_name(*bad)


# -- a search: parent run, nested trial runs -----------------------------------------------


def test_search_run_nests_trials_with_params_curves_status_and_dataset(store_uri, digits, tmp_path):
    cfg = TrackingConfig(store_uri, "nesting")
    config = {"space": "macro", "sampler": {"name": "tpe", "seed": 0}, "trials": 3}
    search = SearchRun(cfg, config)
    with trial_run(cfg, search.run_id, "0", arch=MACRO_ARCH, arch_hash="h0", train_config=TRAIN, dataset=digits) as ok:
        for epoch in (1, 2, 3):
            ok.log_epoch(epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.25 * epoch})
        # the final metrics at the last epoch; val_acc's curve already has that point
        ok.log_metrics({"val_acc": 0.75, "params": 1234, "macs": 56789, "latency_ms": 0.42, "test_acc": None}, step=3)
        ok.set_status("ok")
    with trial_run(
        cfg, search.run_id, "1", arch=MACRO_ARCH, arch_hash="h1", train_config=TRAIN, dataset=digits
    ) as pruned:
        pruned.log_epoch(1, {"val_acc": 0.1})
        pruned.set_status("pruned", "ASHA stopped it at epoch 1")
    with (
        pytest.raises(RuntimeError, match="out of memory"),
        trial_run(cfg, search.run_id, "2", arch=MACRO_ARCH, arch_hash="h2", train_config=TRAIN, dataset=digits),
    ):
        raise RuntimeError("CUDA out of memory")
    search.log_summary(
        {"trials_done": 3, "best_val_acc": 0.75},
        [{"arch_hash": "h0", "val_acc": 0.75, "arch": MACRO_ARCH}, {"arch_hash": "h1", "val_acc": 0.1, "params": 99}],
    )
    search.end()

    client = client_for(store_uri)
    parent = client.get_run(search.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sampler.name"] == "tpe" and parent.data.params["trials"] == "3"
    assert parent.data.metrics["best_val_acc"] == 0.75
    assert read_artifact_json(client, search.run_id, "config.json", tmp_path) == config
    table = read_artifact_json(client, search.run_id, "best_architectures.json", tmp_path)
    assert table["columns"] == ["arch_hash", "val_acc", "arch", "params"]
    assert [row[0] for row in table["data"]] == ["h0", "h1"]
    assert json.loads(table["data"][0][2]) == MACRO_ARCH

    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{TAG_PARENT_RUN}` = '{search.run_id}'"
    )
    by_hash = {run.data.tags[TAG_ARCH_HASH]: run for run in children}
    assert sorted(by_hash) == ["h0", "h1", "h2"]
    assert {h: (r.info.status, r.data.tags[TAG_STATUS]) for h, r in by_hash.items()} == {
        "h0": ("FINISHED", "ok"),
        "h1": ("KILLED", "pruned"),
        "h2": ("FAILED", "failed"),
    }
    assert by_hash["h1"].data.tags[TAG_REASON] == "ASHA stopped it at epoch 1"
    assert TAG_REASON not in by_hash["h0"].data.tags  # no empty reason on a run that went well
    assert by_hash["h2"].data.tags[TAG_REASON] == "RuntimeError: CUDA out of memory"

    run = by_hash["h0"]
    assert run.info.run_name == "trial-0"
    assert run.data.params["arch.layers.0.kernel_w"] == "5"
    assert run.data.params["arch.layers.0.skip"] == "[0]"
    assert run.data.params["train.optimizer"] == "adamw"
    assert run.data.metrics["params"] == 1234 and run.data.metrics["latency_ms"] == 0.42
    assert "test_acc" not in run.data.metrics and "epoch" not in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (1, 0.25),
        (2, 0.5),
        (3, 0.75),
    ]  # no step-0 copy of the final value
    assert [m.step for m in client.get_metric_history(run.info.run_id, "params")] == [3]
    assert read_artifact_json(client, run.info.run_id, "arch.json", tmp_path) == MACRO_ARCH
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "digits"
    assert dataset_input.dataset.digest == dataset_digest(digits)
    assert json.loads(dataset_input.dataset.profile)["num_train"] == len(digits.train)


def test_a_dataset_description_logs_the_same_input_as_the_loaded_dataset(store_uri, digits):
    """What a search ships to its trials instead of the data: plain strings (which travel
    to Ray workers as they are), and the run's dataset input it gives is the one the
    loaded dataset gives."""
    import dataclasses

    cfg = TrackingConfig(store_uri, "described")
    described = describe_dataset(digits)
    assert all(isinstance(value, str) for value in dataclasses.asdict(described).values())
    search = SearchRun(cfg, {"trials": 2})
    runs = {}
    for trial_id, dataset in (("0", digits), ("1", described)):
        with trial_run(
            cfg, search.run_id, trial_id, arch=MACRO_ARCH, arch_hash=f"d{trial_id}", train_config=TRAIN, dataset=dataset
        ) as recorder:
            pass
        runs[trial_id] = client_for(store_uri).get_run(recorder.run_id)
    search.end()
    [from_data], [from_description] = (runs[t].inputs.dataset_inputs for t in ("0", "1"))
    assert from_description.dataset.to_dictionary() == from_data.dataset.to_dictionary()
    assert (from_description.dataset.name, from_description.dataset.digest) == ("digits", dataset_digest(digits))
    assert runs["1"].data.params["dataset"] == "digits"


def test_dataset_digest_tells_splits_apart(digits):
    from nasbench.data import load_dataset

    assert dataset_digest(digits) == dataset_digest(load_dataset("digits", seed=0))
    assert dataset_digest(digits) != dataset_digest(load_dataset("digits", seed=1))


def test_epoch_metrics_are_buffered_and_written_in_batches(store_uri, digits):
    cfg = TrackingConfig(store_uri, "batching")
    search = SearchRun(cfg, {"trials": 1})
    client = client_for(store_uri)
    with trial_run(
        cfg,
        search.run_id,
        "0",
        arch=MACRO_ARCH,
        arch_hash="h",
        train_config=TRAIN,
        dataset=digits,
        flush_seconds=math.inf,
    ) as recorder:
        for epoch in range(1, 26):
            recorder.log_epoch(epoch, {"train_loss": 1 / epoch, "train_acc": 0.01 * epoch, "val_acc": 0.02 * epoch})
        assert client.get_metric_history(recorder.run_id, "val_acc") == []  # nothing written yet
        batches_before_exit = recorder._writer.batches_written
    history = client.get_metric_history(recorder.run_id, "val_acc")
    assert sorted(m.step for m in history) == list(range(1, 26))
    assert len(client.get_metric_history(recorder.run_id, "train_loss")) == 25
    # 75 values, one log_batch on exit (the metrics plus the final status tag)
    assert recorder._writer.batches_written - batches_before_exit == 1
    search.end()


def test_resumed_search_reuses_its_parent_and_trial_runs(store_uri, digits):
    cfg = TrackingConfig(store_uri, "resume")
    search = SearchRun(cfg, {"trials": 2})
    with trial_run(
        cfg, search.run_id, "7", arch=MACRO_ARCH, arch_hash="h7", train_config=TRAIN, dataset=digits
    ) as first:
        first.log_epoch(1, {"val_acc": 0.5})
        first.set_status("pruned", "the search was interrupted")
    search.end("KILLED")

    resumed = SearchRun(cfg, {"trials": 2}, resume_run_id=search.run_id)
    client = client_for(store_uri)
    assert resumed.run_id == search.run_id
    assert client.get_run(search.run_id).info.status == "RUNNING"
    with trial_run(
        cfg, search.run_id, "7", arch=MACRO_ARCH, arch_hash="h7", train_config=TRAIN, dataset=digits
    ) as again:
        again.log_epoch(2, {"val_acc": 0.6})
    resumed.end()

    assert again.run_id == first.run_id
    children = client.search_runs([resumed.experiment_id], filter_string=f"tags.`{TAG_PARENT_RUN}` = '{search.run_id}'")
    assert len(children) == 1
    assert children[0].info.status == "FINISHED" and children[0].data.tags[TAG_STATUS] == "ok"
    assert TAG_REASON not in children[0].data.tags  # the first attempt's reason went with it
    assert len(children[0].inputs.dataset_inputs) == 1
    history = client.get_metric_history(first.run_id, "val_acc")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.6)]
    with pytest.raises(ValueError, match="cannot resume"):
        SearchRun(cfg, {}, resume_run_id="0123456789abcdef0123456789abcdef")


def test_the_search_driver_writer_streams_runs_and_rows_and_marks_them_written(store_uri, tmp_path):
    """The driver's single writer, on its thread: a trial's run opens at its start, its
    epochs stream in at step=epoch, its end writes the final metrics, status and store row
    (with the run id), and the outbox marks it written; a run still open at close ends
    interrupted. An outbox line cut by a kill is skipped."""
    from nasbench.store import Benchmark
    from nasbench.trial_writer import Outbox, TrialWriter

    cfg = TrackingConfig(store_uri, "driver-writer")
    search = SearchRun(cfg, {"trials": 3})
    outbox = Outbox(tmp_path / "results.jsonl")
    identity = {"dataset": "digits", "budget": 2, "seed": 0, "space": "macro"}
    writer = TrialWriter(
        tracking=cfg,
        parent_run_id=search.run_id,
        dataset="digits",
        train_config=TRAIN,
        store_path=str(tmp_path / "bench.db"),
        store_journal=None,
        checkpoints_dir=tmp_path / "checkpoints",
        outbox=outbox,
        identity=identity,
    )
    for number in (0, 1, 2):
        writer.start(number, MACRO_ARCH, f"h{number}", rerun=False)
        writer.epoch(number, {"epoch": 1, "val_acc": 0.5 + number / 10, "train_loss": 1.0})
    for number, status in ((0, "ok"), (1, "failed")):
        record = {
            "trial": number,
            "arch": MACRO_ARCH,
            "arch_hash": f"h{number}",
            "status": status,
            "reason": "MemoryError: out of memory" if status == "failed" else None,
            "metrics": {"epoch": 2, "val_acc": 0.7, "params": 1234} if status == "ok" else {},
            "curves": [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.7}] if status == "ok" else [],
        }
        outbox.add(record)
        writer.finish(record)
    writer.close(interrupted=True)
    assert outbox.pending() == []  # both written

    with open(outbox.path, "a") as handle:
        handle.write('{"record": {"trial": 9')  # a driver killed mid-line
    reopened = Outbox(outbox.path)  # the next driver cuts it off, and appends whole lines again
    reopened.mark_written([5])
    assert reopened.pending() == [] and outbox.path.read_text().endswith('{"written": 5}\n')
    client = client_for(store_uri)
    runs = {
        r.data.tags["nasbench.trial_id"]: r
        for r in client.search_runs(
            [search.experiment_id], filter_string=f"tags.`{TAG_PARENT_RUN}` = '{search.run_id}'"
        )
    }
    assert {k: (r.info.status, r.data.tags[TAG_STATUS]) for k, r in runs.items()} == {
        "0": ("FINISHED", "ok"),
        "1": ("FAILED", "failed"),
        "2": ("KILLED", "interrupted"),
    }
    assert runs["1"].data.tags[TAG_REASON] == "MemoryError: out of memory"
    history = client.get_metric_history(runs["0"].info.run_id, "val_acc")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.7)]
    assert runs["0"].data.metrics["params"] == 1234 and runs["0"].data.params["arch.layers.0.filters"] == "16"
    with Benchmark(tmp_path / "bench.db") as bench:
        assert len(bench) == 2
        ok, failed = bench.lookup("h0", "digits", 2, 0), bench.lookup("h1", "digits", 2, 0)
        assert (ok["status"], ok["val_acc"], ok["mlflow_run_id"]) == ("ok", 0.7, runs["0"].info.run_id)
        assert [c["epoch"] for c in ok["curves"]] == [1, 2]
        assert (failed["status"], failed["reason"]) == ("failed", "MemoryError: out of memory")
    search.end()


def _driver_writer(search, tmp_path: Path, background: bool = True):
    from nasbench.trial_writer import Outbox, TrialWriter

    return TrialWriter(
        tracking=search.cfg,
        parent_run_id=search.run_id,
        dataset="digits",
        train_config=TRAIN,
        store_path=None,
        store_journal=None,
        checkpoints_dir=tmp_path / "checkpoints",
        outbox=Outbox(tmp_path / "results.jsonl"),
        identity={"dataset": "digits", "budget": 3, "seed": 0, "space": "macro"},
        background=background,
    )


def _val_acc_steps(store_uri: str, search, trial: str) -> list[tuple[int, float]]:
    client = client_for(store_uri)
    (run,) = client.search_runs(
        [search.experiment_id],
        filter_string=f"tags.`{TAG_PARENT_RUN}` = '{search.run_id}' and tags.`nasbench.trial_id` = '{trial}'",
    )
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))


def test_a_live_curve_held_back_is_written_after_a_quiet_spell(store_uri, tmp_path):
    """Epochs that follow each other quickly share one write, and the last of them is not
    held until the trial ends: once the writer has been idle for LIVE_CURVE_SECONDS, it
    sends what it holds."""
    from nasbench.trial_writer import LIVE_CURVE_SECONDS

    search = SearchRun(TrackingConfig(store_uri, "live-curves"), {"trials": 1})
    writer = _driver_writer(search, tmp_path)
    writer.start(0, MACRO_ARCH, "h0", rerun=False)
    writer.epoch(0, {"epoch": 1, "val_acc": 0.4})
    writer.epoch(0, {"epoch": 2, "val_acc": 0.6})
    time.sleep(0.5)
    assert _val_acc_steps(store_uri, search, "0") == []  # held back: the run opened a moment ago
    deadline = time.monotonic() + 3 * LIVE_CURVE_SECONDS + 5
    while _val_acc_steps(store_uri, search, "0") != [(1, 0.4), (2, 0.6)]:
        assert time.monotonic() < deadline, "the held-back epochs were never written"
        time.sleep(0.2)
    writer.close(interrupted=True)
    search.end()


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
def test_the_writer_thread_yields_the_cores_to_the_trials(tmp_path):
    """The driver's writer runs at a lower priority than the driver's other threads (and the
    trials), so that where they share cores the book-keeping waits, not the training."""
    from nasbench.trial_writer import WRITER_NICENESS, Outbox, TrialWriter

    writer = TrialWriter(
        tracking=None,
        parent_run_id=None,
        dataset="digits",
        train_config=TRAIN,
        store_path=None,
        store_journal=None,
        checkpoints_dir=tmp_path / "checkpoints",
        outbox=Outbox(tmp_path / "results.jsonl"),
        identity={"dataset": "digits", "budget": 3, "seed": 0, "space": "macro"},
    )
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        writer.finish({"trial": 0, "arch": MACRO_ARCH, "arch_hash": "h0", "status": "ok", "store": False})
        written = tmp_path / "results.jsonl"
        deadline = time.monotonic() + 10
        while not (written.is_file() and '"written": 0' in written.read_text()):  # the thread is at work
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, writer._thread.native_id) == min(own + WRITER_NICENESS, 19)
    finally:
        writer.close()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller's own is untouched


def test_a_recovered_trial_gets_the_epochs_its_killed_driver_never_wrote(store_uri, tmp_path):
    """A resume writes a finished trial's record from the outbox: the epochs of its curve
    that its run lacks are logged, those it has are not doubled."""
    search = SearchRun(TrackingConfig(store_uri, "recovered-curve"), {"trials": 1})
    writer = _driver_writer(search, tmp_path, background=False)
    writer.start(0, MACRO_ARCH, "h0", rerun=False)
    writer.epoch(0, {"epoch": 1, "val_acc": 0.4})
    writer.close()  # its first epoch written, then the driver gone before the others
    assert _val_acc_steps(store_uri, search, "0") == [(1, 0.4)]

    resumed = _driver_writer(search, tmp_path, background=False)
    record = {
        "trial": 0,
        "arch": MACRO_ARCH,
        "arch_hash": "h0",
        "status": "ok",
        "reason": None,
        "metrics": {"epoch": 3, "val_acc": 0.8},
        "curves": [{"epoch": 1, "val_acc": 0.4}, {"epoch": 2, "val_acc": 0.6}, {"epoch": 3, "val_acc": 0.8}],
        "recovered": True,
    }
    resumed.finish(record)
    resumed.close()
    assert _val_acc_steps(store_uri, search, "0") == [(1, 0.4), (2, 0.6), (3, 0.8)]
    search.end()


# -- evaluations and models ----------------------------------------------------------------


def test_evaluation_run_links_its_model_run_and_logs_the_worst_case(store_uri, tmp_path):
    cfg = TrackingConfig(store_uri, "evaluations")
    report = tmp_path / "report.md"
    report.write_text("# robustness\n")
    with evaluation_run(
        cfg, model_run_id="abc123", name="attack pgd", params={"attacks": ["pgd", "fgsm"], "steps": 10}
    ) as recorder:
        logged = recorder.log_robustness(
            [
                {"attack": "pgd", "norm": "Linf", "eps": 8 / 255, "accuracy": 0.41},
                {"attack": "fgsm", "norm": "linf", "eps": 8 / 255, "accuracy": 0.63},
                {"attack": "pgd", "norm": "linf", "eps": 16 / 255, "accuracy": 0.12},
            ]
        )
        recorder.log_metrics({"clean_acc": 0.97})
        recorder.log_artifact(report)
    client = client_for(store_uri)
    run = client.get_run(recorder.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_MODEL_RUN] == "abc123"
    assert run.data.metrics == logged | {"clean_acc": 0.97}
    assert run.data.metrics["robust_acc.worst.linf.eps_0.0314"] == 0.41
    assert run.data.metrics["robust_acc.worst.linf.eps_0.0627"] == 0.12
    assert run.data.params["steps"] == "10"
    assert [f.path for f in client.list_artifacts(recorder.run_id)] == ["report.md"]
    linked = client.search_runs([run.info.experiment_id], filter_string=f"tags.`{TAG_MODEL_RUN}` = 'abc123'")
    assert [r.info.run_id for r in linked] == [recorder.run_id]


def test_log_model_registers_aliases_and_loads_back_without_pickle(store_uri, digits, tmp_path, capfd):
    from mlflow.models import Model

    from nasbench.models import build_from_spec, wrap_normalized

    torch.manual_seed(0)
    cfg = TrackingConfig(store_uri, "models")
    spec = {"kind": "classic", "name": "lenet5"}
    model = wrap_normalized(build_from_spec(spec, digits.input_shape, digits.num_classes), digits)
    search = SearchRun(cfg, {"trials": 1})
    with trial_run(
        cfg, search.run_id, "0", arch=spec, arch_hash="lenet", train_config=TRAIN, dataset=digits
    ) as recorder:
        pass
    name = registered_model_name(cfg)
    capfd.readouterr()
    uri = log_model(
        cfg,
        recorder.run_id,
        model,
        digits.val.x[:4],
        name,
        ["best-val", "best-robust"],
        meta={"mean": digits.mean, "std": digits.std},
    )
    search.end()
    assert_no_mlflow_chatter(capfd.readouterr().err)

    client = client_for(store_uri)
    version = client.get_model_version_by_alias(name, "best-val")
    assert client.get_model_version_by_alias(name, "best-robust").version == version.version
    assert version.run_id == recorder.run_id
    assert client.get_run(recorder.run_id).data.tags["nasbench.model_uri"] == uri

    images = digits.test.x[:16]
    expected = model.eval()(images)
    for source in (uri, f"models:/{name}@best-val"):
        restored = load_logged_model(source, store_uri)
        assert isinstance(restored, torch.nn.Sequential) and not restored.training
        torch.testing.assert_close(restored(images), expected)

    local = download_logged_model(uri, store_uri, tmp_path)
    assert_no_mlflow_chatter(capfd.readouterr().err)
    files = {path.relative_to(local).as_posix() for path in local.rglob("*") if path.is_file()}
    assert {
        "MLmodel",
        "data/model.pt2",
        "extra_files/model.safetensors",
        "extra_files/arch.json",
        "extra_files/meta.json",
    } <= files
    assert not any(f.endswith(".pth") or "pickle" in f for f in files)  # no pickled module
    signature = Model.load(local / "MLmodel").signature
    assert signature.inputs.inputs[0].shape == (-1, 1, 8, 8)
    assert signature.outputs.inputs[0].shape == (-1, 10)
    # filed under the run's experiment and artifact root, not MLflow's default ./mlruns
    logged = client.get_logged_model(uri.removeprefix("models:/"))
    assert logged.experiment_id == search.experiment_id
    assert logged.artifact_location.startswith(Path(store_uri.removeprefix("sqlite:///")).parent.as_uri())


def assert_no_mlflow_chatter(stderr: str) -> None:
    """Nothing of what MLflow prints around model logging, downloads and new stores."""
    for noise in (
        "Downloading artifacts",
        "Successfully registered model",
        "Created version",
        "already exists",
        "Failed to resolve installed pip version",
        "Creating initial MLflow",
    ):
        assert noise not in stderr


def test_new_local_store_is_seeded_from_the_empty_template(tmp_path, monkeypatch):
    """A new SQLite store starts as a copy of the cached empty store: at MLflow's head
    schema revision, with experiment 0 recreated for this store and usable at once."""
    import sqlite3

    from mlflow.store.db.utils import _get_latest_schema_revision

    from nasbench import tracking

    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    template = tracking._empty_store_template()
    assert template.parent == tmp_path / "cache" and template.is_file()
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT count(*) FROM experiments").fetchone() == (0,)

    store = tmp_path / "exp" / "mlflow.db"
    store.parent.mkdir()
    client = tracking_client(f"sqlite:///{store}")
    run = client.create_run(client.create_experiment("seeded"))
    client.log_metric(run.info.run_id, "val_acc", 0.5)
    assert client.get_metric_history(run.info.run_id, "val_acc")[0].value == 0.5
    assert client.get_experiment("0").name == "Default"
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (_get_latest_schema_revision(),)
    assert template.read_bytes() != store.read_bytes()  # the copy was written to, the template not
    assert not list(store.parent.glob(".*partial"))


def test_existing_store_is_never_replaced_and_a_bad_cache_is_skipped(tmp_path, monkeypatch, capfd):
    from nasbench import tracking

    existing = tmp_path / "mlflow.db"
    existing.write_bytes(b"someone else's file")
    tracking._seed_new_store(f"sqlite:///{existing}")
    assert existing.read_bytes() == b"someone else's file"

    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "not-a-dir" / "cache"))
    fresh = tmp_path / "fresh" / "mlflow.db"
    fresh.parent.mkdir()
    client = tracking_client(f"sqlite:///{fresh}")  # MLflow builds the schema itself ...
    assert client.get_experiment("0").name == "Default" and fresh.is_file()
    assert_no_mlflow_chatter(capfd.readouterr().err)  # ... without its migration notices
