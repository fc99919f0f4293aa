"""Hard truncation: no loss on tokens already predicted with enough confidence."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace, real_in
from ner_imbalance.losses._reduce import TokenBatch

THRESHOLD = Hyperparameter(
    "threshold",
    float,
    0.5,
    "no loss where p_t > threshold, in (0, 1].",
    check=real_in(0.0, 1.0, low_open=True),
    search=SearchSpace(0.2, 1.0),
)


class TruncatedLoss(TokenLoss):
    r"""Hard-truncated cross-entropy :math:`\ell_i = -\theta(m - p_t) \log p_t`.

    :math:`\theta` is the step function: a token whose target probability exceeds the threshold
    :math:`m` gives no loss (and no gradient), every other token gives its cross-entropy. It is
    the starting point of Su Jianlin, "从loss的硬截断、软化到focal loss" ("From hard truncation and
    softening of the loss to focal loss", kexue.fm/archives/4733, 2017), the baseline that
    `SoftenedLoss` smooths. With :math:`m = 1` it is cross-entropy.

    Args:
        threshold: :math:`m` in (0, 1] (default 0.5; above 0.5, the target is the argmax).
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
    """

    HYPERPARAMETERS = (THRESHOLD,)

    def __init__(self, *, threshold: float = THRESHOLD.default, **common: Any) -> None:
        super().__init__(**common)
        self.check_hyperparameters(threshold=threshold)
        self.threshold = float(threshold)

    def token_losses(self, batch: TokenBatch) -> Tensor:
        log_p_t = batch.target_log_prob
        kept = log_p_t <= math.log(self.threshold)
        return torch.where(kept, -log_p_t, 0.0)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, {super().extra_repr()}"
