"""`TokenLoss`, the base module of every loss, and the checks of hyperparameters.

A subclass implements `token_losses(batch)`, the unweighted loss of every token from a
`TokenBatch`, and declares its tunable hyperparameters in `HYPERPARAMETERS` (see
`_hyperparameters`); the base module does the rest (see `_reduce`). Hyperparameters are checked
in the constructors against those declarations, so a loss built directly is checked as one built
by `build_loss` or from the command line; a bad value raises `ValueError` naming the argument and
the allowed values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ner_imbalance.constants import IGNORE_INDEX
from ner_imbalance.losses._hyperparameters import Hyperparameter, is_integer, is_real_number
from ner_imbalance.losses._reduce import (
    REDUCTIONS,
    Reduction,
    TokenBatch,
    reduce_token_losses,
    smooth_token_losses,
    token_log_probs,
    weigh_token_losses,
)
from ner_imbalance.losses._statistics import ClassLossShares

WeightVector = Sequence[float] | Tensor


def require(condition: bool, argument: str, allowed: str, value: Any) -> None:
    """Raise `ValueError("<argument> must be <allowed>; got <value>")` unless `condition`."""
    if not condition:
        raise ValueError(f"{argument} must be {allowed}; got {value!r}")


def check_weight_vector(values: WeightVector, argument: str, num_labels: int | None) -> Tensor:
    """A 1-D float32 tensor of finite, non-negative per-class values (of length `num_labels` if given)."""
    try:
        vector = torch.as_tensor(values, dtype=torch.float32).detach().clone()
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{argument} must be a sequence of floats, one per class; got {values!r}") from error
    require(vector.dim() == 1 and vector.numel() > 0, argument, "a non-empty 1-D sequence, one value per class", values)
    require(
        bool(torch.isfinite(vector).all()) and bool((vector >= 0).all()), argument, "finite and >= 0 values", values
    )
    if num_labels is not None:
        require(vector.numel() == num_labels, argument, f"of length num_labels={num_labels}", values)
    return vector


def check_vector_matches_classes(vector: Tensor | None, argument: str, num_classes: int) -> None:
    """A per-class vector must have one value per column of the logits."""
    if vector is not None and vector.numel() != num_classes:
        raise ValueError(f"{argument} must have one value per class ({num_classes}); got {vector.numel()} values")


class TokenLoss(nn.Module, ABC):
    r"""Base of the per-token losses: `loss_fn(logits, labels, num_items_in_batch=None)`.

    Class attributes a subclass sets:
        HYPERPARAMETERS: its tunable hyperparameters, declared once (see `Hyperparameter`).
        supports_label_smoothing: True for the cross-entropy-based losses, whose per-token loss
            is :math:`-\log p_t` of (possibly adjusted) logits; only they accept
            `label_smoothing`.
        requires_class_prior: True when the loss needs the training-tag frequency of each label
            as `class_prior` (the caller computes it from the training split).

    Args:
        class_weights: Optional length-C weights; each token's loss is multiplied by the weight
            of its gold class. Stored as a float32 non-persistent buffer (moves with `.to()`).
        label_smoothing: :math:`\varepsilon` in [0, 1] (default 0), for losses with
            `supports_label_smoothing` only: the target becomes
            :math:`(1-\varepsilon)\,\mathrm{onehot}(t) + \varepsilon / C`, so the token's loss
            is :math:`(1-\varepsilon)(-\log p_t) + \varepsilon \cdot \frac{1}{C}\sum_c -\log p_c`
            (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016), then weighted,
            masked and normalised like any other per-token loss (see `_reduce`).
        ignore_index: Label value of positions that get no loss.
        reduction: `"mean"` (sum over valid tokens divided by `num_items_in_batch`, or by the
            number of valid tokens when it is not given), `"sum"` or `"none"` (per-token losses
            with the labels' shape, 0 where ignored).
        num_labels: Number of classes C, when known, to check the length of per-class vectors
            at construction (they are checked against the logits at every call anyway).
    """

    HYPERPARAMETERS: ClassVar[tuple[Hyperparameter, ...]] = ()
    supports_label_smoothing: ClassVar[bool] = False
    requires_class_prior: ClassVar[bool] = False

    class_weights: Tensor | None

    def __init__(
        self,
        *,
        class_weights: WeightVector | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        reduction: Reduction = "mean",
        num_labels: int | None = None,
    ) -> None:
        super().__init__()
        require(reduction in REDUCTIONS, "reduction", f"one of {REDUCTIONS}", reduction)
        require(is_integer(ignore_index), "ignore_index", "an int", ignore_index)
        valid_num_labels = num_labels is None or (is_integer(num_labels) and num_labels >= 1)
        require(valid_num_labels, "num_labels", "None or an int >= 1", num_labels)
        require(
            is_real_number(label_smoothing) and 0 <= label_smoothing <= 1,
            "label_smoothing",
            "in [0, 1]",
            label_smoothing,
        )
        if label_smoothing and not self.supports_label_smoothing:
            raise ValueError(
                f"label_smoothing is defined for the cross-entropy-based losses only, not for {type(self).__name__}"
            )
        self.ignore_index = ignore_index
        self.reduction: Reduction = reduction
        self.num_labels = num_labels
        self.label_smoothing = float(label_smoothing)
        weights = None if class_weights is None else check_weight_vector(class_weights, "class_weights", num_labels)
        self.register_buffer("class_weights", weights, persistent=False)
        self.class_shares: ClassLossShares | None = None

    @classmethod
    def check_hyperparameters(cls, **values: Any) -> None:
        """Check `values` (constructor keywords) against the class's declarations; `ValueError`
        naming the first bad one."""
        declared = {hyperparameter.name: hyperparameter for hyperparameter in cls.HYPERPARAMETERS}
        for name, value in values.items():
            declared[name].validate(value)

    @classmethod
    def corpus_kwargs(cls, hyperparameters: dict[str, Any], *, outside_label_id: int) -> dict[str, Any]:
        """Constructor keywords that follow from the label list given the hyperparameters
        (focal's float `alpha` needs the id of `O`); none by default."""
        return {}

    def logit_adjustment(self, num_classes: int) -> Tensor | None:
        """A length-C vector added to every token's logits before `log_softmax`; None (the default) for none."""
        return None

    def forward(self, logits: Tensor, labels: Tensor, num_items_in_batch: int | Tensor | None = None) -> Tensor:
        """The loss of `logits` `[..., C]` (any float dtype) against integer `labels` `[...]`.

        Returns a float32 scalar (float64 for float64 logits), or per-token losses with
        `reduction="none"`.
        """
        check_vector_matches_classes(self.class_weights, "class_weights", logits.shape[-1])
        batch = token_log_probs(logits, labels, self.ignore_index, self.logit_adjustment(logits.shape[-1]))
        token_losses = self.token_losses(batch)
        if self.label_smoothing:
            token_losses = smooth_token_losses(token_losses, batch, self.label_smoothing)
        token_losses = weigh_token_losses(token_losses, batch, self.class_weights)
        if self.class_shares is not None and self.training:
            self.class_shares.update(token_losses.detach(), batch)
        return reduce_token_losses(token_losses, batch, num_items_in_batch=num_items_in_batch, reduction=self.reduction)

    def track_class_shares(self, num_labels: int) -> ClassLossShares:
        """Start summing, per gold class, the training calls' token losses and gold probabilities on the
        device (`_statistics.ClassLossShares`); returns the accumulator, read with its `pop()`."""
        self.class_shares = ClassLossShares(num_labels)
        return self.class_shares

    @abstractmethod
    def token_losses(self, batch: TokenBatch) -> Tensor:
        """The unweighted loss of every token of `batch`, shape `[num_tokens]`."""

    def extra_repr(self) -> str:
        weighted = "None" if self.class_weights is None else f"[{self.class_weights.numel()}]"
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, class_weights={weighted}{smoothing}"
