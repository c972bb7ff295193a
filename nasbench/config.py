"""Configuration: YAML files and CLI flags resolved into validated pydantic models.

Every command's options form one pydantic model. A YAML file given with ``--config``
may hold any of them (keys are the option names with underscores); flags given on the
command line override the file; the result is validated (types, ranges, names) before
any work starts, and a bad value is a ``UserError`` naming the option.
"""

from __future__ import annotations

import argparse
import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nasbench.errors import UserError

Model = TypeVar("Model", bound=BaseModel)


def _fraction(value: Any) -> Any:
    """Accept eps written as a fraction, "8/255", as well as a plain number."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            return value  # left for pydantic to reject with its own message
    return value


Eps = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=1.0)]


def _device_name(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return value


# What MLflow can track to: a path, sqlite:///FILE, a server, a database URL.
TRACKING_SCHEMES = (
    "file",
    "sqlite",
    "http",
    "https",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)


def _tracking_uri(value: str | None) -> str | None:
    """Check the scheme, and make a local store's path absolute: the URI is recorded, and
    later commands run from other folders."""
    if not value:
        return value
    if "://" not in value:  # a plain path: MLflow's file store
        return str(Path(value).expanduser().resolve())
    scheme = value.partition("://")[0].partition("+")[0].lower()
    if scheme not in TRACKING_SCHEMES:
        raise ValueError(
            f"MLflow cannot track to {scheme}:// (use a path, sqlite:///FILE, http(s)://HOST:PORT or a database URL)"
        )
    path = value.removeprefix("sqlite:///")
    if value.startswith("sqlite:///") and path and not path.startswith("/") and path != ":memory:":
        return f"sqlite:///{Path(path).expanduser().resolve()}"
    return value


TrackingUri = Annotated[str | None, AfterValidator(_tracking_uri)]

# Whether the GPU exists is checked where the work runs (nasbench.train.select_device),
# which may be another machine.
Device = Annotated[str, AfterValidator(_device_name)]


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataConfig(StrictModel):
    dataset: str = "digits"
    data_dir: Path = Path("data")
    download: bool = False
    seed: int = Field(0, ge=0)
    val_fraction: float = Field(0.15, gt=0.0, lt=0.9)
    # YAML may write it as on the command line, "crop,flip", or as a list
    augment: Annotated[
        list[Literal["crop", "flip", "erase", "mixup", "cutmix"]],
        BeforeValidator(lambda value: split_list(value) if isinstance(value, str) else value),
    ] = []


DEFAULT_LR = {"adamw": 1e-2, "sgd": 0.1}  # SGD with momentum needs a larger step than Adam's
# The default eps warm-up of adversarial training, as a part of the epochs (measured on
# digits at eps 0.3, see the README's "Adversarial training").
ADV_WARMUP_FRACTION = 0.5


class TrainConfig(StrictModel):
    epochs: int = Field(10, ge=1, le=10_000)
    # Batch norm in training mode needs two examples to normalise a 1x1 feature map.
    batch_size: int = Field(64, ge=2, le=65_536)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(1e-2, gt=0.0, le=10.0)  # not given: DEFAULT_LR of the optimizer
    weight_decay: float = Field(5e-4, ge=0.0, le=1.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "onecycle", "constant", "rungs"] = "onecycle"
    # The epochs where schedule "rungs" anneals and restarts (nasbench.train.make_schedule);
    # a search sets them to its scheduler's rungs. Not given: ASHA's with grace period 1
    # and reduction factor 3 (epochs 1, 3, 9, ...).
    schedule_milestones: list[Annotated[int, Field(ge=1)]] | None = None
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    adv: Literal["none", "pgd", "fgsm-rs"] = "none"
    adv_eps: Eps = 0.1
    # Epochs over which the adversarial training eps grows linearly to adv_eps, per step;
    # 0 is no warm-up. Not given: ADV_WARMUP_FRACTION of the epochs with --adv, else 0.
    adv_warmup: float | None = Field(None, ge=0.0, le=10_000)
    device: Device = "auto"
    # auto: on for CUDA, off on the CPU (where bfloat16 and channels_last rarely pay)
    amp: Literal["auto", "on", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    threads: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="before")
    @classmethod
    def _optimizer_default_lr(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("lr") is None and values.get("optimizer") in DEFAULT_LR:
            values = {**values, "lr": DEFAULT_LR[values["optimizer"]]}
        return values

    @model_validator(mode="before")
    @classmethod
    def _default_adv_warmup(cls, values: Any) -> Any:
        """The warm-up is resolved here, to a number of epochs, so the recorded config
        (MLflow params, checkpoint meta) says what ran."""
        if isinstance(values, dict) and values.get("adv_warmup") is None:
            epochs = values.get("epochs", cls.model_fields["epochs"].default)
            adversarial = values.get("adv", "none") not in ("none", None)
            try:
                warmup = round(ADV_WARMUP_FRACTION * float(epochs), 2) if adversarial else 0.0
            except (TypeError, ValueError):
                return values  # a bad epochs value: left for its own validation to name
            values = {**values, "adv_warmup": warmup}
        return values

    @field_validator("adv_warmup")
    @classmethod
    def _warmup_within_training(cls, value: float | None, info: ValidationInfo) -> float | None:
        epochs = info.data.get("epochs")  # absent when epochs itself was invalid
        if value is not None and epochs is not None and value > epochs:
            raise ValueError(f"must not exceed epochs ({epochs})")
        return value


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.yaml",
        help="YAML file with any of this command's options; flags override it",
    )


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every way it can be wrong into a UserError."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config {path} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of option names to values, not {type(data).__name__}")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object from ``path``; every way it can be wrong is a UserError naming ``what``."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{what} {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object")
    return data


def validate(model_cls: type[Model], values: dict[str, Any], source: str = "config") -> Model:
    """Validate ``values`` against ``model_cls``; the first problem becomes a UserError."""
    try:
        return model_cls.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        if first["type"] == "extra_forbidden":
            raise UserError(f"unknown option '{where}' in {source}") from None
        given = first.get("input")
        shown = f" (got {given!r})" if not isinstance(given, dict) else ""
        message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own ValueErrors
        raise UserError(f"invalid {where.replace('_', '-')}: {message}{shown}") from None


def resolve(model_cls: type[Model], args: argparse.Namespace) -> Model:
    """Merge ``--config`` YAML with the flags actually given and validate the result.

    Flags are recognised by name: an argparse ``dest`` equal to a field name. Flags
    left at ``None`` were not given and do not override the file.
    """
    values: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    if config_path is not None:
        values.update(read_yaml(config_path))
    for name in model_cls.model_fields:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    return validate(model_cls, values, source=str(config_path) if config_path else "config")


def config_as_flags(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """A YAML config turned into the command's own flags, for commands whose options are
    plain argparse: placed before the typed flags, so those override it, and parsed (types,
    choices, required options) exactly as if typed."""
    options = {action.dest: action for action in parser._actions if action.option_strings}
    flags: list[str] = []
    for key, value in read_yaml(path).items():
        action = options.get(key)
        if action is None or key in ("config", "help", "debug"):
            raise UserError(f"unknown option '{key}' in {path}")
        flag = action.option_strings[-1]
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise UserError(f"invalid {key.replace('_', '-')} in {path}: expected true or false, got {value!r}")
            if value == isinstance(action, argparse._StoreTrueAction):
                flags.append(flag)
        elif isinstance(action, argparse._AppendAction):  # a repeatable flag: once per item
            for item in value if isinstance(value, (list, tuple)) else [value]:
                flags += [flag, str(item)]
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(str(item) for item in value)]
        else:
            flags += [flag, str(value)]
    return flags


def split_list(text: str | None) -> list[str] | None:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; None stays None (flag not given)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]
