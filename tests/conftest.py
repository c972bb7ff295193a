"""Shared test set-up: small, deterministic, single-threaded torch (tiny models run
fastest on one thread, and the suite's runs stay comparable on a loaded machine)."""

import os
import tempfile

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
# The suite's own cache (the empty MLflow store template), not the user's ~/.cache.
os.environ.setdefault("NASBENCH_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"nasbench-tests-{os.getuid()}"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from nasbench.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray runtime for the whole session: starting one costs seconds on 2 cores.
    Modules whose stand-in trials must reach the workers register themselves with
    ``ray.cloudpickle.register_pickle_by_value``."""
    import ray

    if not ray.is_initialized():  # a search run by a test without this fixture leaves it running
        # "local": always a runtime of its own, never a cluster named by Ray's current-cluster file
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One MLflow database per module; each search still gets its own MLflow experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def one_thread():
    """Torch on one thread for the test, restored after (the attack test modules use it)."""
    from attack_fixtures import single_thread

    with single_thread():
        yield


@pytest.fixture
def held_out_digits():
    """Held-out UCI digits as tensors (397 images in [0, 1], shape (N, 1, 8, 8), and labels)."""
    from attack_fixtures import load_digits_tensors

    return load_digits_tensors()[1]


@pytest.fixture
def trained_cnn():
    """An undefended SmallCNN (about 97-98% clean accuracy), trained once per session."""
    from attack_fixtures import cached_cnn

    return cached_cnn()
