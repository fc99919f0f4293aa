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

    With `label_smoothing` :math:`\varepsilon` the token's loss is
    :math:`(1-\varepsilon)(-\log p_t) + \frac{\varepsilon}{C}\sum_c -\log p_c`, as in
    `torch.nn.functional.cross_entropy(label_smoothing=...)`. With class weights too, the whole
    smoothed loss of a token is multiplied by its gold class's weight (the class-balanced form of
    Cui et al., CVPR 2019, weight of the sample's class times the sample's loss), which differs
    from `torch.nn.functional.cross_entropy(weight=w, label_smoothing=eps)`: torch weights the
    smoothing term :math:`-\log p_c` of every class c by :math:`w_c` and divides by the sum of
    gold weights.

    Args: those of `TokenLoss` (`class_weights`, `label_smoothing`, `ignore_index`, `reduction`,
    `num_labels`).
    """

    supports_label_smoothing = True

    def token_losses(self, batch: TokenBatch) -> Tensor:
        return -batch.target_log_prob
