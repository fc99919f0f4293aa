"""Focal loss (Lin et al., 2017), carried from binary detection to multiclass tagging."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ner_imbalance.losses._base import (
    TokenLoss,
    WeightVector,
    check_vector_matches_classes,
    check_weight_vector,
    require,
)
from ner_imbalance.losses._hyperparameters import (
    Condition,
    Hyperparameter,
    SearchSpace,
    is_integer,
    is_real_number,
    real_in,
)
from ner_imbalance.losses._reduce import TokenBatch


def parse_alpha(text: str | float) -> float | list[float]:
    """Focal's `--alpha` from the command line: one float, or comma-separated floats (one per label)."""
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        raise ValueError(f"must be a float or comma-separated floats; got {text!r}") from None
    return values[0] if len(values) == 1 else values


def is_alpha(value: float | list[float]) -> bool:
    """One float in [0, 1], or a sequence of finite floats >= 0."""
    if isinstance(value, list):
        return bool(value) and all(is_real_number(item) and item >= 0 for item in value)
    return is_real_number(value) and 0 <= value <= 1


GAMMA = Hyperparameter(
    "gamma", float, 3.0, "focusing exponent gamma >= 0.", check=real_in(0.0), search=SearchSpace(0.0, 5.0)
)
ALPHA = Hyperparameter(
    "alpha",
    str,
    None,
    "one float (weight of entity classes, 1-alpha for O) or comma-separated weights, one per label.",
    check=Condition(is_alpha, "a float in [0, 1] or comma-separated floats >= 0, one per label"),
    parse=parse_alpha,
)


class FocalLoss(TokenLoss):
    r"""Focal loss :math:`\ell_i = -\alpha_t (1 - p_t)^\gamma \log p_t`.

    From T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense Object
    Detection", ICCV 2017 (arXiv:1708.02002). The modulating factor :math:`(1-p_t)^\gamma`
    shrinks the loss of tokens the model already gets right (:math:`p_t \to 1`), so the many easy
    `O` tokens stop dominating the gradient. With :math:`\gamma = 0` and no `alpha` it is
    cross-entropy.

    :math:`1 - p_t` is computed as `-expm1(log p_t)` (accurate near :math:`p_t = 1`) and clamped
    at the smallest normal float before the power, so :math:`0 < \gamma < 1` gives finite
    gradients where :math:`p_t = 1` (the loss is 0 there).

    Args:
        gamma: Focusing exponent :math:`\gamma \ge 0` (default 3.0, the best of {1, 2, 3} on WNUT-17
            dev in docs/results.md).
        alpha: Class balance :math:`\alpha_t`: None (1 for every class); a length-C sequence of
            per-class values; or a float in [0, 1] together with `outside_label_id`, giving
            :math:`\alpha` to every entity class and :math:`1-\alpha` to the outside class (the
            RetinaNet convention, foreground :math:`\alpha`, background :math:`1-\alpha`).
        outside_label_id: Id of the outside (`O`) class; required with a float `alpha` only.
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
            `class_weights` multiplies on top of `alpha`.
    """

    HYPERPARAMETERS = (GAMMA, ALPHA)

    alpha_per_class: Tensor | None

    def __init__(
        self,
        *,
        gamma: float = GAMMA.default,
        alpha: float | WeightVector | None = ALPHA.default,
        outside_label_id: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.check_hyperparameters(gamma=gamma)
        self.gamma = float(gamma)
        self.alpha_scalar: float | None = None
        alpha_vector = None
        if is_real_number(alpha):
            require(0 <= alpha <= 1, "alpha", "a float in [0, 1], a per-class sequence or None", alpha)
            require(
                is_integer(outside_label_id) and outside_label_id >= 0,
                "outside_label_id",
                "an int >= 0 (the id of the O class) when alpha is a float",
                outside_label_id,
            )
            if self.num_labels is not None:
                allowed = f"< num_labels={self.num_labels}"
                require(outside_label_id < self.num_labels, "outside_label_id", allowed, outside_label_id)
            self.alpha_scalar = float(alpha)
        else:
            require(outside_label_id is None, "outside_label_id", "None unless alpha is a float", outside_label_id)
            if alpha is not None:
                alpha_vector = check_weight_vector(alpha, "alpha", self.num_labels)
        self.outside_label_id = outside_label_id
        self.register_buffer("alpha_per_class", alpha_vector, persistent=False)

    @classmethod
    def corpus_kwargs(cls, hyperparameters: dict[str, Any], *, outside_label_id: int) -> dict[str, Any]:
        """A float `alpha` weights `O` by 1 - alpha: it needs the id of `O`."""
        return {"outside_label_id": outside_label_id} if is_real_number(hyperparameters.get("alpha")) else {}

    def token_losses(self, batch: TokenBatch) -> Tensor:
        log_p_t = batch.target_log_prob
        one_minus_p_t = (-torch.expm1(log_p_t)).clamp_min(torch.finfo(log_p_t.dtype).tiny)
        losses = -one_minus_p_t.pow(self.gamma) * log_p_t
        if self.alpha_per_class is not None:
            check_vector_matches_classes(self.alpha_per_class, "alpha", batch.logits.shape[-1])
            losses = losses * self.alpha_per_class.to(losses.dtype)[batch.targets]
        elif self.alpha_scalar is not None:
            is_outside = batch.targets == self.outside_label_id
            losses = losses * torch.where(is_outside, 1.0 - self.alpha_scalar, self.alpha_scalar)
        return losses

    def extra_repr(self) -> str:
        alpha = self.alpha_scalar if self.alpha_per_class is None else f"[{self.alpha_per_class.numel()}]"
        return f"gamma={self.gamma}, alpha={alpha}, outside_label_id={self.outside_label_id}, {super().extra_repr()}"
