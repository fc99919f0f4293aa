"""Learning curves: dev scores after every epoch against the training time spent to reach them, and
the training loss's shares by gold class at every logging step.

`LearningCurveCallback` is the study's own `TrainerCallback`: the Trainer evaluates dev at the
end of every epoch (`eval_strategy="epoch"`); the callback keeps, per evaluation, the epoch, the
dev micro precision/recall/F1 and macro F1, the optimizer step, and the cumulative *training*
seconds: wall time since training began minus the time spent in evaluations, so that the curves
of two losses compare their training cost, not their evaluation cost. At every training log it also
keeps the step, the loss, and the share of the loss from `O` tokens and from each entity type with
their mean gold probability (`ImbalanceTrainer.loss_shares`): what a remedy changes, over training.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback

from ner_imbalance.constants import GOLD_PROBABILITY_PREFIX, LOSS_SHARE_PREFIX

CURVE_METRICS = ("precision", "recall", "f1", "macro_f1")


class LearningCurveCallback(TrainerCallback):
    """Collect `points`: one dict per dev evaluation during training, and `loss_shares`: one dict per
    training log that carries them (see the module docstring).

    `clock` is the time source (seconds); CUDA work is synchronised before each reading so that
    asynchronous kernels are charged to training, not to the evaluation that follows.
    """

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock
        self.points: list[dict[str, float]] = []
        self.loss_shares: list[dict[str, float]] = []
        self.optimizer_steps: int | None = None
        self._started: float | None = None
        self._evaluation_seconds = 0.0
        self._evaluation_started: float | None = None
        self._training_seconds = 0.0

    def _now(self) -> float:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        return self.clock()

    def on_train_begin(self, args, state, control, **kwargs: Any) -> None:
        self._started = self._now()
        self._evaluation_seconds = 0.0

    def on_epoch_end(self, args, state, control, **kwargs: Any) -> None:
        now = self._now()
        self._training_seconds = now - self._started - self._evaluation_seconds
        self._evaluation_started = now

    def on_evaluate(self, args, state, control, metrics: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        if self._evaluation_started is None:
            return
        self._evaluation_seconds += self._now() - self._evaluation_started
        self._evaluation_started = None
        metrics = metrics or {}
        point = {"epoch": float(state.epoch), "step": int(state.global_step), "train_seconds": self._training_seconds}
        point.update({name: float(metrics[f"eval_{name}"]) for name in CURVE_METRICS if f"eval_{name}" in metrics})
        self.points.append(point)

    def on_log(self, args, state, control, logs: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        shares = {
            name: float(value)
            for name, value in (logs or {}).items()
            if name.startswith((LOSS_SHARE_PREFIX, GOLD_PROBABILITY_PREFIX))
        }
        if shares:
            self.loss_shares.append({"step": int(state.global_step), "loss": float(logs["loss"]), **shares})

    def on_train_end(self, args, state, control, **kwargs: Any) -> None:
        self.optimizer_steps = int(state.global_step)


def first_reaching(curve: Sequence[Mapping[str, float]], target: float, metric: str = "f1") -> dict[str, float] | None:
    """The first point of a learning curve whose `metric` is at least `target`, or None if none is."""
    return next((point for point in curve if point.get(metric, float("-inf")) >= target), None)
