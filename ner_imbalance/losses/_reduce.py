"""The one place where per-token losses meet masking, class weights, upcasting and normalisation.

Every loss in this package is a function of the log-probabilities `log_softmax(x)` of each token
(of `x` plus a per-class shift for the logit-adjusted loss). `token_log_probs` computes them in
(at least) float32 and masks the positions labelled `ignore_index`; `smooth_token_losses` applies
label smoothing to a cross-entropy; `weigh_token_losses` multiplies each token's loss by the weight
of its gold class and `reduce_token_losses` normalises:

    loss = sum_{valid i} w_{y_i} * l_i / N

with `N = num_items_in_batch` when the caller gives it (the Trainer passes the number of valid
tokens of the whole gradient-accumulation window across processes), else the number of valid
tokens of this call. This is the normalisation of `transformers.loss.loss_utils`: the losses of
micro-batches, each divided by the same `N`, add up to the loss of the concatenated batch.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


class TokenBatch(NamedTuple):
    """A batch of tokens flattened to `[num_tokens]`, in the computation dtype.

    `targets` equals the labels where they are valid and 0 at ignored positions, so that it can
    index any per-class vector; losses computed there are discarded by `reduce_token_losses`.
    `log_probs` is `log_softmax(logits)` `[num_tokens, C]` and `target_log_prob` its gold column.
    """

    logits: Tensor
    log_probs: Tensor
    target_log_prob: Tensor
    targets: Tensor
    valid: Tensor
    labels_shape: torch.Size


def computation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for fp32/fp16/bf16 logits; float64 logits stay float64 (for `gradcheck`)."""
    return torch.promote_types(dtype, torch.float32)


def gather_targets(values: Tensor, targets: Tensor) -> Tensor:
    """`values[i, targets[i]]` for `values` `[num_tokens, C]`."""
    return values.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def token_log_probs(
    logits: Tensor, labels: Tensor, ignore_index: int, logit_adjustment: Tensor | None = None
) -> TokenBatch:
    """Flatten `logits` `[..., C]` and `labels` `[...]`, upcast, mask `ignore_index`, gather `log p_t`.

    A length-C `logit_adjustment` is added to every token's (upcast) logits first; the batch then
    holds the adjusted logits and their log-probabilities (logit-adjusted loss).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"labels must have the leading shape of logits {tuple(logits.shape[:-1])}; got {tuple(labels.shape)}"
        )
    num_classes = logits.shape[-1]
    flat_logits = logits.reshape(-1, num_classes).to(computation_dtype(logits.dtype))
    if logit_adjustment is not None:
        flat_logits = flat_logits + logit_adjustment.to(flat_logits.dtype)
    flat_labels = labels.reshape(-1).long()
    valid = flat_labels != ignore_index
    targets = torch.where(valid, flat_labels, 0)
    log_probs = torch.log_softmax(flat_logits, dim=-1)
    return TokenBatch(
        logits=flat_logits,
        log_probs=log_probs,
        target_log_prob=gather_targets(log_probs, targets),
        targets=targets,
        valid=valid,
        labels_shape=labels.shape,
    )


def smooth_token_losses(token_losses: Tensor, batch: TokenBatch, label_smoothing: float) -> Tensor:
    r"""Label smoothing of a cross-entropy :math:`\ell_i = -\log p_t`:
    :math:`(1-\varepsilon)\,\ell_i + \varepsilon \cdot \mathrm{mean}_c(-\log p_c)`, the cross-entropy
    against the target :math:`(1-\varepsilon)\,\mathrm{onehot}(t) + \varepsilon / C`, as
    `torch.nn.functional.cross_entropy(label_smoothing=...)` computes it per token.
    """
    return (1 - label_smoothing) * token_losses - label_smoothing * batch.log_probs.mean(dim=-1)


def weigh_token_losses(token_losses: Tensor, batch: TokenBatch, class_weights: Tensor | None) -> Tensor:
    """Each token's loss times the weight of its gold class (`class_weights`, if any), 0 at ignored positions."""
    if class_weights is not None:
        token_losses = token_losses * class_weights.to(token_losses.dtype)[batch.targets]
    return torch.where(batch.valid, token_losses, 0.0)


def reduce_token_losses(
    token_losses: Tensor,
    batch: TokenBatch,
    *,
    num_items_in_batch: int | Tensor | None,
    reduction: Reduction,
) -> Tensor:
    """Reduce the per-token losses of `weigh_token_losses` (weighted, 0 at ignored positions).

    `reduction="none"` returns them with the labels' shape; `"sum"` their sum; `"mean"` their sum
    divided by `num_items_in_batch` (or the number of valid tokens). A zero denominator gives a zero
    loss that keeps its `grad_fn`. No value is read back to the host.
    """
    if reduction == "none":
        return token_losses.reshape(batch.labels_shape)
    total = token_losses.sum()
    if reduction == "sum":
        return total
    if num_items_in_batch is None:
        denominator = batch.valid.sum().to(total.dtype)
    else:
        denominator = torch.as_tensor(num_items_in_batch).to(device=total.device, dtype=total.dtype)
    return torch.where(denominator > 0, total / denominator.clamp_min(1), 0.0)
