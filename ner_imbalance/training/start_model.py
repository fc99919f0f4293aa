"""The model a run starts from: any folder, with or without a token-classification head, fitted to the run's labels.

A folder's head is matched to the run's labels by name (its `config.id2label`), never by count.
The folder is loaded in its own shape, so a head of any size loads; then, unless its labels are
the run's labels in the run's order, the head is replaced by one with a row per run label:

- a run label the stored head also has keeps that row (weights and bias), wherever it stood;
- any other run label gets a new row, initialised as the model initialises a new head.

So a head with the same labels in another order is reordered (each label's logit is unchanged),
a head with other names, another count or generic `LABEL_n` names keeps the rows of the labels it
shares with the run, and a plain encoder (no stored head) gets a new head, as `from_pretrained`
with the run's labels would give it. One log line says which rows were kept and how many are new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import AutoModelForTokenClassification, PreTrainedModel

from ner_imbalance.calibration.classifier import classifier_head

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadFit:
    """How a stored head was fitted to a run's labels: `stored` its labels in row order, `kept`
    the run labels whose row came from it, `new` the run labels with a new row (both in run order)."""

    stored: tuple[str, ...]
    kept: tuple[str, ...]
    new: tuple[str, ...]

    def describe(self, model_path: str) -> str:
        """One log line naming what was kept and how many rows are new."""
        head = f"--model_name_or_path {model_path} has a token-classification head for {len(self.stored)} labels"
        if not self.new:
            return f"{head}, the run's labels in another order: its rows were reordered to the run's label order"
        kept = f"kept the rows of {len(self.kept)} labels with the same name ({', '.join(self.kept)})"
        if not self.kept:
            kept = "no label has the same name: no row kept"
        return f"{head} ({', '.join(self.stored)}); {kept}; {len(self.new)} new rows ({', '.join(self.new)})"


def load_start_model(model_path: str, labels: list[str]) -> PreTrainedModel:
    """`AutoModelForTokenClassification` from `model_path` with one output per label of `labels`,
    in that order, a stored head's rows kept by label name (see the module docstring)."""
    model, loading = AutoModelForTokenClassification.from_pretrained(model_path, output_loading_info=True)
    head = classifier_head(model)
    head_name = next(name for name, module in model.named_modules() if module is head)
    # In its own shape no stored tensor mismatches (`from_pretrained` would raise): a head is stored unless missing.
    has_head = not any(key.startswith(f"{head_name}.") for key in loading["missing_keys"])
    stored = tuple(model.config.id2label[index] for index in range(head.out_features)) if has_head else ()
    if stored == tuple(labels):
        return model
    rows = {label: row for row, label in enumerate(stored)}
    model.set_submodule(head_name, _fitted_head(model, head, [rows.get(label) for label in labels]))
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: index for index, label in enumerate(labels)}
    if hasattr(model, "num_labels"):
        model.num_labels = len(labels)
    if has_head:
        fit = HeadFit(
            stored=stored,
            kept=tuple(label for label in labels if label in rows),
            new=tuple(label for label in labels if label not in rows),
        )
        logger.info(fit.describe(model_path))
    return model


def _fitted_head(model: PreTrainedModel, head: torch.nn.Linear, source_rows: list[int | None]) -> torch.nn.Linear:
    """A new `Linear` like `head` with one output per entry of `source_rows`: output `i` is a copy
    of `head`'s row `source_rows[i]`, or initialised by the model's own initialiser where it is None."""
    fitted = torch.nn.Linear(
        head.in_features,
        len(source_rows),
        bias=head.bias is not None,
        device=head.weight.device,
        dtype=head.weight.dtype,
    )
    model._init_weights(fitted)  # the initialiser `from_pretrained` applies to a head missing from the folder
    with torch.no_grad():
        for row, source in enumerate(source_rows):
            if source is None:
                continue
            fitted.weight[row] = head.weight[source]
            if head.bias is not None:
                fitted.bias[row] = head.bias[source]
    return fitted
