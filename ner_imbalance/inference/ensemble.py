"""A seed ensemble: token-classification models of one label set whose log-probabilities are averaged.

`LogProbabilityEnsemble` offers what `Tagger` uses of a model (`config`, `to`, `eval`, and a call on
the collated batch that returns `.logits`); its `.logits` are the mean over the members of each
member's log-softmax, with every member's labels put in the first member's order (aligned by
name). `Tagger` takes the softmax of those, so a word's probability is the softmax of the mean
log-probabilities, and it decodes them as the first member would (its config: decoding, tag
scheme, labels). Each member applies its own calibration bias, folded into its classifier; since
`log_softmax(z + b) = z + b - logsumexp(z + b)`, the ensemble's word probabilities are the softmax of the
mean of the members' uncalibrated log-probabilities plus the mean of their biases (by label name).

`Tagger.from_folders` and `ner_pipeline([...])` build it through `tagger.load_ensemble`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from ner_imbalance.errors import UsageError


def label_order(first: dict[int, str], member: dict[int, str], first_folder: Any, member_folder: Any) -> list[int]:
    """The member's label id of each of the first model's labels (by name, in the first's id order).

    `UsageError` naming both folders when the label sets differ."""
    member_ids = {label: index for index, label in member.items()}
    if set(member_ids) != set(first.values()):
        raise UsageError(
            f"{member_folder}: its labels {sorted(member_ids)} are not those of {first_folder} "
            f"{sorted(first.values())}; an ensemble averages models of one label set"
        )
    return [member_ids[first[index]] for index in range(len(first))]


def id2label(model: PreTrainedModel) -> dict[int, str]:
    return {int(index): label for index, label in model.config.id2label.items()}


class LogProbabilityEnsemble:
    """`models` (loaded from `folders`, named in errors) as one model whose logits are the mean
    log-probabilities; see the module docstring."""

    def __init__(self, models: Sequence[PreTrainedModel], folders: Sequence[str | os.PathLike]) -> None:
        if len(models) != len(folders) or not models:
            raise ValueError(f"an ensemble needs one folder per model and at least one, got {len(models)} models")
        self.models = list(models)
        self.config = models[0].config
        first = id2label(models[0])
        self.orders = [
            label_order(first, id2label(model), folders[0], folder) for model, folder in zip(models, folders)
        ]

    @property
    def device(self) -> torch.device:
        """The first member's device (all members are moved together by `to`)."""
        return self.models[0].device

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> LogProbabilityEnsemble:
        self.models = [model.to(device=device, dtype=dtype) for model in self.models]
        return self

    def eval(self) -> LogProbabilityEnsemble:
        for model in self.models:
            model.eval()
        return self

    def __call__(self, **features: torch.Tensor) -> TokenClassifierOutput:
        """`.logits`: `[batch, sequence, labels]`, the mean over the members of `log_softmax(logits)` (float32)."""
        log_probabilities = [
            model(**features).logits.float().log_softmax(-1)[..., order]
            for model, order in zip(self.models, self.orders)
        ]
        return TokenClassifierOutput(logits=torch.stack(log_probabilities).mean(0))
