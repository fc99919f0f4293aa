"""Folding a calibration bias into a token-classification model's head, so every later prediction applies it.

`fold_bias_into_classifier` adds the bias `b` chosen by `search.search_bias` to the output bias of
the classification head; afterwards `model(...).logits` are the former logits plus `b`, so the
saved model, `transformers.pipeline("token-classification")`, `inference.Tagger` and any later
prediction apply it with no extra code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def fold_bias_into_classifier(model: torch.nn.Module, bias: np.ndarray | Sequence[float] | torch.Tensor) -> None:
    """Add `bias` to the output bias of `model`'s token-classification head, in place.

    The head is `model.classifier` when it is a `Linear`, else the only `Linear` with
    `config.num_labels` outputs. Afterwards `model(...).logits` equals the former logits plus
    `bias` (up to float rounding), for every later use of the model and of its saved folder.
    """
    head = classifier_head(model)
    values = torch.as_tensor(np.asarray(bias, dtype=np.float64))
    if values.shape != (head.out_features,):
        raise ValueError(f"bias has shape {tuple(values.shape)}, the classifier has {head.out_features} outputs")
    if head.bias is None:
        raise ValueError(
            f"the classifier of {type(model).__name__} has no bias: a calibration bias cannot be folded into it"
        )
    with torch.no_grad():
        head.bias.add_(values.to(dtype=head.bias.dtype, device=head.bias.device))


def classifier_head(model: torch.nn.Module) -> torch.nn.Linear:
    """The `Linear` layer that produces a token-classification model's logits."""
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Linear):
        return classifier
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    heads = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels
    ]
    if len(heads) != 1:
        found = ", ".join(heads) or "none"
        raise ValueError(
            f"cannot tell the classification head of {type(model).__name__}: no `classifier` Linear, and "
            f"Linear layers with num_labels={num_labels} outputs: {found}"
        )
    return model.get_submodule(heads[0])
