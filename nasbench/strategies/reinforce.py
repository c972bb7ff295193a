"""The controller of Zoph & Le, "Neural Architecture Search with Reinforcement Learning",
ICLR 2017 (arXiv:1611.01578), trained with REINFORCE (Williams 1992).

A recurrent network emits the architecture's decisions one after another; each is
drawn from a softmax over its values, and the embedding of the value drawn is the
next step's input, so every decision is conditioned on all earlier ones:

- macro space: per layer the filter height and width, the stride, the number of filters
  (and the pooling, padding, activation choices where the space offers them); the
  skip connections by the paper's anchor points: when layer ``i`` starts, the
  controller's state is kept as its anchor, and the probability that layer ``j``
  feeds layer ``i`` is ``sigmoid(v^T tanh(W_prev h_j + W_curr h_i))`` (section 3.3);
- cell space: one operation per edge.

The softmax classifier and the input embedding are shared by every decision of one kind
(all layers' filter heights share one), as in the paper's figure 2. Training: the
reward is the validation accuracy (the first objective; its negative if minimised)
and the update is ``grad = mean_k (R_k - b) grad log P(a_k)`` over a batch of ``m``
finished architectures, with ``b`` an exponential moving average of earlier rewards
(section 3.2). Parallel workers finish trials out of order; the controller is updated
whenever ``batch_size`` more trials have finished, in the order they finished.

Sizes follow the paper where they transfer: a 2-layer LSTM with 35 hidden units,
weights initialised uniformly in [-0.08, 0.08], Adam. The learning rate
(``1e-2``, chosen on the recorded cell benchmark; the paper's 6e-4 was for 12,800
architectures from 800 workers) and the
batch (5) suit searches of tens to hundreds of trials. Decisions are drawn with a
generator fixed by ``(seed, trial number)`` and the controller is rebuilt from the
study's finished trials, so a resumed study continues exactly as an uninterrupted one.
The controller runs on the CPU: it has about 20,000 weights.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, cast

import optuna
import torch
from torch import nn

from nasbench.strategies.planning import PlanningSampler, choices_of, finished_in_order, plan, rng_for

LAYER = re.compile(r"^layer(\d+)_(.+)$")
SKIP = re.compile(r"^layer(\d+)_skip_from(\d+)$")


def _seed_of(seed: int, word: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(word.encode())) % (2**63)


def _init_uniform(module: nn.Module, seed: int, word: str, init_range: float) -> None:
    generator = torch.Generator().manual_seed(_seed_of(seed, word))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) * 2 * init_range - init_range)


class Controller(nn.Module):
    """The LSTM, the anchor-point attention, and one softmax head and embedding per kind
    of decision (created the first time the kind is met, initialised from the seed and
    the kind's name, so their values do not depend on the order kinds appear in)."""

    def __init__(self, seed: int = 0, hidden_size: int = 35, num_layers: int = 2, init_range: float = 0.08) -> None:
        super().__init__()
        self.seed, self.hidden_size, self.init_range = seed, hidden_size, init_range
        self.cells = nn.ModuleList(nn.LSTMCell(hidden_size, hidden_size) for _ in range(num_layers))
        self.start = nn.Parameter(torch.zeros(1, hidden_size))
        self.attend_anchor = nn.Linear(hidden_size, hidden_size, bias=False)
        self.attend_current = nn.Linear(hidden_size, hidden_size, bias=False)
        self.attend_v = nn.Linear(hidden_size, 1, bias=False)
        self.skip_embedding = nn.Embedding(2, hidden_size)
        _init_uniform(self, seed, "core", init_range)
        self.heads = nn.ModuleDict()
        self.embeddings = nn.ModuleDict()
        # the optimizer's hook for lazily made heads
        self.on_new_parameters: Callable[[list[nn.Parameter]], None] | None = None

    def kind(self, name: str, size: int) -> tuple[nn.Linear, nn.Embedding]:
        match = LAYER.match(name)
        key = f"{match.group(2) if match else name}-{size}".replace(".", "_")
        if key not in self.heads:
            head, embedding = nn.Linear(self.hidden_size, size), nn.Embedding(size, self.hidden_size)
            _init_uniform(head, self.seed, "head:" + key, self.init_range)
            _init_uniform(embedding, self.seed, "embedding:" + key, self.init_range)
            self.heads[key], self.embeddings[key] = head, embedding
            if self.on_new_parameters is not None:
                self.on_new_parameters([*head.parameters(), *embedding.parameters()])
        return cast(nn.Linear, self.heads[key]), cast(nn.Embedding, self.embeddings[key])


class Episode:
    """One pass of the controller over a space's decisions: a ``decide`` callback for
    :func:`nasbench.strategies.planning.plan`. Draws with ``generator``, or, given
    ``teacher`` (the decisions of a finished trial), replays them; ``log_prob`` sums the
    log-probabilities of the decisions taken."""

    def __init__(
        self, controller: Controller, generator: torch.Generator | None = None, teacher: dict[str, Any] | None = None
    ) -> None:
        self.controller, self.generator, self.teacher = controller, generator, teacher
        zeros = torch.zeros(1, controller.hidden_size)
        self.state = [(zeros, zeros) for _ in controller.cells]
        self.input: torch.Tensor = controller.start
        self.anchors: dict[int, torch.Tensor] = {}
        self.log_prob = torch.zeros(())

    def _step(self) -> torch.Tensor:
        x = self.input
        for index, cell in enumerate(self.controller.cells):
            self.state[index] = cell(x, self.state[index])
            x = self.state[index][0]
        return x

    def __call__(self, name: str, distribution) -> Any:
        options = choices_of(distribution)
        current = self._step()
        layer = LAYER.match(name)
        if layer and int(layer.group(1)) not in self.anchors:
            self.anchors[int(layer.group(1))] = current  # the anchor point of a new layer
        skip = SKIP.match(name)
        c = self.controller
        if skip and options == [False, True] and int(skip.group(2)) in self.anchors:
            anchor = self.anchors[int(skip.group(2))]
            logit = c.attend_v(torch.tanh(c.attend_anchor(anchor) + c.attend_current(current)))
            logits, embedding = torch.cat([torch.zeros(1, 1), logit], dim=1)[0], c.skip_embedding
        else:
            head, embedding = c.kind(name, len(options))
            logits = head(current)[0]
        log_probs = torch.log_softmax(logits, dim=0)
        if self.teacher is not None:
            index = next(
                i for i, o in enumerate(options) if o == self.teacher[name] and type(o) is type(self.teacher[name])
            )
        else:
            index = int(torch.multinomial(log_probs.exp(), 1, generator=self.generator))
        self.log_prob = self.log_prob + log_probs[index]
        self.input = embedding(torch.tensor([index]))
        return options[index]


def check_settings(
    batch_size: int = 5,
    learning_rate: float = 1e-2,
    baseline_decay: float = 0.9,
    hidden_size: int = 35,
    num_layers: int = 2,
) -> None:
    whole = [batch_size, hidden_size, num_layers]
    if any(int(v) != v or v < 1 for v in whole) or learning_rate <= 0 or not 0 <= baseline_decay < 1:
        raise ValueError(
            "reinforce needs whole numbers batch_size, hidden_size, num_layers >= 1, "
            "learning_rate > 0 and 0 <= baseline_decay < 1"
        )


@contextmanager
def one_thread():
    """The controller's matrices are 35x35: one thread runs them fastest (twice as fast as
    the default pool here), and the driver's other threads keep their cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class ReinforceSampler(PlanningSampler):
    """Zoph & Le's controller as an Optuna sampler; see the module docstring."""

    def __init__(
        self,
        space,
        seed: int = 0,
        batch_size: int = 5,
        learning_rate: float = 1e-2,
        baseline_decay: float = 0.9,
        hidden_size: int = 35,
        num_layers: int = 2,
    ) -> None:
        super().__init__(space, seed)
        check_settings(batch_size, learning_rate, baseline_decay, hidden_size, num_layers)
        self.batch_size, self.learning_rate, self.baseline_decay = int(batch_size), float(learning_rate), baseline_decay
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self._reset()

    def _reset(self) -> None:
        self.controller = Controller(self.seed, self.hidden_size, self.num_layers)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.learning_rate)
        self.controller.on_new_parameters = lambda params: self.optimizer.add_param_group({"params": params})
        self.baseline: float | None = None
        self.consumed: list[int] = []  # numbers of the trials the controller learned from, in order
        self.updates = 0

    def propose(self, study: optuna.Study, number: int) -> tuple[dict[str, Any], str]:
        with one_thread():
            self.catch_up(study)
            seed = int(rng_for(self.seed, number).integers(2**62))
            with torch.no_grad():
                params, _, key = plan(self.space, Episode(self.controller, torch.Generator().manual_seed(seed)))
        return params, key

    def catch_up(self, study: optuna.Study) -> None:
        """Learn from every full batch of trials finished since the last update."""
        finished = finished_in_order(study.get_trials(deepcopy=False))
        if [t.number for t in finished[: len(self.consumed)]] != self.consumed:
            self._reset()  # another study, or a history that changed: rebuild from the start
        sign = [1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in study.directions][0]
        while len(finished) - len(self.consumed) >= self.batch_size:
            batch = finished[len(self.consumed) : len(self.consumed) + self.batch_size]
            self.update([(t.params, sign * t.values[0]) for t in batch])
            self.consumed += [t.number for t in batch]

    def update(self, batch: list[tuple[dict[str, Any], float]]) -> None:
        """One REINFORCE step on ``(decisions, reward)`` pairs; the baseline moves after each."""
        if self.baseline is None:
            self.baseline = sum(reward for _, reward in batch) / len(batch)
        loss = torch.zeros(())
        used = 0
        for params, reward in batch:
            if not math.isfinite(reward):
                continue
            episode = Episode(self.controller, teacher=params)
            try:
                plan(self.space, episode)
            except (KeyError, StopIteration):  # decisions this space would not make (another sampler's)
                continue
            loss = loss - (reward - self.baseline) * episode.log_prob
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
            used += 1
        if used:
            self.optimizer.zero_grad()
            (loss / used).backward()
            self.optimizer.step()
            self.updates += 1
