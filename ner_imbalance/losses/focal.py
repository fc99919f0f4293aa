"""Focal loss (Lin et al., 2017) for multiclass tagging: softmax, or the one-vs-rest sigmoid form."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
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

FOCAL_VARIANTS: tuple[str, ...] = ("softmax", "sigmoid")


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
FOCAL_VARIANT = Hyperparameter(
    "variant",
    str,
    "softmax",
    "softmax focal loss, or RetinaNet's one-vs-rest sigmoid form averaged over classes.",
    flag="focal_variant",
    choices=FOCAL_VARIANTS,
)


class FocalLoss(TokenLoss):
    r"""Focal loss :math:`\ell_i = -\alpha_t (1 - p_t)^\gamma \log p_t`, or its one-vs-rest sigmoid form.

    From T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense Object
    Detection", ICCV 2017 (arXiv:1708.02002). The modulating factor :math:`(1-p_t)^\gamma`
    shrinks the loss of tokens the model already gets right (:math:`p_t \to 1`), so the many easy
    `O` tokens stop dominating the gradient. With :math:`\gamma = 0` and no `alpha` it is
    cross-entropy.

    :math:`1 - p_t` is computed as `-expm1(log p_t)` (accurate near :math:`p_t = 1`) and clamped
    at the smallest normal float before the power, so :math:`0 < \gamma < 1` gives finite
    gradients where :math:`p_t = 1` (the loss is 0 there).

    `variant="sigmoid"` is the paper's own form (RetinaNet's classification loss, torchvision's
    `ops.sigmoid_focal_loss`), one binary problem per (token, class) pair: with
    :math:`p_c = \sigma(x_c)`, target :math:`y_c = [c = t]` and :math:`q_c = p_c` if
    :math:`y_c = 1` else :math:`1 - p_c` (the probability of the right binary answer), the pair's
    term is

    .. math:: \ell_{ic} = -a_c \, (1 - q_{ic})^\gamma \log q_{ic}

    and a token's loss is the mean over its classes, :math:`\ell_i = \frac{1}{C} \sum_c \ell_{ic}`
    (as GHM-C's sigmoid variant averages over classes), then weighted by its gold class, masked and
    normalised as in the softmax form. :math:`a_c` weights the binary term of column :math:`c`,
    whatever the gold class: :math:`\alpha_c` for a per-class `alpha`, :math:`\alpha` for every
    entity column and :math:`1-\alpha` for the `O` column for a float `alpha`, 1 without `alpha`
    (torchvision's `alpha` instead gives :math:`\alpha` to the positive pair and :math:`1-\alpha` to
    the negative ones; here, as in the softmax form, the class decides). :math:`\log q_c` is
    `logsigmoid(±x_c)` and :math:`1 - q_c` is `exp(logsigmoid(∓x_c))`, clamped like
    :math:`1 - p_t` above, so no probability is formed and rounded. With :math:`\gamma = 0` and no
    `alpha` it is `binary_cross_entropy_with_logits` on one-hot targets averaged over classes. The
    logits are trained as C independent sigmoids; their argmax is still the prediction.

    Args:
        gamma: Focusing exponent :math:`\gamma \ge 0` (default 3.0, the best of {1, 2, 3} on WNUT-17
            dev in docs/results.md).
        alpha: Class balance: None (1 for every class); a length-C sequence of per-class values;
            or a float in [0, 1] together with `outside_label_id`, giving :math:`\alpha` to every
            entity class and :math:`1-\alpha` to the outside class (the RetinaNet convention,
            foreground :math:`\alpha`, background :math:`1-\alpha`). The softmax form weights a
            token by the value of its gold class (:math:`\alpha_t`), the sigmoid form each binary
            term by the value of its column (:math:`a_c`).
        outside_label_id: Id of the outside (`O`) class; required with a float `alpha` only.
        variant: `"softmax"` (default: one multiclass term per token) or `"sigmoid"` (one-vs-rest
            binary terms, one per token and class, averaged over classes).
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
            `class_weights` multiplies on top of `alpha`.
    """

    HYPERPARAMETERS = (GAMMA, ALPHA, FOCAL_VARIANT)

    alpha_per_class: Tensor | None

    def __init__(
        self,
        *,
        gamma: float = GAMMA.default,
        alpha: float | WeightVector | None = ALPHA.default,
        outside_label_id: int | None = None,
        variant: str = FOCAL_VARIANT.default,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.check_hyperparameters(gamma=gamma, variant=variant)
        self.gamma = float(gamma)
        self.variant = variant
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
        num_classes = batch.logits.shape[-1]
        alpha = self.class_alpha(num_classes, batch.logits)
        if self.variant == "sigmoid":
            return self._one_vs_rest_token_losses(batch, alpha)
        log_p_t = batch.target_log_prob
        one_minus_p_t = (-torch.expm1(log_p_t)).clamp_min(torch.finfo(log_p_t.dtype).tiny)
        losses = -one_minus_p_t.pow(self.gamma) * log_p_t
        return losses if alpha is None else losses * alpha[batch.targets]

    def _one_vs_rest_token_losses(self, batch: TokenBatch, alpha: Tensor | None) -> Tensor:
        is_target = F.one_hot(batch.targets, batch.logits.shape[-1]).bool()
        # q = sigmoid(signed logit): p_c for the gold column, 1 - p_c = sigmoid(-x_c) for the others.
        signed_logits = torch.where(is_target, batch.logits, -batch.logits)
        log_q = F.logsigmoid(signed_logits)
        one_minus_q = F.logsigmoid(-signed_logits).exp().clamp_min(torch.finfo(log_q.dtype).tiny)
        pair_losses = -one_minus_q.pow(self.gamma) * log_q
        if alpha is not None:
            pair_losses = pair_losses * alpha
        return pair_losses.mean(-1)

    def class_alpha(self, num_classes: int, like: Tensor) -> Tensor | None:
        """The length-C vector of alpha (dtype and device of `like`): the per-class values, or
        alpha for every class but `O` and 1 - alpha for `O`; None without alpha."""
        if self.alpha_per_class is not None:
            check_vector_matches_classes(self.alpha_per_class, "alpha", num_classes)
            return self.alpha_per_class.to(like.dtype)
        if self.alpha_scalar is None:
            return None
        entity_alpha = torch.full((num_classes,), self.alpha_scalar, dtype=like.dtype, device=like.device)
        is_outside = torch.arange(num_classes, device=like.device) == self.outside_label_id
        return torch.where(is_outside, 1.0 - self.alpha_scalar, entity_alpha)

    def extra_repr(self) -> str:
        alpha = self.alpha_scalar if self.alpha_per_class is None else f"[{self.alpha_per_class.numel()}]"
        return (
            f"gamma={self.gamma}, alpha={alpha}, outside_label_id={self.outside_label_id}, variant={self.variant!r}, "
            f"{super().extra_repr()}"
        )
