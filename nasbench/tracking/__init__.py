"""MLflow tracking: one experiment per search, a parent run per search, a child run per trial.

Layout in MLflow (the UI nests children under their parent through the
``mlflow.parentRunId`` tag)::

    experiment <name>                       one per search
    ├── run "search"        tags nasbench.role=search; params: the search config (flattened);
    │                       metrics: totals; artifacts: config.json, best_architectures.json/.csv;
    │                       dataset input
    │   ├── run "trial-7"   tags nasbench.role=trial, nasbench.trial_id, nasbench.arch_hash,
    │   │                   nasbench.status (+ nasbench.reason); params arch.* and train.*;
    │   │                   artifact arch.json; per-epoch metrics (step=epoch); final metrics
    │   │                   (params, macs, latency_ms, ...) at the last epoch's step;
    │   │                   dataset input (name, digest, schema, profile)
    │   └── ...
    └── run "attack ..."    tags nasbench.role=evaluation, nasbench.model_run_id=<trial run id>;
                            metrics robust_acc.<attack>.<norm>.eps_<eps> and robust_acc.worst...

Who writes. In a search the driver is the only writer (``nasbench.trial_writer``): trials
report through Ray Tune and never import MLflow, so no worker opens the store, no store
sees concurrent writers, and a cluster needs no shared MLflow store.

The one door. Every :class:`mlflow.MlflowClient` comes from :func:`tracking_client`
(``nasbench.tracking.client``), one per tracking URI and process, used with explicit run
ids, never through the fluent "active run" (which is per process and global).

Batching. A trial logs a handful of metrics per epoch; one HTTP request or SQLite
transaction per value would cost more than the epoch on small datasets. Metrics, params
and tags are buffered and written with ``log_batch`` (up to MLflow's 1000 entities per
call) (``benchmarks/tracking_overhead.py`` measures the difference).

Models without pickle. ``mlflow.pytorch.log_model`` pickles the whole module by default
in older MLflow releases, and unpickling runs arbitrary code. MLflow 3 offers
``serialization_format="pt2"``: a ``torch.export`` program (a graph in JSON plus tensors)
that MLflow checks for pickle payloads before loading. :func:`log_model` logs that
format with a tensor signature, and puts next to it (as the model's ``extra_files``) the
platform's own checkpoint: ``model.safetensors`` + ``arch.json`` + ``meta.json``.
:func:`load_logged_model` rebuilds the architecture from ``arch.json`` and loads the
weights from safetensors, so the model it returns is an ordinary eager ``nn.Module``
(trainable, attackable) and nothing is ever unpickled. Registered models get one name
per experiment (:func:`registered_model_name`) and aliases such as ``best-val`` and
``best-robust``.

Which store. A search records its ``--tracking-uri`` in ``<experiment>/config.yaml``;
later commands on the experiment (attack, report, ui) follow it through
:func:`experiment_tracking_uri`, and none of them opens a local store that does not
exist (:func:`missing_local_store`): MLflow would create an empty one.

Quiet. MLflow prints progress bars, "Successfully registered model" lines and
store-creation notices around model logging, downloads and new stores; those calls run
under :func:`_quiet_mlflow`, so a search shows nasbench's own progress display only.

Modules: ``names`` (tags, statuses, URIs; no MLflow import), ``client`` (the door),
``batch`` (log_batch buffering), ``runs`` (search and trial runs), ``datasets``,
``models`` (pt2 + safetensors, registry), ``evaluations`` (attack and report runs).
"""

from __future__ import annotations

from nasbench.tracking.batch import (  # noqa: F401
    flatten,
)
from nasbench.tracking.client import (  # noqa: F401
    _empty_store_template,
    _seed_new_store,
    cache_dir,
    ensure_experiment,
    tracking_client,
)
from nasbench.tracking.datasets import (  # noqa: F401
    DatasetDescription,
    dataset_digest,
    dataset_input,
    describe_dataset,
)
from nasbench.tracking.evaluations import (  # noqa: F401
    EvaluationRecorder,
    evaluation_run,
    norm_name,
    robust_metric_name,
)
from nasbench.tracking.models import (  # noqa: F401
    download_logged_checkpoint,
    download_logged_model,
    load_logged_model,
    log_model,
    registered_version,
    set_aliases,
)
from nasbench.tracking.names import (  # noqa: F401
    RUN_STATUSES,
    TAG_ARCH_HASH,
    TAG_MODEL_RUN,
    TAG_PARENT_RUN,
    TAG_REASON,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
    TRIAL_STATUSES,
    TrackingConfig,
    default_tracking_uri,
    experiment_tracking_uri,
    missing_local_store,
    recorded_tracking_uri,
    registered_model_name,
)
from nasbench.tracking.runs import (  # noqa: F401
    SearchRun,
    TrialRecorder,
    end_trial_run,
    find_trial_run,
    open_trial_run,
    trial_run,
)
