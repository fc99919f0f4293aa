"""Hard truncation: no loss on tokens already predicted with enough confidence."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ner_imbalance.losses._base import TokenLoss, is_real_number, require
from ner_imbalance.losses._reduce import TokenBatch


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

    def __init__(self, *, threshold: float = 0.5, **common: Any) -> None:
        super().__init__(**common)
        require(is_real_number(threshold) and 0 < threshold <= 1, "threshold", "a float in (0, 1]", threshold)
        self.threshold = float(threshold)

    def token_losses(self, batch: TokenBatch) -> Tensor:
        log_p_t = batch.target_log_prob
        kept = log_p_t <= math.log(self.threshold)
        return torch.where(kept, -log_p_t, 0.0)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, {super().extra_repr()}"
