"""The folder of one search: named, created with its ``config.yaml``, or reopened on ``--resume``."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import yaml

from nasbench.errors import UserError
from nasbench.search_config import RUNTIME_FIELDS, SearchConfig


def experiment_dir(config: SearchConfig) -> Path:
    name = config.experiment or f"{config.space}-{config.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    return Path(config.experiments_dir).expanduser().resolve() / name


def _config_to_yaml(config: SearchConfig) -> str:
    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=True)


def prepare_experiment(config: SearchConfig) -> tuple[SearchConfig, Path]:
    """Create (or, with ``resume``, reopen) the experiment directory; the config to use.

    A resumed search takes what it searches from ``config.yaml`` and only the runtime
    options (trials, concurrency, resources, address) from ``config``.
    """
    directory = experiment_dir(config)
    saved = directory / "config.yaml"
    if config.resume:
        if not saved.is_file():
            raise UserError(
                f"nothing to resume: {directory} holds no config.yaml (give the --experiment NAME of an earlier search)"
            )
        from nasbench.config import read_yaml, validate

        values = read_yaml(saved)
        given = config.model_dump(include=set(RUNTIME_FIELDS), exclude_unset=True)
        values.update(given)
        values["resume"] = True
        values["experiment"] = directory.name
        values["experiments_dir"] = str(directory.parent)
        return validate(SearchConfig, values, source=str(saved)), directory
    if saved.exists():
        raise UserError(
            f"experiment {directory.name!r} exists in {directory.parent}; "
            "add --resume to continue it or choose another --experiment"
        )
    directory.mkdir(parents=True, exist_ok=True)
    update: dict[str, object] = {"experiment": directory.name}
    if config.schedule == "rungs" and config.schedule_milestones is None:
        # the restarts the trials train with, stated in config.yaml and the MLflow params
        from nasbench.strategies.fidelity import schedule_milestones

        update["schedule_milestones"] = list(schedule_milestones(config))
    config = config.model_copy(update=update)
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(_config_to_yaml(config))
    os.replace(tmp, saved)
    return config, directory
