"""nasbench: architecture search and adversarial robustness for convolutional networks.

The platform composes two independent packages:

- ``search_spaces``: architecture encodings, model builders and classic models;
- ``attacks``: adversarial attacks, the robustness evaluation engine, adversarial training;

with Ray Tune + Optuna search orchestration, a tabular benchmark store, MLflow tracking
and robustness reports.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nasbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
