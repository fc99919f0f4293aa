"""Self-adjusting dice loss (Li et al., ACL 2020), per token on the gold class."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace, real_in
from ner_imbalance.losses._reduce import TokenBatch

DICE_ALPHA = Hyperparameter(
    "alpha",
    float,
    1.0,
    "self-adjusting exponent alpha >= 0 (the per-token optimum is p_t = 1/(1+alpha); 0: plain dice).",
    flag="dice_alpha",
    check=real_in(0.0),
    search=SearchSpace(0.0, 3.0),
)
DICE_SMOOTH = Hyperparameter(
    "smoothing",
    float,
    1.0,
    "smoothing gamma > 0 added to the numerator and denominator.",
    flag="dice_smooth",
    check=real_in(0.0, low_open=True),
    search=SearchSpace(0.01, 10.0, log=True),
)


class DiceLoss(TokenLoss):
    r"""Self-adjusting dice loss :math:`\ell_i = 1 - \frac{2 s p + \gamma}{s p + 1 + \gamma}`, :math:`s = (1-p)^\alpha`.

    From X. Li, X. Sun, Y. Meng, J. Liang, F. Wu, J. Li, "Dice Loss for Data-imbalanced NLP
    Tasks", ACL 2020 (arXiv:1911.02855), their self-adjusting dice coefficient (DSC) taken per
    token on the gold class, :math:`p = p_t` (the gold label's :math:`y = 1`; the other labels of
    the token enter only through the softmax).

    The dice coefficient grows with :math:`u = s p = (1-p)^\alpha p`, which is largest at
    :math:`p = 1/(1+\alpha)`: with :math:`\alpha > 0` a token whose gold probability is above that
    point is pushed back (its loss rises again), so confident easy tokens stop pulling, the
    paper's "self-adjusting" intent, and their gradient shrinks as :math:`(1-p)^\alpha`. With
    :math:`\alpha = 0` it is a plain dice loss on the gold probability, smallest at :math:`p = 1`.
    The loss lies in [0, 1), so its scale is not cross-entropy's; the learning rate may need
    tuning. :math:`1-p` is computed as `-expm1(log p_t)` and clamped at the smallest normal float
    before the power (finite gradients for :math:`0 < \alpha < 1` where :math:`p = 1`).

    Batch-level (set) form: the paper also writes the dice loss of a set of examples,
    :math:`1 - \frac{2\sum_i p_i y_i + \gamma}{\sum_i p_i^2 + \sum_i y_i^2 + \gamma}` (after
    Milletari et al., 2016), a ratio of sums over the whole batch. A ratio of sums is not a sum of
    per-token terms: the loss of a batch split into micro-batches (gradient accumulation) or over
    processes (data parallelism) is not the sum of their losses, and its gradients depend on how
    the batch was cut. The per-token form here is a sum of per-token terms divided by the token
    count `num_items_in_batch`, like every loss of this package, so accumulated micro-batches
    give exactly the loss and gradients of the whole batch.

    Args:
        alpha: :math:`\alpha \ge 0` (default 1.0; command line `--dice_alpha`).
        smoothing: :math:`\gamma > 0` (default 1.0; command line `--dice_smooth`).
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
    """

    HYPERPARAMETERS = (DICE_ALPHA, DICE_SMOOTH)

    def __init__(self, *, alpha: float = DICE_ALPHA.default, smoothing: float = DICE_SMOOTH.default, **common: Any):
        super().__init__(**common)
        self.check_hyperparameters(alpha=alpha, smoothing=smoothing)
        self.alpha = float(alpha)
        self.smoothing = float(smoothing)

    def token_losses(self, batch: TokenBatch) -> Tensor:
        log_p_t = batch.target_log_prob
        p_t = log_p_t.exp()
        if self.alpha == 0:
            scaled = p_t
        else:
            one_minus_p_t = (-torch.expm1(log_p_t)).clamp_min(torch.finfo(log_p_t.dtype).tiny)
            scaled = one_minus_p_t.pow(self.alpha) * p_t
        # 1 - (2u + gamma) / (u + 1 + gamma), written as one fraction.
        return (1 - scaled) / (scaled + 1 + self.smoothing)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, smoothing={self.smoothing}, {super().extra_repr()}"
