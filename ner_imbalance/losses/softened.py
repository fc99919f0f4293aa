"""Softened truncation (Su Jianlin, 2017): hard truncation with a differentiable gate."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from ner_imbalance.losses._base import TokenLoss, require
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace, real_in
from ner_imbalance.losses._reduce import TokenBatch, gather_targets

SoftenedVariant = Literal["argmax", "literal"]
SOFTENED_VARIANTS: tuple[str, ...] = ("argmax", "literal")

STEEPNESS = Hyperparameter(
    "K",
    float,
    4.0,
    "steepness of the soft gate, K > 0.",
    check=real_in(0.0, low_open=True),
    search=SearchSpace(0.5, 8.0, log=True),
)
GATE_VARIANT = Hyperparameter(
    "variant", str, "argmax", "gate form.", flag="softened_variant", choices=SOFTENED_VARIANTS, search=SOFTENED_VARIANTS
)


class SoftenedLoss(TokenLoss):
    r"""Softened truncation :math:`\ell_i = -w_i \log p_t` with a soft gate :math:`w_i` of steepness K.

    From Su Jianlin, "从loss的硬截断、软化到focal loss" ("From hard truncation and softening of the
    loss to focal loss", kexue.fm/archives/4733, 2017). Hard truncation drops the loss of tokens
    whose target is already the prediction; replacing the step :math:`\theta` by a sigmoid
    :math:`\sigma(Kx)` makes the gate differentiable. In the binary case, with
    :math:`p_t = \sigma(z)`, the loss is :math:`-\sigma(-Kz)\log\sigma(z)`, which for K = 1 is
    :math:`-(1-p_t)\log p_t`, focal loss with :math:`\gamma = 1`.

    Two multiclass gates, both equal to the binary form when C = 2 (:math:`z = x_t - x_{other}`):

    - `variant="argmax"` (default): :math:`w = 1 - \mathrm{softmax}(Kx)_t`, the smooth version
      of "the target is not yet the argmax", hard truncation's multiclass condition. With
      K = 1 it is :math:`1 - p_t`, so the loss equals focal loss with :math:`\gamma = 1` for any
      number of classes, as the source derives.
    - `variant="literal"`: :math:`w = \mathrm{softmax}(-Kx)_t`, the formula as printed in the
      source.

    Args:
        K: Steepness of the gate, K > 0 (default 4.0, the best of {1, 2, 4} on WNUT-17 dev
            in docs/results.md); K -> infinity tends to hard truncation.
        variant: `"argmax"` or `"literal"` (see above).
        detach_weight: Stop the gradient through :math:`w` (default False: the gate's gradient
            is what softening adds over hard truncation).
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
    """

    HYPERPARAMETERS = (STEEPNESS, GATE_VARIANT)

    def __init__(
        self,
        *,
        K: float = STEEPNESS.default,  # noqa: N803 - the name of the source and of the command line
        variant: SoftenedVariant = GATE_VARIANT.default,
        detach_weight: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.check_hyperparameters(K=K, variant=variant)
        require(isinstance(detach_weight, bool), "detach_weight", "a bool", detach_weight)
        self.K = float(K)
        self.variant: SoftenedVariant = variant
        self.detach_weight = detach_weight

    def gate(self, batch: TokenBatch) -> Tensor:
        """The soft gate :math:`w` of every token, in [0, 1]."""
        if self.variant == "literal":
            return self._target_log_softmax_of_scaled(batch, -self.K).exp()
        if self.K == 1.0:
            return -torch.expm1(batch.target_log_prob)
        return -torch.expm1(self._target_log_softmax_of_scaled(batch, self.K))

    @staticmethod
    def _target_log_softmax_of_scaled(batch: TokenBatch, scale: float) -> Tensor:
        r""":math:`\log \mathrm{softmax}(s x)_t`, from the log-probabilities already computed:
        :math:`s \log \mathrm{softmax}(x)` differs from :math:`s x` by a constant per token, and
        softmax ignores such constants (one `logsumexp` instead of a second `log_softmax`)."""
        scaled = scale * batch.log_probs
        return gather_targets(scaled, batch.targets) - torch.logsumexp(scaled, dim=-1)

    def token_losses(self, batch: TokenBatch) -> Tensor:
        gate = self.gate(batch)
        if self.detach_weight:
            gate = gate.detach()
        return -gate * batch.target_log_prob

    def extra_repr(self) -> str:
        return f"K={self.K}, variant={self.variant!r}, detach_weight={self.detach_weight}, {super().extra_repr()}"
