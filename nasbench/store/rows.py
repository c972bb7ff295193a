"""What a benchmark row is: its keys, the checks on its values, and its JSON as stored."""

from __future__ import annotations

import datetime as _datetime
import json
import math
from typing import Any

from nasbench.provenance import collect_provenance
from nasbench.store.errors import InvalidRow

STATUSES = ("ok", "failed", "pruned")
SPACES = ("macro", "cell", "classic")

REQUIRED_KEYS = ("arch_hash", "dataset", "budget", "seed", "space", "arch", "status")
OPTIONAL_KEYS = (
    "reason",
    "curves",
    "train_acc",
    "val_acc",
    "test_acc",
    "params",
    "macs",
    "latency_ms",
    "device",
    "train_seconds",
    "mlflow_run_id",
    "robust",
    "provenance",
    "created_at",
)
ROW_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def canonical_eps(eps: float) -> float:
    """Round eps to 10 significant digits so that 8/255 written twice is one key."""
    return float(f"{float(eps):.10g}")


def validate_robust(results: Any, where: str) -> list[dict[str, Any]]:
    """Robust accuracies checked and cleaned: ``[{attack, norm, eps, accuracy}, ...]``
    with names stripped and eps canonical; ``where`` names the row in errors."""
    if not isinstance(results, (list, tuple)):
        raise InvalidRow(
            f"{where}: 'robust' must be a list of {{attack, norm, eps, accuracy}} dicts, not {type(results).__name__}"
        )
    return [_validate_robust_item(item, f"{where}: robust[{index}]") for index, item in enumerate(results)]


def _validate_robust_item(item: Any, at: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRow(f"{at} must be a dict, not {type(item).__name__}")
    missing = [key for key in ("attack", "norm", "eps", "accuracy") if key not in item]
    if missing:
        raise InvalidRow(f"{at} is missing {', '.join(missing)}")
    attack, norm, eps, accuracy = item["attack"], item["norm"], item["eps"], item["accuracy"]
    if not isinstance(attack, str) or not attack.strip():
        raise InvalidRow(f"{at}: attack must be a non-empty string")
    if not isinstance(norm, str) or not norm.strip():
        raise InvalidRow(f"{at}: norm must be a non-empty string such as 'Linf' or 'L2'")
    if not is_number(eps) or eps < 0:
        raise InvalidRow(f"{at}: eps must be a finite number >= 0 (got {eps!r})")
    if not is_number(accuracy) or not 0.0 <= accuracy <= 1.0:
        raise InvalidRow(f"{at}: accuracy must be a fraction in [0, 1] (got {accuracy!r})")
    return {"attack": attack.strip(), "norm": norm.strip(), "eps": canonical_eps(eps), "accuracy": float(accuracy)}


def validate_row(row: Any) -> dict[str, Any]:
    """Check a row for :meth:`Benchmark.record` and return it with defaults filled in.

    Raises :class:`InvalidRow` naming the first problem: a missing or unknown key, a
    status outside ok/failed/pruned, a failed/pruned row without a reason, an accuracy
    outside [0, 1], a negative count, curves that are not a list of per-epoch dicts.
    """
    if not isinstance(row, dict):
        raise InvalidRow(f"a benchmark row must be a dict, not {type(row).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in row]
    if missing:
        raise InvalidRow(f"benchmark row is missing {', '.join(missing)} (required: {', '.join(REQUIRED_KEYS)})")
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        raise InvalidRow(f"benchmark row has unknown key(s) {', '.join(unknown)} (known: {', '.join(ROW_KEYS)})")
    clean: dict[str, Any] = {key: row.get(key) for key in ROW_KEYS}
    where = f"row {row['arch_hash']!r}/{row['dataset']!r}"
    _check_identity(clean, where)
    _check_status(clean, where)
    _check_measurements(clean, where)
    clean["curves"] = _valid_curves(clean["curves"], where)
    clean["robust"] = validate_robust(clean["robust"] or [], where)
    if clean["provenance"] is None:
        clean["provenance"] = collect_provenance()
    elif not isinstance(clean["provenance"], dict):
        raise InvalidRow(f"{where}: provenance must be a dict or None")
    if clean["created_at"] is None:
        clean["created_at"] = _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds")
    return clean


def _check_identity(clean: dict[str, Any], where: str) -> None:
    """The row's key (arch_hash, dataset, budget, seed), its space and its architecture."""
    for key in ("arch_hash", "dataset"):
        if not isinstance(clean[key], str) or not clean[key].strip():
            raise InvalidRow(f"benchmark row: {key} must be a non-empty string (got {clean[key]!r})")
    if not is_int(clean["budget"]) or clean["budget"] < 0:
        raise InvalidRow(f"{where}: budget must be a whole number of epochs >= 0 (got {clean['budget']!r})")
    if not is_int(clean["seed"]):
        raise InvalidRow(f"{where}: seed must be an integer (got {clean['seed']!r})")
    if clean["space"] not in SPACES:
        raise InvalidRow(f"{where}: space must be one of {', '.join(SPACES)} (got {clean['space']!r})")
    if not isinstance(clean["arch"], dict):
        raise InvalidRow(
            f"{where}: arch must be a dict (the architecture's JSON form), not {type(clean['arch']).__name__}"
        )


def _check_status(clean: dict[str, Any], where: str) -> None:
    if clean["status"] not in STATUSES:
        raise InvalidRow(f"{where}: status must be one of {', '.join(STATUSES)} (got {clean['status']!r})")
    if clean["status"] != "ok" and not (isinstance(clean["reason"], str) and clean["reason"].strip()):
        raise InvalidRow(f"{where}: a {clean['status']} row needs a reason (why it did not finish)")
    if clean["reason"] is not None and not isinstance(clean["reason"], str):
        raise InvalidRow(f"{where}: reason must be a string or None")


def _check_measurements(clean: dict[str, Any], where: str) -> None:
    """Accuracies, counts, costs and the text fields: each None or of its kind."""
    for key in ("train_acc", "val_acc", "test_acc"):
        value = clean[key]
        if value is not None and (not is_number(value) or not 0.0 <= value <= 1.0):
            raise InvalidRow(f"{where}: {key} must be a fraction in [0, 1] or None (got {value!r})")
    for key in ("params", "macs"):
        value = clean[key]
        if value is not None and (not is_int(value) or value < 0):
            raise InvalidRow(f"{where}: {key} must be a whole number >= 0 or None (got {value!r})")
    for key in ("latency_ms", "train_seconds"):
        value = clean[key]
        if value is not None and (not is_number(value) or value < 0):
            raise InvalidRow(f"{where}: {key} must be a finite number >= 0 or None (got {value!r})")
    for key in ("device", "mlflow_run_id", "created_at"):
        if clean[key] is not None and not isinstance(clean[key], str):
            raise InvalidRow(f"{where}: {key} must be a string or None")


def _valid_curves(curves: Any, where: str) -> list[dict[str, Any]]:
    curves = curves if curves is not None else []
    if not isinstance(curves, (list, tuple)) or not all(isinstance(e, dict) for e in curves):
        raise InvalidRow(
            f"{where}: curves must be a list of per-epoch dicts like {{'epoch': 1, 'train_loss': ..., 'val_acc': ...}}"
        )
    for index, entry in enumerate(curves):
        if not is_int(entry.get("epoch")):
            raise InvalidRow(f"{where}: curves[{index}] needs an integer 'epoch'")
    return list(curves)


def encode_json(row: dict[str, Any]) -> list[str]:
    """The JSON columns of a validated row, as stored (compact; arch keys sorted)."""
    where = f"row {row['arch_hash']!r}/{row['dataset']!r}"
    encoded = []
    for key in ("arch", "curves", "provenance"):
        try:
            encoded.append(json.dumps(row[key], allow_nan=False, separators=(",", ":"), sort_keys=key == "arch"))
        except (TypeError, ValueError) as error:
            raise InvalidRow(f"{where}: {key} is not JSON-serialisable: {error}") from None
    return encoded
