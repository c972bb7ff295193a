"""The trainer: a short, explicit loop over in-memory tensors.

The data already sits in memory as [0, 1] tensors (on the GPU when training there),
so an epoch is a seeded permutation sliced into batches: no DataLoader, no worker
processes, no per-sample Python transforms unless augmentation asks for them. On CUDA
the loop runs in channels_last with bfloat16 autocast (``amp``/``channels_last`` in the
config turn either on or off anywhere).

Adversarial training (``cfg.adv``) replaces each batch by adversarial examples made
by ``attacks.adversarial_batch`` (PGD-AT, Madry et al. 2018; FGSM with random start,
Wong et al. 2020) before the update, with its eps grown linearly per step over the first
``cfg.adv_warmup`` epochs (``attacks.warmup_eps``).

Training that ends near chance is not silently a result: :func:`collapse_reason` says
why it collapsed (final accuracy within a margin of 1/K, or a training loss stuck at
ln K, the loss of a uniform guess), and :class:`TrainResult` carries it as ``collapse``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.config import TrainConfig
from nasbench.data import Dataset, Split
from nasbench.errors import DoubtfulInput, UserError

# Datasets whose classes change under a horizontal flip (digits read left to right).
MIRROR_SENSITIVE = ("digits", "mnist", "svhn")


class StopTraining(Exception):
    """Raised by an ``on_epoch`` callback to end training early (a pruned trial)."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


class TrainingCollapsed(ValueError):
    """Training ended at chance: the model guesses (see :func:`collapse_reason`)."""


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    val_acc: float = 0.0
    test_acc: float | None = None
    train_seconds: float = 0.0
    device: str = "cpu"
    stopped_early: bool = False
    collapse: str | None = None  # why training collapsed to chance, or None

    def raise_if_collapsed(self) -> None:
        """Raise :class:`TrainingCollapsed` with the reason, for callers where a collapse is a failure."""
        if self.collapse:
            raise TrainingCollapsed(f"training collapsed: {self.collapse}")


# A final accuracy within this much of chance (1/K) is a collapse; at most half of 1/K,
# so 100 classes allow 0.5 points, not 5.
CHANCE_MARGIN = 0.05
# A final training loss within this part of the way from ln K (a uniform guess) down to
# its floor (0, or the entropy of label-smoothed targets) is stuck at ln K.
LOSS_TOLERANCE = 0.02


def collapse_reason(result: TrainResult, num_classes: int, label_smoothing: float = 0.0) -> str | None:
    """Why ``result``'s training collapsed to chance, or None when it did not.

    Collapsed: the final accuracy (test, else validation) is within ``CHANCE_MARGIN`` of
    1/K, or the last epoch's training loss is within ``LOSS_TOLERANCE`` of ln K. Training
    stopped early (a pruned trial) is not judged.
    """
    if result.stopped_early or not result.history or num_classes < 2:
        return None
    chance = 1.0 / num_classes
    accuracy, split = (result.test_acc, "test") if result.test_acc is not None else (result.val_acc, "val")
    margin = min(CHANCE_MARGIN, chance / 2)
    if accuracy is not None and math.isfinite(accuracy) and accuracy <= chance + margin:
        return (
            f"{split} accuracy {accuracy:.1%} is within {margin:.1%} of chance ({chance:.1%} for {num_classes} classes)"
        )
    uniform = math.log(num_classes)
    # cross-entropy with smoothed targets cannot go below the targets' own entropy
    on_target = 1.0 - label_smoothing + label_smoothing / num_classes
    off_target = label_smoothing / num_classes
    floor = -on_target * math.log(on_target) - (num_classes - 1) * (
        off_target * math.log(off_target) if off_target > 0 else 0.0
    )
    loss = result.history[-1].get("train_loss")
    if loss is not None and math.isfinite(loss) and abs(loss - uniform) <= LOSS_TOLERANCE * (uniform - floor):
        return (
            f"final training loss {loss:.3f} is stuck at ln {num_classes} = {uniform:.3f}, "
            f"the loss of a uniform guess ({split} accuracy {accuracy:.1%})"
        )
    return None


def select_device(requested: str = "auto") -> torch.device:
    """The device to run on: ``"auto"`` is CUDA when there is one; a missing GPU is a UserError."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UserError(f"device {requested!r}: no CUDA device is available here")
        if device.index is not None and device.index >= count:
            raise UserError(f"device {requested!r}: only {count} CUDA device(s) here")
    return device


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@dataclass(frozen=True)
class Placement:
    """Where and how the loop runs: the device, bfloat16 autocast, channels_last."""

    device: torch.device
    amp: bool = False
    channels_last: bool = False

    @classmethod
    def resolve(cls, device: torch.device, amp: str = "auto", channels_last: str = "auto") -> Placement:
        """``"auto"`` switches are on for CUDA, off elsewhere."""
        on_cuda = device.type == "cuda"
        return cls(
            device,
            amp == "on" or (amp == "auto" and on_cuda),
            channels_last == "on" or (channels_last == "auto" and on_cuda),
        )

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        # bfloat16 keeps float32's range: no loss scaling needed
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, placement: Placement, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels for ``x``, in eval mode, batched, on ``placement``'s device."""
    was_training = model.training
    model.eval()
    predictions = []
    with placement.autocast():
        for start in range(0, len(x), batch_size):
            predictions.append(model(placement.batch(x[start : start + batch_size])).argmax(dim=1))
    model.train(was_training)
    if not predictions:
        return torch.empty(0, dtype=torch.long, device=placement.device)
    return torch.cat(predictions)


def evaluate_accuracy(model: nn.Module, split: Split, placement: Placement, batch_size: int = 1024) -> float:
    if len(split) == 0:
        return float("nan")
    predictions = predict(model, split.x, placement, batch_size)
    return (predictions == split.y.to(predictions.device)).float().mean().item()


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters (standard practice since Goyal et al. 2017).
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel for all parameters instead of a loop of small ones (about 12% of a
    # LeNet-5 step on the CPU, more on a GPU)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, fused=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, milestones: Sequence[int] | None = None
):
    """The per-step LR schedule of ``cfg.schedule`` over ``total_steps`` (``cfg.epochs`` epochs).

    ``rungs``: cosine annealing with warm restarts (SGDR, Loshchilov & Hutter, ICLR 2017)
    whose restarts are the rungs of successive halving: the LR anneals from ``cfg.lr`` to
    its floor (one-cycle's final LR, ``cfg.lr / 2.5e5``) on the last step before each
    milestone epoch and restarts at ``cfg.lr`` after it, the last segment ending with
    training. A rung's metric is then that of a finished short schedule (the budget-aware
    schedules of Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020), while a promoted
    trial keeps its weights and goes on. ``milestones`` are the epochs of the rungs; by
    default ``cfg.schedule_milestones``, else those of ASHA with grace period 1 and
    reduction factor 3 (epochs 1, 3, 9, ...).
    """
    if cfg.schedule == "rungs":
        from nasbench.strategies.mo_asha import rung_epochs

        if milestones is None:
            milestones = rung_epochs(cfg.epochs) if cfg.schedule_milestones is None else cfg.schedule_milestones
        per_epoch = max(1, total_steps // cfg.epochs)
        ends = sorted({m * per_epoch for m in milestones})
        bounds = [0, *(end for end in ends if 0 < end < total_steps), max(1, total_steps)]
        floor = 1 / 2.5e5

        def factor(step: int) -> float:
            segment = sum(step >= bound for bound in bounds[1:-1])
            start, end = bounds[segment], bounds[segment + 1]
            done = min(1.0, (step - start + 1) / (end - start))  # 1 on the segment's last step
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    # OneCycleLR needs at least one step up and one step down; shorter runs keep the LR constant.
    if cfg.schedule == "onecycle" and total_steps >= 3:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=max(0.25, 2 / total_steps)
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def warn_about_augmentation(dataset: str, augment: Sequence[str]) -> None:
    if "flip" in augment and dataset.partition(":")[0] in MIRROR_SENSITIVE:
        warnings.warn(
            f"--augment flip on {dataset}: a mirrored digit is not the same digit", DoubtfulInput, stacklevel=3
        )


def make_augmentation(names: list[str], num_classes: int, image_size: tuple[int, int]) -> Callable | None:
    """Batch augmentation from torchvision.transforms.v2, or None when there is none.

    Crop (with padding of 1/8 of the side), flip and erasing draw their randomness per
    image; mixup and cutmix mix within the batch and return soft labels.
    """
    if not names:
        return None
    from torchvision.transforms import v2

    per_image = []
    if "crop" in names:
        per_image.append(v2.RandomCrop(size=image_size, padding=max(1, image_size[-1] // 8)))
    if "flip" in names:
        per_image.append(v2.RandomHorizontalFlip())
    if "erase" in names:
        per_image.append(v2.RandomErasing(p=0.5, scale=(0.02, 0.2)))
    compose = v2.Compose(per_image) if per_image else None
    mixers = [m(num_classes=num_classes) for name, m in (("mixup", v2.MixUp), ("cutmix", v2.CutMix)) if name in names]
    mix = v2.RandomChoice(mixers) if mixers else None

    def augment(x: torch.Tensor, y: torch.Tensor):
        if compose is not None:
            x = torch.stack([compose(image) for image in x])
        if mix is not None:
            x, y = mix(x, y)
        return x, y

    return augment


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each training batch; a last batch of one example joins the one before.

    Batch norm in training mode cannot normalise a single value per channel, which is what a
    lone example on a 1x1 feature map gives.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def make_perturbation(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int) -> Callable | None:
    """``perturb(x, y, step) -> (x_adv, eps)`` for adversarial training, or None without it.

    The eps of step ``step`` grows linearly over the first ``cfg.adv_warmup`` epochs.
    """
    if cfg.adv == "none":
        return None
    from attacks.adversarial_training import adversarial_batch, warmup_eps

    # never longer than training (a config whose epochs were changed after it was made)
    warmup_steps = min(round((cfg.adv_warmup or 0.0) * steps_per_epoch), cfg.epochs * steps_per_epoch)

    def perturb(x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, float]:
        eps = warmup_eps(cfg.adv_eps, step, warmup_steps)
        return adversarial_batch(model, x, y, method=cfg.adv, eps=eps), eps

    return perturb


@dataclass
class EpochLoop:
    """One epoch of training after another: the model, its data and what every step shares."""

    model: nn.Module
    cfg: TrainConfig
    placement: Placement
    train: Split
    val: Split
    optimizer: torch.optim.Optimizer
    schedule: Any  # a torch LR scheduler, stepped once per batch
    generator: torch.Generator
    perturb: Callable | None = None
    augmentation: Callable | None = None

    def __post_init__(self) -> None:
        self.batches = batch_bounds(len(self.train), self.cfg.batch_size)

    def run(self, epoch: int) -> dict[str, Any]:
        """Train epoch ``epoch`` (from 1); its metrics, validation accuracy included."""
        epoch_started = time.perf_counter()
        self.model.train()
        device = self.placement.device
        order = torch.randperm(len(self.train), generator=self.generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        eps = None
        for step, (start, stop) in enumerate(self.batches, start=(epoch - 1) * len(self.batches)):
            index = order[start:stop]
            x, y = self.train.x[index], self.train.y[index]
            if self.perturb is not None:
                x, eps = self.perturb(x, y, step)
            logits, loss = self._step(x, y)
            # Accumulate on the device; one sync per epoch instead of one per step.
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(dim=1) == y).sum()
        train_loss = loss_sum.item() / len(self.train)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training diverged: loss became {train_loss} in epoch {epoch}")
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": correct.item() / len(self.train),
            "val_acc": evaluate_accuracy(self.model, self.val, self.placement),
            "epoch_seconds": time.perf_counter() - epoch_started,
        }
        if eps is not None:
            metrics["adv_eps"] = eps
        return metrics

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a batch; its logits and loss."""
        target = y
        if self.augmentation is not None:
            x, target = self.augmentation(x, y)
        x = self.placement.batch(x)
        with self.placement.autocast():
            logits = self.model(x)
            loss = F.cross_entropy(logits, target, label_smoothing=self.cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return logits, loss


def train_model(
    model: nn.Module,
    dataset: Dataset,
    cfg: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
    evaluate_test: bool = True,
    seed: int = 0,
    augment: list[str] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset.train``; validation accuracy after every epoch.

    ``on_epoch`` receives ``{"epoch", "train_loss", "train_acc", "val_acc",
    "epoch_seconds"}`` (and ``adv_eps``, the radius of the epoch's last step, with
    adversarial training) after each epoch and may raise :class:`StopTraining`. A run
    that ends at chance comes back with ``collapse`` set (:func:`collapse_reason`).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(seed)
    placement = Placement.resolve(select_device(cfg.device), cfg.amp, cfg.channels_last)
    device = placement.device
    # Module.to takes memory_format at run time; torch's overloads omit it
    model = model.to(device, memory_format=placement.memory_format)  # type: ignore[call-overload]
    train = dataset.train.to(device)
    steps_per_epoch = len(batch_bounds(len(train), cfg.batch_size))
    optimizer = make_optimizer(model, cfg)
    warn_about_augmentation(dataset.name, augment or [])
    loop = EpochLoop(
        model,
        cfg,
        placement,
        train,
        dataset.val.to(device),
        optimizer,
        make_schedule(optimizer, cfg, cfg.epochs * steps_per_epoch),
        torch.Generator(device="cpu").manual_seed(seed),
        perturb=make_perturbation(model, cfg, steps_per_epoch),
        augmentation=make_augmentation(augment or [], dataset.num_classes, dataset.input_shape[1:]),
    )
    result = TrainResult(model=model, device=str(device))
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        metrics = loop.run(epoch)
        result.history.append(metrics)
        result.val_acc = metrics["val_acc"]
        if on_epoch is not None:
            try:
                on_epoch(metrics)
            except StopTraining:
                result.stopped_early = True
                break
    result.train_seconds = time.perf_counter() - started
    model.eval()
    if evaluate_test and not result.stopped_early:
        result.test_acc = evaluate_accuracy(model, dataset.test.to(device), placement)
    result.collapse = collapse_reason(result, dataset.num_classes, cfg.label_smoothing)
    return result
