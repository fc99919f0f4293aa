r"""Where a loss comes from: per gold class, the summed token losses and gold probabilities, on the device.

With tracking on (`TokenLoss.track_class_shares`), every training call of a loss adds, for each
gold class :math:`c`, the sum of the (class-weighted) losses of its valid tokens
:math:`L_c = \sum_{i: t_i = c} w_{t_i} \ell_i`, the sum of their gold probabilities
:math:`P_c = \sum_{i: t_i = c} p_{t_i}` and their number :math:`N_c` to three device vectors,
with one `index_add_` and no read back to the host. Whoever reads them (`pop`, once per logging
step) gets the share of the loss :math:`L_c / \sum_k L_k` and the mean gold probability
:math:`P_c / N_c` of any group of classes (`O`, an entity type's `B-`/`I-` tags) since the last
read. :math:`p_t` is the probability the loss itself uses: the logit-adjusted loss's, for it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ner_imbalance.losses._reduce import TokenBatch

LOSS, GOLD_PROBABILITY, TOKENS = range(3)
"""Rows of `ClassLossShares.sums`."""


class ClassLossShares(nn.Module):
    """Per gold class: summed token losses, summed gold probabilities and token counts since the last `pop`."""

    sums: Tensor

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.register_buffer("sums", torch.zeros(3, num_labels), persistent=False)

    @torch.no_grad()
    def update(self, weighted_token_losses: Tensor, batch: TokenBatch) -> None:
        """Add a batch's valid tokens (`weighted_token_losses` `[num_tokens]`, 0 where ignored)."""
        targets = batch.targets[batch.valid]
        values = torch.stack(
            [
                weighted_token_losses[batch.valid].float(),
                batch.target_log_prob[batch.valid].float().exp(),
                torch.ones_like(targets, dtype=torch.float32),
            ]
        )
        self.sums.index_add_(1, targets, values.to(self.sums.device))

    def pop(self) -> Tensor:
        """The sums `[3, num_labels]` (rows `LOSS`, `GOLD_PROBABILITY`, `TOKENS`) since the last pop; then zero them."""
        sums = self.sums.clone()
        self.sums.zero_()
        return sums
