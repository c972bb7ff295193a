"""Shared test set-up: small, deterministic, single-threaded torch (tiny models run
fastest on one thread, and the suite's runs stay comparable on a loaded machine)."""

import os

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from nasbench.data import load_dataset

    return load_dataset("digits", seed=0)
