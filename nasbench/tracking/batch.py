"""Batched writes of one run's metrics, params and tags (``log_batch``), and the
flattening of nested configs into readable param names."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasbench.tracking.names import (
    _MAX_PARAM_VALUE,
    _MAX_PARAMS_OR_TAGS_PER_BATCH,
    _MAX_TAG_VALUE,
    _METRICS_PER_BATCH,
)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists -> ``{"layers.0.kernel_h": "3", ...}``: readable param names.

    Lists of scalars stay one value (``"[3, 5]"``); lists of mappings are indexed.
    """
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)) and any(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    flat.update(flatten(item, f"{name}.{index}."))
                else:
                    flat[f"{name}.{index}"] = _text(item)
        else:
            flat[name] = _text(value)
    return flat


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_float(value: Any) -> float | None:
    """A metric value, or None for what is not a number (None, strings, lists)."""
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy/torch scalars
        value = value.item()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


class _BatchWriter:
    """Buffers metrics, params and tags of one run and writes them with ``log_batch``."""

    def __init__(self, client, run_id: str, flush_seconds: float):
        self.client = client
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.metrics: list = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.last_flush = time.monotonic()
        self.batches_written = 0

    def metric(self, key: str, value: Any, step: int = 0) -> bool:
        """Buffer one value; False (and nothing buffered) for what is not a number."""
        from mlflow.entities import Metric

        number = _as_float(value)
        if number is None:
            return False
        self.metrics.append(Metric(key, number, _now_ms(), int(step)))
        return True

    def metrics_from(self, values: Mapping[str, Any], step: int = 0, prefix: str = "") -> list[str]:
        """Buffer every number of ``values``; returns the keys buffered."""
        return [key for key, value in values.items() if self.metric(f"{prefix}{key}", value, step)]

    def param(self, key: str, value: str) -> None:
        self.params[key] = _clip(value, _MAX_PARAM_VALUE)

    def tag(self, key: str, value: str) -> None:
        self.tags[key] = _clip(value, _MAX_TAG_VALUE)

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        from mlflow.entities import Param, RunTag

        metrics, self.metrics = self.metrics, []
        params = [Param(k, v) for k, v in self.params.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()]
        self.params, self.tags = {}, {}
        self.last_flush = time.monotonic()
        while metrics or params or tags:
            chunk_metrics, metrics = metrics[:_METRICS_PER_BATCH], metrics[_METRICS_PER_BATCH:]
            chunk_params, params = params[:_MAX_PARAMS_OR_TAGS_PER_BATCH], params[_MAX_PARAMS_OR_TAGS_PER_BATCH:]
            chunk_tags, tags = tags[:_MAX_PARAMS_OR_TAGS_PER_BATCH], tags[_MAX_PARAMS_OR_TAGS_PER_BATCH:]
            self.client.log_batch(
                self.run_id, metrics=chunk_metrics, params=chunk_params, tags=chunk_tags, synchronous=True
            )
            self.batches_written += 1


def _missing_params(client, run_id: str, params: Mapping[str, str]) -> dict[str, str]:
    """Params not yet on the run: MLflow params are write-once, a resumed run keeps its own."""
    logged = client.get_run(run_id).data.params
    return {key: value for key, value in params.items() if key not in logged}


def _log_json(client, run_id: str, data: Any, artifact_file: str) -> None:
    client.log_text(run_id, json.dumps(data, indent=2, sort_keys=True, default=str), artifact_file)
