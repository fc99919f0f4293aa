"""Cross-entropy, the reference every other loss is compared with."""

from __future__ import annotations

from torch import Tensor

from ner_imbalance.losses._base import TokenLoss
from ner_imbalance.losses._reduce import TokenBatch


class CrossEntropyLoss(TokenLoss):
    r"""Per-token cross-entropy :math:`\ell_i = -\log p_{t,i}`, :math:`p = \mathrm{softmax}(x)`.

    With `class_weights` :math:`w` this is weighted cross-entropy
    :math:`\sum_{i\,\mathrm{valid}} w_{y_i} \ell_i / N`, normalised by the token count `N`
    (`num_items_in_batch` or the valid tokens), not by the sum of the weights as
    `torch.nn.functional.cross_entropy(weight=...)` does, so that gradient accumulation and
    multi-process training see the same scale.

    Args: those of `TokenLoss` (`class_weights`, `ignore_index`, `reduction`, `num_labels`).
    """

    def token_losses(self, batch: TokenBatch) -> Tensor:
        return -batch.target_log_prob
