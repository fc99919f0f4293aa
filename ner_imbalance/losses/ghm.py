"""GHM-C (Li, Liu, Wang, AAAI 2019): cross-entropy reweighted by the density of gradient norms."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ner_imbalance.losses._base import TokenLoss, require
from ner_imbalance.losses._hyperparameters import Hyperparameter, SearchSpace, integer_at_least, real_in
from ner_imbalance.losses._reduce import TokenBatch

GHMC_VARIANTS: tuple[str, ...] = ("softmax", "sigmoid")

BINS = Hyperparameter(
    "bins", int, 10, "number of gradient-norm bins, >= 1.", check=integer_at_least(1), search=SearchSpace(5, 30)
)
MOMENTUM = Hyperparameter(
    "momentum",
    float,
    0.0,
    "EMA momentum of the bin counts, in [0, 1).",
    check=real_in(0.0, 1.0, high_open=True),
    search=SearchSpace(0.0, 0.9),
)
GHMC_VARIANT = Hyperparameter(
    "variant",
    str,
    "softmax",
    "softmax cross-entropy, or the paper's one-vs-rest sigmoid form.",
    flag="ghmc_variant",
    choices=GHMC_VARIANTS,
    search=GHMC_VARIANTS,
)


def distributed_world_size() -> int:
    """Number of processes of the default group, 1 when `torch.distributed` is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class GHMCLoss(TokenLoss):
    r"""Gradient harmonized cross-entropy :math:`\ell_i = -\beta_i \log p_t`.

    From B. Li, Y. Liu, X. Wang, "Gradient Harmonized Single-stage Detector", AAAI 2019
    (arXiv:1811.05181), carried to softmax cross-entropy. The gradient of cross-entropy on the
    logits is :math:`p - \mathrm{onehot}(t)`, whose L1 norm is :math:`2(1 - p_t)`; the gradient
    norm of a token is taken as :math:`g = 1 - p_t \in [0, 1]` (no gradient flows through it).
    The unit interval is cut into `bins` bins by the edges :math:`e_j = j / \mathrm{bins}`, the
    last raised by 1e-6 so that :math:`g = 1` falls in the last bin; bin :math:`j` holds the
    valid tokens with :math:`e_j \le g < e_{j+1}`. A token in bin :math:`j` gets the weight

    .. math:: \beta_i = \frac{\mathrm{tot}}{\mathrm{count}_j \, n}

    with tot the number of valid tokens and n the number of non-empty bins, so the mean weight is
    1 and the scale matches cross-entropy. Tokens of crowded bins (the many easy `O` tokens, and
    outliers the model cannot fit) are down-weighted.

    With `momentum` :math:`\mu > 0`, :math:`\mathrm{count}_j` is an exponential moving average
    :math:`a_j \leftarrow \mu a_j + (1-\mu)\,\mathrm{count}_j`, updated only for bins that are
    non-empty in the batch and only in training mode; in eval mode the average is combined with
    the batch the same way but not stored. With `bias_correction` the average is divided by
    :math:`1 - \mu^{u_j}`, :math:`u_j` the number of updates of bin :math:`j`, so that the first
    steps are not inflated by the zero start; without it this is mmdetection's `GHMC` exactly.

    `variant="sigmoid"` is the paper's original one-vs-rest form: every (token, class) pair is a
    binary problem with :math:`p_c = \sigma(x_c)`, target :math:`y_c = [c = t]` and gradient norm
    :math:`g_c = |p_c - y_c|` (the exact gradient of binary cross-entropy on :math:`x_c`); the
    histogram counts the C pairs of every valid token (tot = C times the valid tokens), and a
    token's loss is the mean over its classes of
    :math:`\beta_{ic}\,\mathrm{BCE}(x_{ic}, y_{ic})`, so that the loss of a batch is
    mmdetection's `GHMC` (the sum over pairs divided by their number). Its logits are trained as
    C independent sigmoids; their argmax is still the prediction.

    Everything is computed on the device without reading values back (`bucketize`,
    `scatter_add`). When `torch.distributed` runs more than one process, the bin counts and tot
    are summed over processes (one `all_reduce`) before the weights are computed, so every
    process uses the density of the global batch. The state dict holds the moving average
    (`acc_count`) and the per-bin update counts (`bin_updates`).

    Args:
        bins: Number of bins of the gradient norm, an int >= 1 (default 10).
        momentum: :math:`\mu` in [0, 1) (default 0.0: the batch counts alone, the best of {0, 0.75}
            with bins {10, 30} on WNUT-17 dev in docs/results.md, though all four were within noise).
        bias_correction: Divide the moving average by :math:`1-\mu^{u}` (default True).
        variant: `"softmax"` (default: softmax cross-entropy, one gradient norm per token) or
            `"sigmoid"` (one-vs-rest binary cross-entropy, one per token and class).
        **common: `class_weights`, `ignore_index`, `reduction`, `num_labels` (see `TokenLoss`).
    """

    edges: Tensor
    acc_count: Tensor
    bin_updates: Tensor
    last_bin_counts: Tensor
    last_bin_weights: Tensor

    HYPERPARAMETERS = (BINS, MOMENTUM, GHMC_VARIANT)

    def __init__(
        self,
        *,
        bins: int = BINS.default,
        momentum: float = MOMENTUM.default,
        bias_correction: bool = True,
        variant: str = GHMC_VARIANT.default,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.check_hyperparameters(bins=bins, momentum=momentum, variant=variant)
        require(isinstance(bias_correction, bool), "bias_correction", "a bool", bias_correction)
        self.bins = bins
        self.momentum = float(momentum)
        self.bias_correction = bias_correction
        self.variant = variant
        edges = torch.arange(bins + 1, dtype=torch.float32) / bins
        edges[-1] += 1e-6
        self.register_buffer("edges", edges, persistent=False)
        self.register_buffer("acc_count", torch.zeros(bins, dtype=torch.float32))
        self.register_buffer("bin_updates", torch.zeros(bins, dtype=torch.long))
        self.register_buffer("last_bin_counts", torch.zeros(bins, dtype=torch.float32), persistent=False)
        self.register_buffer("last_bin_weights", torch.zeros(bins, dtype=torch.float32), persistent=False)

    def token_losses(self, batch: TokenBatch) -> Tensor:
        if self.variant == "sigmoid":
            return self._one_vs_rest_token_losses(batch)
        gradient_norms = 1 - batch.target_log_prob.detach().exp()
        return -self.harmonizing_weights(gradient_norms, batch.valid) * batch.target_log_prob

    def _one_vs_rest_token_losses(self, batch: TokenBatch) -> Tensor:
        one_hot = F.one_hot(batch.targets, batch.logits.shape[-1]).to(batch.logits.dtype)
        gradient_norms = (batch.logits.detach().sigmoid() - one_hot).abs()
        valid_pairs = batch.valid.unsqueeze(-1).expand_as(one_hot)
        weights = self.harmonizing_weights(gradient_norms.reshape(-1), valid_pairs.reshape(-1))
        pair_losses = F.binary_cross_entropy_with_logits(batch.logits, one_hot, reduction="none")
        return (weights.reshape_as(pair_losses) * pair_losses).mean(-1)

    def harmonizing_weights(self, gradient_norms: Tensor, valid: Tensor) -> Tensor:
        """The weight :math:`\\beta_i` of every entry (token, or token-class pair) from its gradient
        norm `g` in [0, 1], both flat.

        Updates the moving average in training mode. Invalid entries are not counted (their
        weight is meaningless and is discarded by the reduction).
        """
        bin_index = torch.bucketize(gradient_norms, self.edges.to(gradient_norms.dtype), right=True)
        bin_index = (bin_index - 1).clamp(0, self.bins - 1)
        bin_counts = torch.zeros_like(self.acc_count).scatter_add(0, bin_index, valid.to(self.acc_count.dtype))
        num_valid_tokens = valid.sum().to(self.acc_count.dtype)
        if distributed_world_size() > 1:
            global_totals = torch.cat([bin_counts, num_valid_tokens.reshape(1)])
            dist.all_reduce(global_totals)
            bin_counts, num_valid_tokens = global_totals[:-1], global_totals[-1]
        nonempty = bin_counts > 0
        density = self._smoothed_density(bin_counts, nonempty) if self.momentum > 0 else bin_counts
        num_nonempty_bins = nonempty.sum().clamp_min(1)
        tiny = torch.finfo(density.dtype).tiny
        bin_weights = torch.where(nonempty, num_valid_tokens / density.clamp_min(tiny) / num_nonempty_bins, 0.0)
        self.last_bin_counts.copy_(bin_counts)
        self.last_bin_weights.copy_(bin_weights)
        return bin_weights[bin_index].to(gradient_norms.dtype)

    def _smoothed_density(self, bin_counts: Tensor, nonempty: Tensor) -> Tensor:
        """The moving average of the bin counts including this batch (stored in training mode)."""
        moving_average = torch.where(
            nonempty, self.momentum * self.acc_count + (1 - self.momentum) * bin_counts, self.acc_count
        )
        bin_updates = self.bin_updates + nonempty.long()
        if self.training:
            self.acc_count.copy_(moving_average)
            self.bin_updates.copy_(bin_updates)
        if not self.bias_correction:
            return moving_average
        correction = 1 - torch.pow(self.momentum, bin_updates).to(moving_average.dtype)
        return moving_average / correction.clamp_min(torch.finfo(moving_average.dtype).tiny)

    def statistics(self) -> dict[str, Tensor]:
        """The last call's bin counts and bin weights and the moving average, as device tensors.

        Nothing is read back here: the caller (ImbalanceTrainer at logging steps) copies them to
        the host together, once.
        """
        return {
            "bin_counts": self.last_bin_counts.detach().clone(),
            "bin_weights": self.last_bin_weights.detach().clone(),
            "moving_average_counts": self.acc_count.detach().clone(),
        }

    def extra_repr(self) -> str:
        return (
            f"bins={self.bins}, momentum={self.momentum}, bias_correction={self.bias_correction}, "
            f"variant={self.variant!r}, "
            f"{super().extra_repr()}"
        )
