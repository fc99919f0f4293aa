"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021): the label prior moves the logits in training only."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ner_imbalance.losses._base import TokenLoss, WeightVector, check_vector_matches_classes, check_weight_vector
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace, real_in
from ner_imbalance.losses._reduce import TokenBatch

TAU = Hyperparameter(
    "tau",
    float,
    1.0,
    "scale of the log-prior added to the logits in training, tau >= 0 (0: cross-entropy).",
    check=real_in(0.0),
    search=SearchSpace(0.0, 2.0),
)


class LogitAdjustedLoss(TokenLoss):
    r"""Logit-adjusted cross-entropy :math:`\ell_i = -\log \mathrm{softmax}(x + \tau \log \pi)_t`.

    From A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, "Long-tail learning
    via logit adjustment", ICLR 2021 (arXiv:2007.07314), the logit-adjusted loss of their eq. (10).
    :math:`\pi` is the prior of each label (its share of the training tokens). Adding
    :math:`\tau \log \pi_c` to logit c in training gives frequent labels (`O`) a head start that
    the raw logits need not learn, while a rare gold label must beat a frequent one by a raw
    margin of :math:`\tau \log(\pi_{frequent}/\pi_{rare})` to reach the same loss. Prediction uses
    the raw logits :math:`x` (the model's own output: nothing to undo at inference), which for
    :math:`\tau = 1` estimate the balanced-error Bayes classifier
    :math:`\arg\max_c p(c \mid x) / \pi_c`: rare labels are predicted more often than with CE.
    With :math:`\tau = 0` it is cross-entropy exactly. Only the differences between the
    :math:`\log \pi_c` matter (softmax ignores a constant), so :math:`\pi` need not sum to 1.

    It is cross-entropy of shifted logits, so it takes `label_smoothing` (applied to the shifted
    log-probabilities) and `class_weights` like `ce`.

    Args:
        class_prior: Length-C positive values proportional to the training frequency of each label
            (`ner_imbalance.data.stats.label_prior`); required.
        tau: :math:`\tau \ge 0` (default 1.0, the paper's value).
        **common: `class_weights`, `label_smoothing`, `ignore_index`, `reduction`, `num_labels`
            (see `TokenLoss`).
    """

    HYPERPARAMETERS = (TAU,)
    supports_label_smoothing = True
    requires_class_prior = True

    log_prior_shift: Tensor

    def __init__(self, *, class_prior: WeightVector | None = None, tau: float = TAU.default, **common: Any) -> None:
        super().__init__(**common)
        self.check_hyperparameters(tau=tau)
        if class_prior is None:
            raise ValueError("class_prior must be given: the training frequency of each label (data.stats.label_prior)")
        prior = check_weight_vector(class_prior, "class_prior", self.num_labels)
        if not bool((prior > 0).all()):
            raise ValueError(f"class_prior must be > 0 for every label; got {class_prior!r}")
        self.tau = float(tau)
        self.register_buffer("log_prior_shift", self.tau * (prior / prior.sum()).log(), persistent=False)

    def logit_adjustment(self, num_classes: int) -> Tensor | None:
        check_vector_matches_classes(self.log_prior_shift, "class_prior", num_classes)
        return None if self.tau == 0 else self.log_prior_shift

    def token_losses(self, batch: TokenBatch) -> Tensor:
        return -batch.target_log_prob

    def extra_repr(self) -> str:
        return f"tau={self.tau}, class_prior=[{self.log_prior_shift.numel()}], {super().extra_repr()}"
