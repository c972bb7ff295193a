"""Datasets logged as run inputs by name and digest, not by content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

_DIGEST_SAMPLE_ROWS = 4096


def dataset_digest(dataset) -> str:
    """A short content digest of a dataset's training split.

    Hashes the shapes, every label and up to 4096 evenly spaced images: enough to tell
    datasets and splits apart (a different seed or validation fraction changes it)
    while staying cheap on CIFAR-sized data. Like MLflow's own pandas digests, it is a
    fingerprint, not a checksum of every byte.
    """
    import numpy as np

    x = dataset.train.x.detach().cpu()
    y = dataset.train.y.detach().cpu()
    rows = np.linspace(0, len(x) - 1, num=min(len(x), _DIGEST_SAMPLE_ROWS)).astype(np.int64)
    sha = hashlib.sha256()
    sha.update(repr((tuple(x.shape), str(x.dtype), tuple(y.shape))).encode())
    sha.update(y.numpy().tobytes())
    if len(x):
        sha.update(np.ascontiguousarray(x[rows].numpy()).tobytes())
    return sha.hexdigest()[:12]


@dataclass(frozen=True)
class DatasetDescription:
    """What a run's dataset input records, as plain strings (source, schema and profile
    are JSON). A search computes it once on the driver and ships it to the trials, so no
    worker loads the data just to log it (replayed and deduplicated trials never do)."""

    name: str
    digest: str
    source: str
    schema: str
    profile: str


def describe_dataset(dataset) -> DatasetDescription:
    """The :class:`DatasetDescription` of a loaded dataset (no data is copied)."""

    def size(split_name: str) -> int:
        split = getattr(dataset, split_name, None)
        return int(len(split.y)) if split is not None else 0

    source = {
        "name": dataset.name,
        "input_shape": list(getattr(dataset, "input_shape", ())),
        "num_classes": getattr(dataset, "num_classes", None),
    }
    profile = {"num_train": size("train"), "num_val": size("val"), "num_test": size("test")}
    schema = {
        "x": {"dtype": str(dataset.train.x.dtype), "shape": [-1, *dataset.train.x.shape[1:]]},
        "y": {"dtype": str(dataset.train.y.dtype), "shape": [-1]},
    }
    return DatasetDescription(
        name=dataset.name,
        digest=dataset_digest(dataset),
        source=json.dumps(source),
        schema=json.dumps(schema),
        profile=json.dumps(profile),
    )


def dataset_input(dataset, context: str = "train"):
    """A :class:`mlflow.entities.DatasetInput` for a loaded dataset or its description."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    described = dataset if isinstance(dataset, DatasetDescription) else describe_dataset(dataset)
    entity = Dataset(
        name=described.name,
        digest=described.digest,
        source_type="nasbench",
        source=described.source,
        schema=described.schema,
        profile=described.profile,
    )
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])
